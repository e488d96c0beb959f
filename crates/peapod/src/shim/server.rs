//! The shim's event loop: one thread, one epoll set (mio, edge-triggered) over the control
//! socket, the SIGCHLD signalfd, the output pipes and terminals of processes, their stdins, and
//! the clients of watch, exec and attach connections.
//!
//! The loop never waits for a peer. What a client does not read is queued up to a bound (see
//! [`OutBuf`](super::outbuf::OutBuf)): an exec past its bound stops being read, so its process blocks on its own
//! output; an attached client past its bound is detached, as a container's output and log
//! never wait for one. Input a process does not read is queued likewise, and its clients
//! stop being read while the queue is full. Because epoll is edge-triggered, a source that was
//! paused is read again explicitly when it resumes.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use peapod_logs::Stream;

use super::container::Container;
use super::exec::ExecSession;
use super::fd::write_all_blocking;
use super::protocol::{frame, Request, Response, ShimState};
use super::runtime::{Runtime, RuntimeError};
use super::setup::{self, SetupError};
use super::terminal::TerminalError;
use super::watch::Watcher;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

/// Reads from one source before the others get their turn: a process that writes as fast as
/// the shim reads must not starve the rest.
pub(super) const READ_BUDGET: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Terminal(#[from] TerminalError),
    #[error("shim i/o on {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("shim signal handling: {0}")]
    Signals(#[source] nix::Error),
}

pub(super) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
    let what = what.into();
    move |source| ShimError::Io { what, source }
}

/// How the agent started this shim.
#[derive(Debug, Clone)]
pub struct ShimOptions {
    pub pod_uid: String,
    /// None with hostNetwork: the node's UTS and network namespaces are left alone.
    pub hostname: Option<String>,
    /// The pod's run directory: socket, shm, libcontainer state, bundles.
    pub run_dir: PathBuf,
    /// A pipe the agent waits on; the shim writes one line once it serves requests.
    pub ready_fd: Option<RawFd>,
}

/// Runs the shim until the agent asks it to shut down.
pub fn run(options: ShimOptions) -> Result<(), ShimError> {
    setup::private_mounts()?;
    if let Some(hostname) = &options.hostname {
        setup::hostname(hostname)?;
        setup::loopback_up()?;
    }
    setup::pod_shm(&options.run_dir.join("shm"))?;
    setup::child_subreaper()?;
    let mut shim = Shim::new(&options)?;
    if let Some(fd) = options.ready_fd {
        let mut ready = unsafe { File::from_raw_fd(fd) };
        let _ = ready.write_all(b"ready\n");
    }
    shim.serve()
}

/// What an epoll token stands for.
pub(super) enum Source {
    /// A control connection still reading its request line.
    Request {
        stream: UnixStream,
        buf: Vec<u8>,
    },
    /// A process's output: a pipe's read end or its terminal's master.
    Output {
        owner: Owner,
        stream: Stream,
        file: File,
        /// Not read while its exec client's queue is full.
        paused: bool,
    },
    /// A process's stdin, registered for writability (the file is its owner's [`Stdin`]).
    Stdin {
        owner: Owner,
    },
    ExecClient {
        session: u64,
    },
    AttachClient {
        container: String,
    },
    Watcher,
}

/// Whose process a pipe, terminal or stdin belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner {
    Container(String),
    Exec(u64),
}

pub(super) struct Shim {
    pub(super) poll: Poll,
    listener: UnixListener,
    signals: SignalFd,
    pub(super) runtime: Runtime,
    pub(super) run_dir: PathBuf,
    pub(super) sources: HashMap<Token, Source>,
    next_token: usize,
    pub(super) containers: BTreeMap<String, Container>,
    pub(super) pids: HashMap<i32, Owner>,
    pub(super) sessions: HashMap<u64, ExecSession>,
    /// Numbers exec sessions and console sockets.
    next_serial: u64,
    pub(super) watchers: HashMap<Token, Watcher>,
    /// Sources that used up their read budget with more to read: served after the next poll.
    again: Vec<Token>,
    shutdown: Option<std::os::unix::net::UnixStream>,
}

