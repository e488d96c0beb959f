//! Exec sessions: a process started in a running container, its stdio relayed as frames over
//! the client's connection. Output the client does not read is queued up to a bound, then the
//! process's pipes (or terminal) are not read until the client catches up: the process blocks
//! on its own output. A client that goes away takes the process group with it.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use mio::net::UnixStream;
use mio::Token;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use peapod_logs::Stream;

use super::container::Container;
use super::fd::peer_hung_up;
use super::input::{self, Input};
use super::outbuf::OutBuf;
use super::protocol::{frame, ExecRequest};
use super::server::{
    channel, exit_status, io_err, refuse, Owner, Shim, ShimError, Source, READ_BUDGET,
};
use super::spawn::{self, Connected};
use super::stdin::Stdin;
use super::terminal::WindowSize;

/// Output queued for an exec client before its process's output is no longer read.
const OUTPUT_LIMIT: usize = 1024 * 1024;

pub(super) struct ExecSession {
    client: UnixStream,
    client_token: Token,
    out: OutBuf,
    inbuf: Vec<u8>,
    /// The client is not read while the process's stdin is full.
    input_paused: bool,
    pub stdin: Option<Stdin>,
    terminal: Option<File>,
    open_outputs: u8,
    exit_code: Option<i32>,
    /// The exec'd process, a process group leader (libcontainer's init calls setsid).
    pid: i32,
    /// The client went away: the session ends once the process is reaped.
    abandoned: bool,
    /// The STATUS frame is queued: the session ends once the client has it.
    finished: bool,
}

impl ExecSession {
    /// The client has room for more of the process's output.
    pub fn takes_output(&self) -> bool {
        !self.out.is_full()
    }
}

