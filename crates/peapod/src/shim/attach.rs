//! Attach sessions: clients joined to a running container's main process. Each gets the
//! container's output from the moment it attached (besides the log), may feed its stdin and
//! size its terminal, and gets a STATUS frame when the container exits. A client that does not
//! keep up is detached rather than slowing the container or its log down; a client that goes
//! away is simply detached. With `stdinOnce`, the container's stdin closes when the first
//! session that used it ends.

use std::os::fd::AsRawFd;

use mio::net::UnixStream;
use mio::Token;
use peapod_logs::Stream;

use super::fd::peer_hung_up;
use super::input::{self, Input};
use super::outbuf::OutBuf;
use super::protocol::{frame, AttachRequest};
use super::server::{channel, exit_status, refuse, Owner, Shim, Source, READ_BUDGET};
use super::stdin::Stdin;
use super::terminal::WindowSize;

/// Output queued for an attached client before it is detached.
const OUTPUT_LIMIT: usize = 1024 * 1024;

pub(super) struct Attachment {
    client: UnixStream,
    out: OutBuf,
    inbuf: Vec<u8>,
    /// Its STDIN frames go to the container's stdin: it asked to, the container has one, and
    /// its input has not ended.
    input: bool,
    /// Its RESIZE frames size the container's terminal.
    resizes: bool,
    /// Not read while the container's stdin is full.
    input_paused: bool,
    /// The STATUS frame is queued: the client is closed once it has it.
    finished: bool,
}

impl Shim {
    pub(super) fn attach(
        &mut self,
        request: AttachRequest,
        mut client: UnixStream,
        token: Token,
        early_frames: Vec<u8>,
    ) {
        let Some(container) = self.containers.get(&request.id).filter(|c| c.is_running()) else {
            return refuse(client, format!("container {} is not running", request.id));
        };
        let input = request.stdin && container.stdin.as_ref().is_some_and(Stdin::takes_input);
        let resizes = request.tty && container.terminal.is_some();
        if self.register_client(&mut client, token).is_err() {
            return;
        }
        self.sources.insert(
            token,
            Source::AttachClient {
                container: request.id.clone(),
            },
        );
        let attachment = Attachment {
            client,
            out: OutBuf::new(OUTPUT_LIMIT),
            inbuf: early_frames,
            input,
            resizes,
            input_paused: false,
            finished: false,
        };
        if let Some(container) = self.containers.get_mut(&request.id) {
            container.attachments.insert(token, attachment);
        }
        // Frames read together with the request will not wake epoll again: apply them now.
        self.read_attach_client(&request.id, token);
    }

    fn attachment_mut(&mut self, id: &str, token: Token) -> Option<&mut Attachment> {
        self.containers.get_mut(id)?.attachments.get_mut(&token)
    }

    /// The client has room again, sent something, or went away.
    pub(super) fn attach_client_ready(&mut self, id: &str, token: Token) {
        let Some(attachment) = self.attachment_mut(id, token) else {
            return;
        };
        if attachment.out.flush(&attachment.client).is_err() {
            return self.detach(id, token);
        }
        if attachment.finished {
            if attachment.out.is_empty() {
                self.detach(id, token);
            }
            return;
        }
        if !attachment.input_paused {
            self.read_attach_client(id, token);
        } else if peer_hung_up(attachment.client.as_raw_fd()) {
            self.detach(id, token);
        }
    }

    /// Applies the client's frames until its socket is empty or (for a client that feeds
    /// stdin) the container's stdin is full.
    fn read_attach_client(&mut self, id: &str, token: Token) {
        let owner = Owner::Container(id.to_string());
        let Some(attachment) = self.attachment_mut(id, token) else {
            return;
        };
        let mut next = input::decoded(&mut attachment.inbuf);
        for reads in 0.. {
            match next {
                Input::Frames(frames) => {
                    for (channel, payload) in frames {
                        self.attach_frame(id, token, channel, &payload);
                    }
                }
                Input::Drained => return,
                Input::Closed => return self.attach_input_closed(id, token),
                Input::Invalid => return self.detach(id, token),
            }
            let full = self.stdin_full(&owner);
            let Some(attachment) = self.attachment_mut(id, token) else {
                return;
            };
            if attachment.input && full {
                attachment.input_paused = true;
                return;
            }
            if reads == READ_BUDGET {
                return self.again(token);
            }
            next = input::read(&mut attachment.client, &mut attachment.inbuf);
        }
    }