impl Shim {
    fn new(options: &ShimOptions) -> Result<Shim, ShimError> {
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        mask.add(Signal::SIGPIPE);
        mask.thread_block().map_err(ShimError::Signals)?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(ShimError::Signals)?;
        let socket = options.run_dir.join("shim.sock");
        let _ = std::fs::remove_file(&socket);
        let mut listener =
            UnixListener::bind(&socket).map_err(io_err(socket.display().to_string()))?;
        let poll = Poll::new().map_err(io_err("epoll"))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(io_err("epoll"))?;
        poll.registry()
            .register(
                &mut SourceFd(&signals.as_fd().as_raw_fd()),
                SIGNALS,
                Interest::READABLE,
            )
            .map_err(io_err("epoll"))?;
        Ok(Shim {
            poll,
            listener,
            signals,
            runtime: Runtime::new(options.run_dir.join("runtime"))?,
            run_dir: options.run_dir.clone(),
            sources: HashMap::new(),
            next_token: 2,
            containers: BTreeMap::new(),
            pids: HashMap::new(),
            sessions: HashMap::new(),
            next_serial: 1,
            watchers: HashMap::new(),
            again: Vec::new(),
            shutdown: None,
        })
    }

    fn serve(&mut self) -> Result<(), ShimError> {
        let mut events = Events::with_capacity(64);
        loop {
            let timeout = (!self.again.is_empty()).then_some(std::time::Duration::ZERO);
            if let Err(err) = self.poll.poll(&mut events, timeout) {
                if err.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(ShimError::Io {
                    what: "epoll wait".into(),
                    source: err,
                });
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    SIGNALS => self.reap(),
                    token => self.ready(token),
                }
            }
            for token in std::mem::take(&mut self.again) {
                self.ready(token);
            }
            if let Some(reply_to) = self.shutdown.take() {
                self.shut_down(reply_to);
                return Ok(());
            }
        }
    }

    pub(super) fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
    }

    /// Serves `token` again after the next poll (it has more to read than its budget).
    pub(super) fn again(&mut self, token: Token) {
        if !self.again.contains(&token) {
            self.again.push(token);
        }
    }

    pub(super) fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    /// Registers a client connection for both directions under `token`.
    pub(super) fn register_client(
        &self,
        client: &mut UnixStream,
        token: Token,
    ) -> std::io::Result<()> {
        self.poll
            .registry()
            .register(client, token, Interest::READABLE | Interest::WRITABLE)
    }

    pub(super) fn deregister_fd(&self, fd: RawFd) {
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    let token = self.token();
                    if self
                        .poll
                        .registry()
                        .register(&mut stream, token, Interest::READABLE)
                        .is_ok()
                    {
                        self.sources.insert(
                            token,
                            Source::Request {
                                stream,
                                buf: Vec::new(),
                            },
                        );
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    return;
                }
            }
        }
    }

    fn ready(&mut self, token: Token) {
        match self.sources.get(&token) {
            Some(Source::Request { .. }) => self.read_request(token),
            Some(Source::Output { .. }) => self.drain_output(token),
            Some(Source::Stdin { owner }) => {
                let owner = owner.clone();
                self.stdin_ready(&owner);
            }
            Some(Source::ExecClient { session }) => {
                let session = *session;
                self.exec_client_ready(session);
            }
            Some(Source::AttachClient { container }) => {
                let container = container.clone();
                self.attach_client_ready(&container, token);
            }
            Some(Source::Watcher) => self.watcher_ready(token),
            None => {}
        }
    }

    fn read_request(&mut self, token: Token) {
        let Some(Source::Request { stream, buf }) = self.sources.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let closed = loop {
            match stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break false,
                Err(_) => break true,
            }
        };
        let Some(end) = buf.iter().position(|b| *b == b'\n') else {
            if closed {
                self.drop_source(token);
            }
            return;
        };
        let line = buf[..end].to_vec();
        // What came after the request line (a session's first frames) belongs to the stream.
        let rest = buf[end + 1..].to_vec();
        let Some(Source::Request { mut stream, .. }) = self.sources.remove(&token) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut stream);
        let request = match serde_json::from_slice::<Request>(&line) {
            Ok(request) => request,
            Err(err) => {
                reply(
                    stream,
                    &Response::Error {
                        message: format!("bad request: {err}"),
                    },
                );
                return;
            }
        };
        self.handle(request, stream, token, rest);
    }

    fn handle(&mut self, request: Request, stream: UnixStream, token: Token, rest: Vec<u8>) {
        let response = match request {
            Request::State => Response::State(self.state()),
            Request::Create(create) => self.create(*create),
            Request::Start { id } => self.start(&id),
            Request::Kill { id, signal } => self.kill(&id, signal),
            Request::Remove { id } => self.remove(&id),
            Request::Watch => return self.watch(stream, token),
            Request::Exec(exec) => return self.exec(exec, stream, token, rest),
            Request::Attach(attach) => return self.attach(attach, stream, token, rest),
            Request::Shutdown => {
                self.shutdown = Some(into_std(stream));
                return;
            }
        };
        reply(stream, &response);
    }

    fn state(&self) -> ShimState {
        ShimState {
            pid: std::process::id() as i32,
            containers: self.containers.values().map(|c| c.info.clone()).collect(),
        }
    }

    fn reap(&mut self) {
        while let Ok(Some(_)) = self.signals.read_signal() {}
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => self.exited(pid.as_raw(), code, None),
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    self.exited(pid.as_raw(), 128 + signal as i32, Some(signal as i32))
                }
                Ok(WaitStatus::StillAlive) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    }

    fn exited(&mut self, pid: i32, code: i32, signal: Option<i32>) {
        match self.pids.remove(&pid) {
            Some(Owner::Container(id)) => self.container_exited(&id, code, signal),
            Some(Owner::Exec(session)) => self.exec_exited(session, code),
            None => {}
        }
    }

    /// Drops a request or output source (sessions and stdins are dropped by their owners).
    pub(super) fn drop_source(&mut self, token: Token) {
        if !matches!(
            self.sources.get(&token),
            Some(Source::Request { .. } | Source::Output { .. })
        ) {
            return;
        }
        match self.sources.remove(&token) {
            Some(Source::Request { mut stream, .. }) => {
                let _ = self.poll.registry().deregister(&mut stream);
            }
            Some(Source::Output { file, .. }) => self.deregister_fd(file.as_raw_fd()),
            _ => {}
        }
    }

    /// Kills every container, waits for them, deletes them, answers, and returns (the shim
    /// then exits, taking its mount namespace and the pod's namespaces with it).
    fn shut_down(&mut self, reply_to: std::os::unix::net::UnixStream) {
        let ids: Vec<String> = self.containers.keys().cloned().collect();
        for id in &ids {
            if self.containers[id].info.exit.is_none() {
                let _ = self.runtime.kill(id, libc::SIGKILL);
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while self
            .containers
            .values()
            .any(|c| c.info.exit.is_none() && c.info.pid.is_some())
            && std::time::Instant::now() < deadline
        {
            self.reap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let mut errors = Vec::new();
        for id in &ids {
            if let Response::Error { message } = self.remove(id) {
                errors.push(message);
            }
        }
        let response = if errors.is_empty() {
            Response::Ok
        } else {
            Response::Error {
                message: errors.join("; "),
            }
        };
        let mut line = serde_json::to_vec(&response).expect("responses serialize");
        line.push(b'\n');
        let _ = write_all_blocking(reply_to.as_raw_fd(), &line);
    }
}

pub(super) fn error(message: String) -> Response {
    Response::Error { message }
}

fn reply(stream: UnixStream, response: &Response) {
    let mut line = serde_json::to_vec(response).expect("responses serialize");
    line.push(b'\n');
    let _ = write_all_blocking(stream.as_raw_fd(), &line);
}

/// Ends a session that cannot start with its STATUS frame `{"error": message}`.
pub(super) fn refuse(client: UnixStream, message: String) {
    let payload =
        serde_json::to_vec(&serde_json::json!({ "error": message })).expect("json serializes");
    let _ = write_all_blocking(client.as_raw_fd(), &frame::encode(frame::STATUS, &payload));
}

/// A STATUS frame saying the process exited with `code`.
pub(super) fn exit_status(code: Option<i32>) -> Vec<u8> {
    let payload =
        serde_json::to_vec(&serde_json::json!({ "exitCode": code })).expect("json serializes");
    frame::encode(frame::STATUS, &payload)
}

/// The frame channel of an output stream.
pub(super) fn channel(stream: Stream) -> u8 {
    match stream {
        Stream::Stdout => frame::STDOUT,
        Stream::Stderr => frame::STDERR,
    }
}

fn into_std(stream: UnixStream) -> std::os::unix::net::UnixStream {
    std::os::unix::net::UnixStream::from(OwnedFd::from(stream))
}

pub fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}
