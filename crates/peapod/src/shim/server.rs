//! The shim's event loop: one thread, one epoll set (mio) over the control socket, the
//! SIGCHLD signalfd, container output pipes and exec streams.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use peapod_logs::{LogWriter, Stream};

use super::diagnostics::FailureReport;
use super::protocol::{
    frame, ContainerInfo, ContainerStatus, CreateRequest, ExecRequest, ExitEvent, ExitInfo,
    Request, Response, ShimState,
};
use super::runtime::{Runtime, RuntimeError, Stdio};
use super::setup::{self, SetupError};

/// kubelet's containerLogMaxSize and containerLogMaxFiles defaults.
const LOG_MAX_SIZE: u64 = 10 * 1024 * 1024;
const LOG_MAX_FILES: usize = 5;

const LISTENER: Token = Token(0);
const SIGNALS: Token = Token(1);

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("shim i/o on {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("shim signal handling: {0}")]
    Signals(#[source] nix::Error),
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ShimError {
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

enum Source {
    /// A control connection still reading its request line.
    Request { stream: UnixStream, buf: Vec<u8> },
    Pipe {
        owner: Owner,
        stream: Stream,
        file: File,
    },
    /// The client side of an exec session (stdin frames in).
    ExecClient { session: u64 },
}

#[derive(Clone, PartialEq, Eq)]
enum Owner {
    Container(String),
    Exec(u64),
}

struct Container {
    info: ContainerInfo,
    log: LogWriter,
    log_failures: FailureReport,
    root: PathBuf,
    bundle: PathBuf,
    open_pipes: u8,
}

struct ExecSession {
    client: UnixStream,
    client_token: Token,
    stdin: Option<File>,
    /// With a terminal: its master (stdin is written here, output read from it).
    tty: Option<File>,
    inbuf: Vec<u8>,
    open_pipes: u8,
    exit_code: Option<i32>,
    /// The exec'd process, a process group leader (libcontainer's init calls setsid).
    pid: i32,
}

struct Shim {
    poll: Poll,
    listener: UnixListener,
    signals: SignalFd,
    runtime: Runtime,
    run_dir: PathBuf,
    sources: HashMap<Token, Source>,
    next_token: usize,
    containers: BTreeMap<String, Container>,
    pids: HashMap<i32, Owner>,
    sessions: HashMap<u64, ExecSession>,
    next_session: u64,
    watchers: Vec<std::os::unix::net::UnixStream>,
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
            next_session: 1,
            watchers: Vec::new(),
            shutdown: None,
        })
    }

    fn serve(&mut self) -> Result<(), ShimError> {
        let mut events = Events::with_capacity(64);
        loop {
            if let Err(err) = self.poll.poll(&mut events, None) {
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
            if let Some(reply_to) = self.shutdown.take() {
                self.shut_down(reply_to);
                return Ok(());
            }
        }
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        Token(self.next_token)
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
            Some(Source::Pipe { .. }) => self.drain_pipe(token),
            Some(Source::ExecClient { session }) => {
                let session = *session;
                self.read_exec_client(session)
            }
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
        // What came after the request line (an exec's first frames) belongs to the stream.
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
            Request::Watch => {
                let std_stream = into_std(stream);
                self.watchers.push(std_stream);
                return;
            }
            Request::Exec(exec) => {
                self.exec(exec, stream, token, rest);
                return;
            }
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

    fn create(&mut self, request: CreateRequest) -> Response {
        if self.containers.contains_key(&request.id) {
            return error(format!("container {} already exists", request.id));
        }
        match self.try_create(&request) {
            Ok(pid) => Response::Created { pid },
            Err(err) => {
                self.runtime.unmount_root(&request.rootfs.target);
                error(err.to_string())
            }
        }
    }

    fn try_create(&mut self, request: &CreateRequest) -> Result<i32, ShimError> {
        self.runtime.mount_root(&request.rootfs)?;
        let log = LogWriter::open(&request.log_path, LOG_MAX_SIZE, LOG_MAX_FILES).map_err(|e| {
            ShimError::Io {
                what: request.log_path.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let stdin = if request.stdin {
            let (r, w) = pipe()?;
            drop(w);
            Some(r)
        } else {
            None
        };
        let pid = self.runtime.create(
            &request.id,
            &request.bundle,
            Stdio {
                stdin,
                stdout: out_w,
                stderr: err_w,
            },
        )?;
        if let Some(adj) = request.oom_score_adj {
            // The init waits for start: its children inherit the score set now.
            if let Err(err) = super::runtime::set_oom_score_adj(pid, adj) {
                let _ = self.runtime.delete(&request.id);
                let _ = waitpid(Pid::from_raw(pid), None);
                return Err(err.into());
            }
        }
        let owner = Owner::Container(request.id.clone());
        self.add_pipe(out_r, owner.clone(), Stream::Stdout)?;
        self.add_pipe(err_r, owner.clone(), Stream::Stderr)?;
        self.pids.insert(pid, owner);
        self.containers.insert(
            request.id.clone(),
            Container {
                info: ContainerInfo {
                    id: request.id.clone(),
                    name: request.name.clone(),
                    status: ContainerStatus::Created,
                    pid: Some(pid),
                    created_at: now_nanos(),
                    started_at: None,
                    exit: None,
                    labels: request.labels.clone(),
                },
                log,
                log_failures: FailureReport::default(),
                root: request.rootfs.target.clone(),
                bundle: request.bundle.clone(),
                open_pipes: 2,
            },
        );
        Ok(pid)
    }

    fn add_pipe(&mut self, fd: OwnedFd, owner: Owner, stream: Stream) -> Result<(), ShimError> {
        set_nonblocking(&fd)?;
        let token = self.token();
        self.poll
            .registry()
            .register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)
            .map_err(io_err("epoll"))?;
        self.sources.insert(
            token,
            Source::Pipe {
                owner,
                stream,
                file: File::from(fd),
            },
        );
        Ok(())
    }

    fn start(&mut self, id: &str) -> Response {
        let Some(container) = self.containers.get_mut(id) else {
            return error(format!("no container {id}"));
        };
        if let Some(exit) = container.info.exit {
            return error(format!(
                "container {id} exited with code {} before it was started",
                exit.code
            ));
        }
        match self.runtime.start(id) {
            Ok(()) => {
                container.info.status = ContainerStatus::Running;
                container.info.started_at = Some(now_nanos());
                Response::Ok
            }
            Err(err) => error(err.to_string()),
        }
    }

    fn kill(&mut self, id: &str, signal: i32) -> Response {
        let Some(container) = self.containers.get(id) else {
            return error(format!("no container {id}"));
        };
        if container.info.exit.is_some() {
            return Response::Ok;
        }
        match self.runtime.kill(id, signal) {
            Ok(()) => Response::Ok,
            Err(err) => error(err.to_string()),
        }
    }

    fn remove(&mut self, id: &str) -> Response {
        let Some(container) = self.containers.get(id) else {
            return Response::Ok;
        };
        if container.info.exit.is_none() && container.info.status != ContainerStatus::Created {
            return error(format!("container {id} is still running"));
        }
        let result = self.runtime.delete(id);
        if let Some(pid) = container.info.pid {
            if container.info.exit.is_none() {
                // a created container that never ran: libcontainer killed it; collect it now
                let _ = waitpid(Pid::from_raw(pid), None);
                self.pids.remove(&pid);
            }
        }
        let root = container.root.clone();
        self.runtime.unmount_root(&root);
        let owner = Owner::Container(id.to_string());
        self.drop_pipes_of(&owner);
        if let Some(mut container) = self.containers.remove(id) {
            let _ = container.log.finish();
        }
        match result {
            Ok(()) => Response::Ok,
            Err(err) => error(err.to_string()),
        }
    }

    fn exec(
        &mut self,
        request: ExecRequest,
        mut client: UnixStream,
        client_token: Token,
        early_frames: Vec<u8>,
    ) {
        let running = self
            .containers
            .get(&request.id)
            .is_some_and(|c| c.info.status == ContainerStatus::Running && c.info.exit.is_none());
        if !running {
            let _ = self.poll.registry().deregister(&mut client);
            send_frame(
                &client,
                frame::STATUS,
                &serde_json::json!({"error": format!("container {} is not running", request.id)}),
            );
            return;
        }
        let session = self.next_session;
        self.next_session += 1;
        let started = if request.tty {
            self.try_exec_tty(&request, session)
                .map(|(pid, master)| (pid, None, Some(master), Vec::new()))
        } else {
            self.try_exec(&request, session)
                .map(|(pid, stdin, out_r, err_r)| {
                    (
                        pid,
                        stdin,
                        None,
                        vec![(out_r, Stream::Stdout), (err_r, Stream::Stderr)],
                    )
                })
        };
        let (pid, stdin, tty, pipes) = match started {
            Ok(started) => started,
            Err(err) => {
                send_frame(
                    &client,
                    frame::STATUS,
                    &serde_json::json!({"error": err.to_string()}),
                );
                return;
            }
        };
        let owner = Owner::Exec(session);
        let mut open_pipes = 0;
        for (fd, stream) in pipes {
            if self.add_pipe(fd, owner.clone(), stream).is_ok() {
                open_pipes += 1;
            }
        }
        let tty = match tty {
            Some(master) => match master
                .try_clone()
                .map_err(|e| ShimError::Io {
                    what: "tty".into(),
                    source: e,
                })
                .and_then(|reader| {
                    self.add_pipe(OwnedFd::from(reader), owner.clone(), Stream::Stdout)
                }) {
                Ok(()) => {
                    open_pipes += 1;
                    Some(master)
                }
                Err(err) => {
                    tracing::warn!(%err, "exec terminal");
                    None
                }
            },
            None => None,
        };
        if self
            .poll
            .registry()
            .register(&mut client, client_token, Interest::READABLE)
            .is_ok()
        {
            self.sources
                .insert(client_token, Source::ExecClient { session });
        }
        self.pids.insert(pid, owner);
        self.sessions.insert(
            session,
            ExecSession {
                client,
                client_token,
                stdin,
                tty,
                inbuf: early_frames,
                open_pipes,
                exit_code: None,
                pid,
            },
        );
        // Frames read together with the request will not wake epoll again: apply them now.
        self.read_exec_client(session);
    }

    /// The exec's OCI process, written to a file in the run directory: the container's own
    /// process (user, capabilities, no_new_privs, cwd, env) with the exec's command, as
    /// containerd's CRI exec builds it.
    fn write_exec_process(
        &self,
        request: &ExecRequest,
        session: u64,
    ) -> Result<PathBuf, ShimError> {
        use std::os::unix::fs::OpenOptionsExt;
        let config = self.containers[&request.id].bundle.join("config.json");
        let spec: serde_json::Value = std::fs::read(&config)
            .map_err(io_err(config.display().to_string()))
            .and_then(|bytes| {
                serde_json::from_slice(&bytes).map_err(|e| ShimError::Io {
                    what: config.display().to_string(),
                    source: e.into(),
                })
            })?;
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(request.command);
        process["terminal"] = serde_json::json!(request.tty);
        let process_json = self.run_dir.join(format!("exec-{session}.json"));
        // Only root reads it: it holds the container's environment.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&process_json)
            .and_then(|mut file| file.write_all(process.to_string().as_bytes()))
            .map_err(io_err(process_json.display().to_string()))?;
        Ok(process_json)
    }

    /// A terminal exec: libcontainer creates the pty inside the container and hands us its
    /// master.
    fn try_exec_tty(
        &mut self,
        request: &ExecRequest,
        session: u64,
    ) -> Result<(i32, File), ShimError> {
        let process_json = self.write_exec_process(request, session)?;
        let socket_path = self.run_dir.join(format!("console-{session}.sock"));
        let _ = std::fs::remove_file(&socket_path);
        let listener = std::os::unix::net::UnixListener::bind(&socket_path)
            .map_err(io_err(socket_path.display().to_string()))?;
        let result = self
            .runtime
            .exec_tty(&request.id, &process_json, &socket_path)
            .map_err(ShimError::from)
            .and_then(|pid| receive_terminal(&listener).map(|master| (pid, master)));
        let _ = std::fs::remove_file(&process_json);
        let _ = std::fs::remove_file(&socket_path);
        result
    }

    #[allow(clippy::type_complexity)]
    fn try_exec(
        &mut self,
        request: &ExecRequest,
        session: u64,
    ) -> Result<(i32, Option<File>, OwnedFd, OwnedFd), ShimError> {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (stdin_child, stdin_ours) = if request.stdin {
            let (r, w) = pipe()?;
            (Some(r), Some(File::from(w)))
        } else {
            (None, None)
        };
        let process_json = self.write_exec_process(request, session)?;
        let pid = self.runtime.exec(
            &request.id,
            &process_json,
            Stdio {
                stdin: stdin_child,
                stdout: out_w,
                stderr: err_w,
            },
        );
        let _ = std::fs::remove_file(&process_json);
        Ok((pid?, stdin_ours, out_r, err_r))
    }

    fn read_exec_client(&mut self, session_id: u64) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        let mut chunk = [0u8; 16384];
        let mut closed = false;
        loop {
            match session.client.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => session.inbuf.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        for (channel, payload) in frame::decode(&mut session.inbuf) {
            match channel {
                frame::STDIN if session.tty.is_some() => {
                    if let Some(tty) = session.tty.as_ref() {
                        let _ = write_all_blocking(tty.as_raw_fd(), &payload);
                    }
                }
                frame::RESIZE => {
                    if let (Some(tty), Ok(size)) = (
                        session.tty.as_ref(),
                        serde_json::from_slice::<serde_json::Value>(&payload),
                    ) {
                        resize(tty, &size);
                    }
                }
                frame::STDIN => {
                    if let Some(stdin) = session.stdin.as_mut() {
                        if write_all_blocking(stdin.as_raw_fd(), &payload).is_err() {
                            session.stdin = None;
                        }
                    }
                }
                frame::STDIN_EOF => session.stdin = None,
                _ => {}
            }
        }
        // A half-closed client (no more stdin) still reads the output, so it stays registered
        // to see its hang-up; a client gone for good takes its process with it.
        if closed {
            session.stdin = None;
            if peer_hung_up(session.client.as_raw_fd()) {
                self.abandon_session(session_id);
            }
        }
    }

    /// The client of an exec went away (a probe that timed out): kill the process group, so a
    /// background child holding the output dies too, and stop relaying its output.
    fn abandon_session(&mut self, session_id: u64) {
        let Some(session) = self.sessions.get_mut(&session_id) else {
            return;
        };
        if let Some(Source::ExecClient { .. }) = self.sources.remove(&session.client_token) {
            let _ = self.poll.registry().deregister(&mut session.client);
        }
        // Once the leader is reaped and the pipes closed, its number may be reused.
        if session.exit_code.is_none() || session.open_pipes > 0 {
            let _ = nix::sys::signal::killpg(Pid::from_raw(session.pid), Signal::SIGKILL);
        }
        session.open_pipes = 0;
        self.drop_pipes_of(&Owner::Exec(session_id));
        self.maybe_finish_session(session_id);
    }

    fn drain_pipe(&mut self, token: Token) {
        let Some(Source::Pipe {
            owner,
            stream,
            file,
        }) = self.sources.get_mut(&token)
        else {
            return;
        };
        let mut chunk = vec![0u8; 65536];
        let mut eof = false;
        loop {
            match file.read(&mut chunk) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => match owner {
                    Owner::Container(id) => {
                        if let Some(container) = self.containers.get_mut(id) {
                            if let Err(err) = container.log.write(*stream, &chunk[..n]) {
                                if let Some(failures) =
                                    container.log_failures.failed(std::time::Instant::now())
                                {
                                    tracing::warn!(%err, id, failures, "writing container log");
                                }
                            }
                        }
                    }
                    Owner::Exec(session) => {
                        if let Some(session) = self.sessions.get(session) {
                            let channel = match stream {
                                Stream::Stdout => frame::STDOUT,
                                Stream::Stderr => frame::STDERR,
                            };
                            let _ = write_all_blocking(
                                session.client.as_raw_fd(),
                                &frame::encode(channel, &chunk[..n]),
                            );
                        }
                    }
                },
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        if eof {
            let owner = owner.clone();
            self.drop_source(token);
            self.pipe_closed(&owner);
        }
    }

    fn pipe_closed(&mut self, owner: &Owner) {
        match owner {
            Owner::Container(id) => {
                if let Some(container) = self.containers.get_mut(id) {
                    container.open_pipes = container.open_pipes.saturating_sub(1);
                    if container.open_pipes == 0 {
                        let _ = container.log.finish();
                    }
                }
            }
            Owner::Exec(session) => {
                if let Some(s) = self.sessions.get_mut(session) {
                    s.open_pipes = s.open_pipes.saturating_sub(1);
                }
                self.maybe_finish_session(*session);
            }
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
            Some(Owner::Container(id)) => {
                let Some(container) = self.containers.get_mut(&id) else {
                    return;
                };
                let exit = ExitInfo {
                    code,
                    signal,
                    finished_at: now_nanos(),
                    oom_killed: super::runtime::oom_killed(&container.bundle),
                };
                container.info.exit = Some(exit);
                container.info.status = ContainerStatus::Exited;
                container.info.pid = None;
                self.notify(&ExitEvent { id, exit });
            }
            Some(Owner::Exec(session)) => {
                if let Some(s) = self.sessions.get_mut(&session) {
                    s.exit_code = Some(code);
                }
                self.maybe_finish_session(session);
            }
            None => {}
        }
    }

    fn maybe_finish_session(&mut self, session_id: u64) {
        let done = self
            .sessions
            .get(&session_id)
            .is_some_and(|s| s.open_pipes == 0 && s.exit_code.is_some());
        if !done {
            return;
        }
        let Some(mut session) = self.sessions.remove(&session_id) else {
            return;
        };
        if self.sources.remove(&session.client_token).is_some() {
            let _ = self.poll.registry().deregister(&mut session.client);
        }
        send_frame(
            &session.client,
            frame::STATUS,
            &serde_json::json!({"exitCode": session.exit_code}),
        );
    }

    fn notify(&mut self, event: &ExitEvent) {
        let mut line = serde_json::to_vec(event).expect("exit events serialize");
        line.push(b'\n');
        self.watchers
            .retain_mut(|watcher| write_all_blocking(watcher.as_raw_fd(), &line).is_ok());
    }

    fn drop_source(&mut self, token: Token) {
        match self.sources.remove(&token) {
            Some(Source::Request { mut stream, .. }) => {
                let _ = self.poll.registry().deregister(&mut stream);
            }
            Some(Source::Pipe { file, .. }) => {
                let _ = self
                    .poll
                    .registry()
                    .deregister(&mut SourceFd(&file.as_raw_fd()));
            }
            Some(Source::ExecClient { .. }) | None => {}
        }
    }

    fn drop_pipes_of(&mut self, owner: &Owner) {
        let tokens: Vec<Token> = self
            .sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::Pipe { owner: o, .. } if o == owner))
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            self.drop_source(token);
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

/// Takes the terminal master libcontainer sent to the console socket.
fn receive_terminal(listener: &std::os::unix::net::UnixListener) -> Result<File, ShimError> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let (stream, _) = listener.accept().map_err(io_err("console socket"))?;
    let mut name = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let message = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::empty(),
    )
    .map_err(|e| ShimError::Io {
        what: "console socket".into(),
        source: e.into(),
    })?;
    for cmsg in message.cmsgs().map_err(|e| ShimError::Io {
        what: "console socket".into(),
        source: e.into(),
    })? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let Some(fd) = fds.first() {
                return Ok(unsafe { File::from_raw_fd(*fd) });
            }
        }
    }
    Err(ShimError::Io {
        what: "console socket".into(),
        source: std::io::Error::other("no terminal received"),
    })
}

fn resize(tty: &File, size: &serde_json::Value) {
    let window = libc::winsize {
        ws_row: size["height"].as_u64().unwrap_or(24) as u16,
        ws_col: size["width"].as_u64().unwrap_or(80) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &window) };
}

