//! Backend connections kept for reuse, as nginx's upstream keepalive: per endpoint and
//! protocol, HTTP/1.1 connections whose last exchange is over (at most [`MAX_IDLE`]) and
//! one multiplexed HTTP/2 connection; closed ones and those idle for [`IDLE_TIMEOUT`] are
//! dropped.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};

use crate::annotations::BackendProtocol;

/// ingress-nginx's `upstream-keepalive-connections` default.
const MAX_IDLE: usize = 320;
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub enum Sender {
    Http1(http1::SendRequest<Incoming>),
    Http2(http2::SendRequest<Incoming>),
}

impl Sender {
    fn is_closed(&self) -> bool {
        match self {
            Sender::Http1(sender) => sender.is_closed(),
            Sender::Http2(sender) => sender.is_closed(),
        }
    }

    fn is_ready(&self) -> bool {
        match self {
            Sender::Http1(sender) => sender.is_ready(),
            Sender::Http2(sender) => sender.is_ready(),
        }
    }
}

type Key = (SocketAddr, BackendProtocol);

#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<Key, Vec<(Instant, Sender)>>>,
}

impl Pool {
    /// A ready connection to `address`, if one is kept.
    pub fn take(&self, address: SocketAddr, protocol: BackendProtocol) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let senders = idle.get_mut(&(address, protocol))?;
        senders.retain(|(_, sender)| !sender.is_closed());
        let position = senders.iter().position(|(_, sender)| sender.is_ready())?;
        match &mut senders[position] {
            (used, Sender::Http2(shared)) => {
                *used = Instant::now();
                Some(Sender::Http2(shared.clone()))
            }
            (_, Sender::Http1(_)) => Some(senders.swap_remove(position).1),
        }
    }

    /// Keeps `sender` for the next request to `address`.
    pub fn put(&self, address: SocketAddr, protocol: BackendProtocol, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        idle.retain(|_, senders| {
            senders.retain(|(used, s)| !s.is_closed() && now.duration_since(*used) < IDLE_TIMEOUT);
            !senders.is_empty()
        });
        let senders = idle.entry((address, protocol)).or_default();
        let kept_http2 = senders.iter().any(|(_, s)| matches!(s, Sender::Http2(_)));
        let duplicate = matches!(sender, Sender::Http2(_)) && kept_http2;
        if !duplicate && !sender.is_closed() && senders.len() < MAX_IDLE {
            senders.push((now, sender));
        }
    }
}