impl Shim {
    pub(super) fn exec(
        &mut self,
        request: ExecRequest,
        mut client: UnixStream,
        client_token: Token,
        early_frames: Vec<u8>,
    ) {
        if !self
            .containers
            .get(&request.id)
            .is_some_and(Container::is_running)
        {
            return refuse(client, format!("container {} is not running", request.id));
        }
        let id = self.serial();
        let (pid, connected) = match self.start_exec(&request, id) {
            Ok(started) => started,
            Err(err) => return refuse(client, err.to_string()),
        };
        let owner = Owner::Exec(id);
        let plugged = match self.plug(&owner, connected) {
            Ok(plugged) => plugged,
            Err(err) => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                return refuse(client, err.to_string());
            }
        };
        let registered = self.register_client(&mut client, client_token).is_ok();
        self.pids.insert(pid, owner);
        self.sessions.insert(
            id,
            ExecSession {
                client,
                client_token,
                out: OutBuf::new(OUTPUT_LIMIT),
                inbuf: early_frames,
                input_paused: false,
                stdin: plugged.stdin,
                terminal: plugged.terminal,
                open_outputs: plugged.outputs,
                exit_code: None,
                pid,
                abandoned: false,
                finished: false,
            },
        );
        if !registered {
            return self.abandon_session(id);
        }
        self.sources
            .insert(client_token, Source::ExecClient { session: id });
        // Frames read together with the request will not wake epoll again: apply them now.
        self.read_exec_client(id);
    }

    /// Starts the exec's process and connects its stdio (a terminal always takes input).
    fn start_exec(
        &mut self,
        request: &ExecRequest,
        session: u64,
    ) -> Result<(i32, Connected), ShimError> {
        let console = request.tty.then(|| self.console_path());
        let (io, pending) = spawn::prepare(console, request.stdin || request.tty)?;
        let process_json = self.write_exec_process(request, session)?;
        let pid = self.runtime.exec(&request.id, &process_json, io);
        let _ = std::fs::remove_file(&process_json);
        let pid = pid?;
        match pending.connect() {
            Ok(connected) => Ok((pid, connected)),
            Err(err) => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                Err(err)
            }
        }
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

    /// The client has room again, sent something, or went away.
    pub(super) fn exec_client_ready(&mut self, id: u64) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.out.flush(&session.client).is_err() {
            return self.abandon_session(id);
        }
        if session.finished && session.out.is_empty() {
            return self.end_session(id);
        }
        let (input_paused, client_fd) = (session.input_paused, session.client.as_raw_fd());
        if session.takes_output() {
            self.resume_output(&Owner::Exec(id));
        }
        if !input_paused {
            self.read_exec_client(id);
        } else if peer_hung_up(client_fd) {
            self.abandon_session(id);
        }
    }

    /// Applies the client's frames until its socket is empty or the process's stdin is full.
    pub(super) fn read_exec_client(&mut self, id: u64) {
        let owner = Owner::Exec(id);
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let token = session.client_token;
        let mut next = input::decoded(&mut session.inbuf);
        for reads in 0.. {
            match next {
                Input::Frames(frames) => {
                    for (channel, payload) in frames {
                        self.exec_frame(id, channel, &payload);
                    }
                }
                Input::Drained => return,
                Input::Closed => return self.exec_input_closed(id),
                Input::Invalid => return self.abandon_session(id),
            }
            let full = self.stdin_full(&owner);
            let Some(session) = self.sessions.get_mut(&id) else {
                return;
            };
            if session.abandoned {
                return;
            }
            if full {
                session.input_paused = true;
                return;
            }
            if reads == READ_BUDGET {
                return self.again(token);
            }
            next = input::read(&mut session.client, &mut session.inbuf);
        }
    }

    fn exec_frame(&mut self, id: u64, channel: u8, payload: &[u8]) {
        let owner = Owner::Exec(id);
        match channel {
            frame::STDIN => self.feed_stdin(&owner, |stdin| stdin.write(payload)),
            frame::STDIN_EOF => self.feed_stdin(&owner, |stdin| {
                stdin.close_when_drained();
                Ok(())
            }),
            frame::RESIZE => {
                let terminal = self.sessions.get(&id).and_then(|s| s.terminal.as_ref());
                if let (Some(terminal), Some(size)) = (terminal, WindowSize::parse(payload)) {
                    size.apply(terminal);
                }
            }
            _ => {}
        }
    }

    /// The client sends no more: the process's stdin ends. A half-closed client still reads
    /// the output; one gone for good takes its process with it.
    fn exec_input_closed(&mut self, id: u64) {
        self.feed_stdin(&Owner::Exec(id), |stdin| {
            stdin.close_when_drained();
            Ok(())
        });
        let hung_up = self
            .sessions
            .get(&id)
            .is_some_and(|s| peer_hung_up(s.client.as_raw_fd()));
        if hung_up {
            self.abandon_session(id);
        }
    }

    pub(super) fn resume_exec_input(&mut self, id: u64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            if session.input_paused {
                session.input_paused = false;
                self.read_exec_client(id);
            }
        }
    }

    pub(super) fn exec_output(&mut self, id: u64, stream: Stream, data: &[u8]) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let frame = frame::encode(channel(stream), data);
        if session.out.write(&session.client, &frame).is_err() {
            self.abandon_session(id);
        }
    }

    pub(super) fn exec_output_closed(&mut self, id: u64) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.open_outputs = session.open_outputs.saturating_sub(1);
        }
        self.maybe_finish_session(id);
    }

    pub(super) fn exec_exited(&mut self, id: u64, code: i32) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.exit_code = Some(code);
        }
        self.maybe_finish_session(id);
    }

    /// Once the process exited and its output is read, queues the STATUS frame after it.
    fn maybe_finish_session(&mut self, id: u64) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.finished || session.open_outputs > 0 || session.exit_code.is_none() {
            return;
        }
        if session.abandoned {
            return self.end_session(id);
        }
        session.finished = true;
        let status = exit_status(session.exit_code);
        let sent = session.out.write(&session.client, &status).is_ok();
        let flushed = session.out.is_empty();
        self.close_stdin(&Owner::Exec(id));
        if !sent || flushed {
            self.end_session(id);
        }
    }

    /// The client of an exec went away (a probe that timed out): kill the process group, so a
    /// background child holding the output dies too, and stop relaying its output.
    fn abandon_session(&mut self, id: u64) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.abandoned {
            return;
        }
        session.abandoned = true;
        let _ = self.poll.registry().deregister(&mut session.client);
        self.sources.remove(&session.client_token);
        // Once the leader is reaped and the pipes closed, its number may be reused.
        if session.exit_code.is_none() || session.open_outputs > 0 {
            let _ = killpg(Pid::from_raw(session.pid), Signal::SIGKILL);
        }
        session.open_outputs = 0;
        let reaped = session.exit_code.is_some();
        let owner = Owner::Exec(id);
        self.drop_outputs_of(&owner);
        self.close_stdin(&owner);
        if reaped {
            self.end_session(id);
        }
    }

    fn end_session(&mut self, id: u64) {
        let owner = Owner::Exec(id);
        self.drop_outputs_of(&owner);
        self.close_stdin(&owner);
        let Some(mut session) = self.sessions.remove(&id) else {
            return;
        };
        if !session.abandoned {
            let _ = self.poll.registry().deregister(&mut session.client);
            self.sources.remove(&session.client_token);
        }
    }
}