fn error(message: String) -> Response {
    Response::Error { message }
}

fn reply(stream: UnixStream, response: &Response) {
    let mut line = serde_json::to_vec(response).expect("responses serialize");
    line.push(b'\n');
    let _ = write_all_blocking(stream.as_raw_fd(), &line);
}

fn send_frame(stream: &UnixStream, channel: u8, value: &serde_json::Value) {
    let payload = serde_json::to_vec(value).expect("json serializes");
    let _ = write_all_blocking(stream.as_raw_fd(), &frame::encode(channel, &payload));
}

fn into_std(stream: UnixStream) -> std::os::unix::net::UnixStream {
    std::os::unix::net::UnixStream::from(OwnedFd::from(stream))
}

/// Whether the peer of socket `fd` closed both directions (not just its writing half).
fn peer_hung_up(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ready = unsafe { libc::poll(&mut pfd, 1, 0) };
    ready > 0 && pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

/// Writes everything to a possibly non-blocking fd, waiting (bounded) for room.
fn write_all_blocking(fd: RawFd, mut data: &[u8]) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !data.is_empty() {
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n >= 0 {
            data = &data[n as usize..];
            continue;
        }
        let err = std::io::Error::last_os_error();
        match err.kind() {
            ErrorKind::Interrupted => continue,
            ErrorKind::WouldBlock if std::time::Instant::now() < deadline => {
                let mut pfd = libc::pollfd {
                    fd,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                unsafe { libc::poll(&mut pfd, 1, 100) };
            }
            _ => return Err(err),
        }
    }
    Ok(())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), ShimError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::Io {
        what: "pipe".into(),
        source: e.into(),
    })
}

fn set_nonblocking(fd: &OwnedFd) -> Result<(), ShimError> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| ShimError::Io {
        what: "fcntl".into(),
        source: e.into(),
    })?;
    fcntl(
        fd,
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| ShimError::Io {
        what: "fcntl".into(),
        source: e.into(),
    })?;
    Ok(())
}

pub fn now_nanos() -> i64 {
    jiff::Timestamp::now().as_nanosecond() as i64
}
