//! `Watch` connections: the agent's stream of container exits, one JSON line each. A watcher
//! that stops reading is dropped rather than waited for.

use std::io::{ErrorKind, Read};

use mio::net::UnixStream;
use mio::Token;

use super::outbuf::OutBuf;
use super::protocol::ExitEvent;
use super::server::{Shim, Source};

/// Exit events queued for a watcher (the agent) that is not reading, before it is dropped.
const WATCHER_LIMIT: usize = 1024 * 1024;

/// A `Watch` connection: exit events, one JSON line each.
pub(super) struct Watcher {
    stream: UnixStream,
    out: OutBuf,
}

impl Shim {
    pub(super) fn watch(&mut self, mut stream: UnixStream, token: Token) {
        if self.register_client(&mut stream, token).is_ok() {
            self.sources.insert(token, Source::Watcher);
            self.watchers.insert(
                token,
                Watcher {
                    stream,
                    out: OutBuf::new(WATCHER_LIMIT),
                },
            );
        }
    }

    /// A watcher has room again, or hung up.
    pub(super) fn watcher_ready(&mut self, token: Token) {
        let Some(watcher) = self.watchers.get_mut(&token) else {
            return;
        };
        let mut chunk = [0u8; 256];
        let hung_up = loop {
            match watcher.stream.read(&mut chunk) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(err) if err.kind() == ErrorKind::WouldBlock => break false,
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        if hung_up || watcher.out.flush(&watcher.stream).is_err() {
            self.drop_watcher(token);
        }
    }

    pub(super) fn notify(&mut self, event: &ExitEvent) {
        let mut line = serde_json::to_vec(event).expect("exit events serialize");
        line.push(b'\n');
        let lagging: Vec<Token> = self
            .watchers
            .iter_mut()
            .filter_map(|(token, w)| {
                let lagging = w.out.write(&w.stream, &line).is_err() || w.out.is_full();
                lagging.then_some(*token)
            })
            .collect();
        for token in lagging {
            tracing::warn!("dropping an exit watcher that does not read");
            self.drop_watcher(token);
        }
    }

    fn drop_watcher(&mut self, token: Token) {
        if let Some(mut watcher) = self.watchers.remove(&token) {
            let _ = self.poll.registry().deregister(&mut watcher.stream);
        }
        self.sources.remove(&token);
    }
}
