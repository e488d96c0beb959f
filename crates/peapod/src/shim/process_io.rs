//! Processes' stdio in the event loop: their output sources (pipes, terminal masters), read
//! into their container's log and attached clients or their exec client, paused while an exec
//! client's queue is full; and their stdins, fed by clients and flushed when writable.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;

use mio::unix::SourceFd;
use mio::{Interest, Token};
use peapod_logs::Stream;

use super::server::{io_err, Owner, Shim, ShimError, Source, READ_BUDGET};
use super::spawn::Connected;
use super::stdin::Stdin;

/// A new process's stdio as the event loop holds it.
pub(super) struct Plugged {
    /// How many output sources it has (each ends with the process).
    pub outputs: u8,
    pub stdin: Option<Stdin>,
    pub terminal: Option<File>,
}

impl Shim {
    /// Registers the output and stdin ends of `owner`'s new process.
    pub(super) fn plug(
        &mut self,
        owner: &Owner,
        connected: Connected,
    ) -> Result<Plugged, ShimError> {
        let mut outputs = 0;
        for (file, stream) in connected.outputs {
            if let Err(err) = self.add_output(file, owner.clone(), stream) {
                self.drop_outputs_of(owner);
                return Err(err);
            }
            outputs += 1;
        }
        let stdin = match connected.stdin {
            Some(file) => match self.add_stdin(file, owner.clone()) {
                Ok(stdin) => Some(stdin),
                Err(err) => {
                    self.drop_outputs_of(owner);
                    return Err(err);
                }
            },
            None => None,
        };
        Ok(Plugged {
            outputs,
            stdin,
            terminal: connected.terminal,
        })
    }

    fn add_output(&mut self, file: File, owner: Owner, stream: Stream) -> Result<(), ShimError> {
        let token = self.token();
        self.poll
            .registry()
            .register(&mut SourceFd(&file.as_raw_fd()), token, Interest::READABLE)
            .map_err(io_err("epoll"))?;
        self.sources.insert(
            token,
            Source::Output {
                owner,
                stream,
                file,
                paused: false,
            },
        );
        Ok(())
    }

    fn add_stdin(&mut self, file: File, owner: Owner) -> Result<Stdin, ShimError> {
        let token = self.token();
        self.poll
            .registry()
            .register(&mut SourceFd(&file.as_raw_fd()), token, Interest::WRITABLE)
            .map_err(io_err("epoll"))?;
        self.sources.insert(token, Source::Stdin { owner });
        Ok(Stdin::new(file, token))
    }

    /// Reads a process's output until the pipe is empty, it ends, or its exec client's queue
    /// is full (then the output is paused until the client catches up).
    pub(super) fn drain_output(&mut self, token: Token) {
        let Some(Source::Output {
            owner,
            stream,
            paused: false,
            ..
        }) = self.sources.get(&token)
        else {
            return;
        };
        let (owner, stream) = (owner.clone(), *stream);
        let mut chunk = vec![0u8; 65536];
        for _ in 0..READ_BUDGET {
            if !self.takes_output(&owner) {
                if let Some(Source::Output { paused, .. }) = self.sources.get_mut(&token) {
                    *paused = true;
                }
                return;
            }
            let Some(Source::Output { file, .. }) = self.sources.get_mut(&token) else {
                return;
            };
            match file.read(&mut chunk) {
                Ok(0) => {
                    self.drop_source(token);
                    return self.output_closed(&owner);
                }
                Ok(n) => self.output(&owner, stream, &chunk[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                // EIO: every end of the terminal's other side is closed.
                Err(_) => {
                    self.drop_source(token);
                    return self.output_closed(&owner);
                }
            }
        }
        self.again(token);
    }

    fn takes_output(&self, owner: &Owner) -> bool {
        match owner {
            Owner::Container(_) => true,
            Owner::Exec(session) => self.sessions.get(session).is_none_or(|s| s.takes_output()),
        }
    }

    fn output(&mut self, owner: &Owner, stream: Stream, data: &[u8]) {
        match owner {
            Owner::Container(id) => self.container_output(id, stream, data),
            Owner::Exec(session) => self.exec_output(*session, stream, data),
        }
    }

    fn output_closed(&mut self, owner: &Owner) {
        match owner {
            Owner::Container(id) => self.container_output_closed(id),
            Owner::Exec(session) => self.exec_output_closed(*session),
        }
    }

    /// Reads `owner`'s paused outputs again (its client caught up).
    pub(super) fn resume_output(&mut self, owner: &Owner) {
        let paused: Vec<Token> = self
            .sources
            .iter_mut()
            .filter_map(|(token, source)| match source {
                Source::Output {
                    owner: o, paused, ..
                } if o == owner && *paused => {
                    *paused = false;
                    Some(*token)
                }
                _ => None,
            })
            .collect();
        for token in paused {
            self.drain_output(token);
        }
    }

    fn stdin_slot(&mut self, owner: &Owner) -> Option<&mut Option<Stdin>> {
        match owner {
            Owner::Container(id) => self.containers.get_mut(id).map(|c| &mut c.stdin),
            Owner::Exec(session) => self.sessions.get_mut(session).map(|s| &mut s.stdin),
        }
    }

    /// Applies `op` to `owner`'s stdin, and closes it when that failed (the process closed
    /// its end) or finished it.
    pub(super) fn feed_stdin(
        &mut self,
        owner: &Owner,
        op: impl FnOnce(&mut Stdin) -> std::io::Result<()>,
    ) {
        let Some(slot) = self.stdin_slot(owner) else {
            return;
        };
        let Some(stdin) = slot.as_mut() else {
            return;
        };
        if op(stdin).is_err() || stdin.is_done() {
            if let Some(stdin) = slot.take() {
                self.forget_stdin(stdin);
            }
        }
    }

    /// Closes `owner`'s stdin now, whatever is queued (its process is gone).
    pub(super) fn close_stdin(&mut self, owner: &Owner) {
        if let Some(stdin) = self.stdin_slot(owner).and_then(Option::take) {
            self.forget_stdin(stdin);
        }
    }

    pub(super) fn forget_stdin(&mut self, stdin: Stdin) {
        self.deregister_fd(stdin.raw_fd());
        self.sources.remove(&stdin.token);
    }

    /// Whether `owner`'s stdin has queued all it may: its clients are not read meanwhile.
    pub(super) fn stdin_full(&mut self, owner: &Owner) -> bool {
        self.stdin_slot(owner)
            .is_some_and(|slot| slot.as_ref().is_some_and(Stdin::is_full))
    }

    pub(super) fn stdin_ready(&mut self, owner: &Owner) {
        self.feed_stdin(owner, Stdin::flush);
        if !self.stdin_full(owner) {
            match owner {
                Owner::Container(id) => self.resume_attach_input(id),
                Owner::Exec(session) => self.resume_exec_input(*session),
            }
        }
    }

    pub(super) fn drop_outputs_of(&mut self, owner: &Owner) {
        let tokens: Vec<Token> = self
            .sources
            .iter()
            .filter(|(_, s)| matches!(s, Source::Output { owner: o, .. } if o == owner))
            .map(|(t, _)| *t)
            .collect();
        for token in tokens {
            self.drop_source(token);
        }
    }
}