    fn attach_frame(&mut self, id: &str, token: Token, channel: u8, payload: &[u8]) {
        let Some(attachment) = self.attachment_mut(id, token) else {
            return;
        };
        let (input, resizes) = (attachment.input, attachment.resizes);
        match channel {
            frame::STDIN if input => {
                self.feed_stdin(&Owner::Container(id.to_string()), |stdin| {
                    stdin.write(payload)
                });
            }
            frame::STDIN_EOF => self.end_attach_input(id, token),
            frame::RESIZE if resizes => {
                let terminal = self.containers.get(id).and_then(|c| c.terminal.as_ref());
                if let (Some(terminal), Some(size)) = (terminal, WindowSize::parse(payload)) {
                    size.apply(terminal);
                }
            }
            _ => {}
        }
    }

    /// The client sends no more input; with stdinOnce, that closes the container's stdin.
    fn end_attach_input(&mut self, id: &str, token: Token) {
        let Some(container) = self.containers.get_mut(id) else {
            return;
        };
        let Some(attachment) = container.attachments.get_mut(&token) else {
            return;
        };
        if !std::mem::replace(&mut attachment.input, false) || !container.stdin_once {
            return;
        }
        self.feed_stdin(&Owner::Container(id.to_string()), |stdin| {
            stdin.close_when_drained();
            Ok(())
        });
    }

    /// The client closed its writing half (it still gets the output), or went away.
    fn attach_input_closed(&mut self, id: &str, token: Token) {
        self.end_attach_input(id, token);
        let hung_up = self
            .attachment_mut(id, token)
            .is_some_and(|a| peer_hung_up(a.client.as_raw_fd()));
        if hung_up {
            self.detach(id, token);
        }
    }

    pub(super) fn resume_attach_input(&mut self, id: &str) {
        let paused: Vec<Token> = self
            .containers
            .get_mut(id)
            .into_iter()
            .flat_map(|c| c.attachments.iter_mut())
            .filter_map(|(token, a)| {
                std::mem::replace(&mut a.input_paused, false).then_some(*token)
            })
            .collect();
        for token in paused {
            self.read_attach_client(id, token);
        }
    }

    /// Closes the client's connection; the container keeps running.
    fn detach(&mut self, id: &str, token: Token) {
        self.end_attach_input(id, token);
        let Some(mut attachment) = self
            .containers
            .get_mut(id)
            .and_then(|c| c.attachments.remove(&token))
        else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut attachment.client);
        self.sources.remove(&token);
    }

    /// Passes the container's output to every attached client; one that lags too far behind is
    /// detached.
    pub(super) fn fan_out(&mut self, id: &str, stream: Stream, data: &[u8]) {
        let Some(container) = self.containers.get_mut(id) else {
            return;
        };
        if container.attachments.is_empty() {
            return;
        }
        let frame = frame::encode(channel(stream), data);
        let lagging: Vec<Token> = container
            .attachments
            .iter_mut()
            .filter(|(_, a)| !a.finished)
            .filter_map(|(token, a)| {
                let lagging = a.out.write(&a.client, &frame).is_err() || a.out.is_full();
                lagging.then_some(*token)
            })
            .collect();
        for token in lagging {
            self.detach(id, token);
        }
    }

    /// The container exited and its output is all out: each client gets the STATUS frame
    /// after it, and is closed once it has it.
    pub(super) fn finish_attachments(&mut self, id: &str) {
        let Some(container) = self.containers.get_mut(id) else {
            return;
        };
        let status = exit_status(container.info.exit.map(|e| e.code));
        let done: Vec<Token> = container
            .attachments
            .iter_mut()
            .filter(|(_, a)| !a.finished)
            .filter_map(|(token, a)| {
                a.finished = true;
                a.input = false;
                let sent = a.out.write(&a.client, &status).is_ok();
                (!sent || a.out.is_empty()).then_some(*token)
            })
            .collect();
        for token in done {
            self.detach(id, token);
        }
    }

    /// Closes every client of container `id` (it is being removed).
    pub(super) fn close_attachments(&mut self, id: &str) {
        let tokens: Vec<Token> = self
            .containers
            .get(id)
            .map(|c| c.attachments.keys().copied().collect())
            .unwrap_or_default();
        for token in tokens {
            self.detach(id, token);
        }
    }
}
