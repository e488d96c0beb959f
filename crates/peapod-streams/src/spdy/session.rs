//! A SPDY/3.1 session over one connection, in the server role (opens even stream ids, accepts
//! odd ones) or the client role (the reverse), behaving as moby/spdystream does for client-go
//! and kubelet:
//!
//! - `Session::server(io)` / `Session::client(io)` start a reader and a writer task and return
//!   the [`Session`] handle and the [`Incoming`] streams the peer opens.
//! - [`Incoming::next`] yields each peer-opened stream as a [`PendingStream`] with its headers:
//!   [`PendingStream::accept`] answers SYN_REPLY (kubelet replies to every stream its handler
//!   takes; kube's client waits 30 s for it), [`PendingStream::reject`] (or dropping it) resets
//!   it, as kubelet's handler does with streams it refuses.
//! - [`Session::open`] sends SYN_STREAM and waits for the SYN_REPLY, as client-go does.
//! - PINGs are answered; RST_STREAM answers frames for unknown streams and the session lives
//!   on; GOAWAY from the peer stops new streams only. WINDOW_UPDATE and SETTINGS are ignored,
//!   as spdystream ignores them (it never sends WINDOW_UPDATE, so waiting on windows would stall
//!   Go peers); streams send WINDOW_UPDATEs as they consume, which Go ignores.
//! - Back-pressure: a stream whose reader does not read fills its bounded buffer, and then the
//!   session stops reading the connection until it does (spdystream's behaviour too).
//! - When the connection ends every stream reads EOF (if the peer had sent FIN) or an error,
//!   [`Incoming::next`] returns `None` and [`Session::closed`] resolves. When every handle
//!   (session, incoming, streams) is dropped, the session closes itself as [`Session::close`]
//!   does: GOAWAY, then the write side of the connection is shut down.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};

use super::frame::{Frame, GoAwayStatus, RstStatus, MAX_STREAM_ID};
use super::headers::Headers;
use super::outbox::{self, Outbox};
use super::reader;
use super::stream::{Stream, StreamShared};
use super::SpdyError;

/// How long a closing session keeps reading (draining the peer's last frames so closing does
/// not turn into a TCP reset) and its writer keeps flushing after the peer is gone.
pub(crate) const LINGER: Duration = Duration::from_secs(5);
/// Peer-opened streams waiting for [`Incoming::next`] before the reader waits.
const INCOMING_BACKLOG: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Client,
    Server,
}

impl Role {
    /// The first stream id this side opens (client odd, server even), as spdystream numbers them;
    /// ping ids follow the same parity.
    fn first_id(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 2,
        }
    }

    pub(crate) fn is_own_id(self, id: u32) -> bool {
        id % 2 == self.first_id() % 2
    }
}

/// Where the session is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    Open,
    /// GOAWAY is queued: the reader drains for at most [`LINGER`].
    Closing,
    /// The reader stops now (the writer failed, or a protocol error).
    Stopped,
}

#[derive(Debug)]
struct State {
    streams: HashMap<u32, Arc<StreamShared>>,
    next_stream_id: u32,
    next_ping_id: u32,
    pings: HashMap<u32, oneshot::Sender<()>>,
    last_peer_stream_id: u32,
    /// GOAWAY sent: new peer streams are ignored.
    going_away: bool,
    /// GOAWAY received: no new streams may be opened.
    peer_went_away: bool,
    /// The reader is done: the connection is over.
    ended: bool,
}

/// The session's shared core, held by its tasks and handles.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) role: Role,
    pub(crate) outbox: Outbox,
    state: Mutex<State>,
    phase: watch::Sender<Phase>,
    ended: watch::Sender<bool>,
    writer_done: watch::Sender<bool>,
}

/// Held by every user-facing handle; when the last one goes, the session closes.
#[derive(Debug)]
pub(crate) struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.begin_close(GoAwayStatus::OK);
    }
}

impl Inner {
    fn new(role: Role) -> Inner {
        Inner {
            role,
            outbox: Outbox::default(),
            state: Mutex::new(State {
                streams: HashMap::new(),
                next_stream_id: role.first_id(),
                next_ping_id: role.first_id(),
                pings: HashMap::new(),
                last_peer_stream_id: 0,
                going_away: false,
                peer_went_away: false,
                ended: false,
            }),
            phase: watch::Sender::new(Phase::Open),
            ended: watch::Sender::new(false),
            writer_done: watch::Sender::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn stream(&self, id: u32) -> Option<Arc<StreamShared>> {
        self.lock().streams.get(&id).cloned()
    }

    pub(crate) fn forget(&self, id: u32) {
        self.lock().streams.remove(&id);
    }

    /// Registers a peer-opened stream; `None` when the id breaks the rules (a protocol error
    /// for that stream) and `Some(None)` when the stream is to be ignored (GOAWAY sent).
    pub(crate) fn register_peer_stream(
        &self,
        id: u32,
        remote_fin: bool,
        unidirectional: bool,
    ) -> Option<Option<Arc<StreamShared>>> {
        let mut state = self.lock();
        if self.role.is_own_id(id) || id <= state.last_peer_stream_id {
            return None;
        }
        state.last_peer_stream_id = id;
        if state.going_away || state.ended {
            return Some(None);
        }
        let shared = StreamShared::accepted(id, remote_fin, unidirectional);
        state.streams.insert(id, shared.clone());
        Some(Some(shared))
    }

    pub(crate) fn pong(&self, id: u32) {
        if let Some(waiter) = self.lock().pings.remove(&id) {
            let _ = waiter.send(());
        }
    }

    /// GOAWAY received: streams this side opened above `last_good` were never processed.
    pub(crate) fn peer_went_away(&self, last_good: u32) {
        let refused: Vec<_> = {
            let mut state = self.lock();
            state.peer_went_away = true;
            let refused: Vec<u32> = state
                .streams
                .iter()
                .filter(|(id, stream)| {
                    self.role.is_own_id(**id) && **id > last_good && stream.awaiting_reply()
                })
                .map(|(id, _)| *id)
                .collect();
            refused
                .iter()
                .filter_map(|id| state.streams.remove(id))
                .collect()
        };
        for stream in refused {
            stream.refused();
        }
    }

    /// Queues GOAWAY and closes the write queue behind it (once).
    pub(crate) fn begin_close(&self, status: GoAwayStatus) {
        let last_good_stream_id = {
            let mut state = self.lock();
            if state.going_away {
                return;
            }
            state.going_away = true;
            state.last_peer_stream_id
        };
        let _ = self.outbox.push(Frame::GoAway {
            last_good_stream_id,
            status,
        });
        self.outbox.close();
        self.phase
            .send_if_modified(|phase| raise(phase, Phase::Closing));
    }

    /// The reader is done: every stream and waiter learns the connection is over.
    pub(crate) fn reader_ended(&self) {
        let (streams, pings) = {
            let mut state = self.lock();
            state.ended = true;
            (
                std::mem::take(&mut state.streams),
                std::mem::take(&mut state.pings),
            )
        };
        drop(pings);
        for stream in streams.into_values() {
            stream.session_closed();
        }
        self.outbox.close();
        self.ended.send_replace(true);
    }

    /// The writer is done: nothing more is written, so the reader stops too.
    fn writer_ended(&self) {
        self.outbox.fail();
        self.phase
            .send_if_modified(|phase| raise(phase, Phase::Stopped));
        self.writer_done.send_replace(true);
    }

    /// Resolves when the reader should stop: at once when stopped, [`LINGER`] after closing.
    pub(crate) async fn stop_reading(&self) {
        let mut phase = self.phase.subscribe();
        let _ = phase.wait_for(|phase| *phase >= Phase::Closing).await;
        let linger = tokio::time::sleep(LINGER);
        tokio::select! {
            () = linger => {}
            _ = phase.wait_for(|phase| *phase == Phase::Stopped) => {}
        }
    }

    /// Resolves [`LINGER`] after the reader ended: the writer's deadline.
    async fn stop_writing(&self) {
        let mut ended = self.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
        tokio::time::sleep(LINGER).await;
    }
}

fn raise(phase: &mut Phase, to: Phase) -> bool {
    if *phase < to {
        *phase = to;
        true
    } else {
        false
    }
}

/// A handle on a session; clones share it.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<Inner>,
    owner: Arc<Owner>,
}

/// The streams the peer opens, in order.
#[derive(Debug)]
pub struct Incoming {
    streams: mpsc::Receiver<PendingStream>,
    _owner: Arc<Owner>,
}

impl Incoming {
    /// The next stream the peer opened; `None` once the connection is over.
    pub async fn next(&mut self) -> Option<PendingStream> {
        self.streams.recv().await
    }
}

/// A peer-opened stream not yet answered: accept it (SYN_REPLY) or reject it (RST_STREAM).
/// Dropping it rejects it.
#[derive(Debug)]
pub struct PendingStream {
    shared: Option<Arc<StreamShared>>,
    inner: Arc<Inner>,
    headers: Headers,
    owner: Arc<Owner>,
}

impl PendingStream {
    pub(crate) fn new(
        shared: Arc<StreamShared>,
        headers: Headers,
        owner: Arc<Owner>,
    ) -> PendingStream {
        PendingStream {
            shared: Some(shared),
            inner: owner.0.clone(),
            headers,
            owner,
        }
    }

    pub fn id(&self) -> u32 {
        self.shared.as_ref().map_or(0, |shared| shared.id)
    }

    /// The headers of the peer's SYN_STREAM.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// Answers SYN_REPLY (empty headers, as kubelet does) and returns the stream.
    pub fn accept(mut self) -> Stream {
        let shared = self
            .shared
            .take()
            .expect("a pending stream is answered once");
        let _ = self.inner.outbox.push(Frame::SynReply {
            stream_id: shared.id,
            fin: false,
            headers: Headers::new(),
        });
        let headers = std::mem::take(&mut self.headers);
        Stream::new(shared, self.inner.clone(), headers, self.owner.clone())
    }

    /// Resets the stream (RST_STREAM CANCEL, as spdystream's `Reset`).
    pub fn reject(mut self) {
        self.reset();
    }

    fn reset(&mut self) {
        if let Some(shared) = self.shared.take() {
            let _ = self.inner.outbox.push(Frame::RstStream {
                stream_id: shared.id,
                status: RstStatus::CANCEL,
            });
            self.inner.forget(shared.id);
        }
    }
}

impl Drop for PendingStream {
    fn drop(&mut self) {
        self.reset();
    }
}

impl Session {
    /// A session in the server role (kubelet's side of exec, attach and port-forward).
    pub fn server<T>(io: T) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Session::start(io, Role::Server)
    }

    /// A session in the client role (kubectl's side).
    pub fn client<T>(io: T) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Session::start(io, Role::Client)
    }

    fn start<T>(io: T, role: Role) -> (Session, Incoming)
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (read_half, mut write_half) = tokio::io::split(io);
        let inner = Arc::new(Inner::new(role));
        let owner = Arc::new(Owner(inner.clone()));
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_BACKLOG);
        tokio::spawn(reader::run(
            inner.clone(),
            read_half,
            incoming_tx,
            Arc::downgrade(&owner),
        ));
        let writer_inner = inner.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = outbox::write_frames(&writer_inner.outbox, &mut write_half) => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "spdy: writing the connection failed");
                    }
                }
                () = writer_inner.stop_writing() => {}
            }
            writer_inner.writer_ended();
        });
        let incoming = Incoming {
            streams: incoming_rx,
            _owner: owner.clone(),
        };
        (Session { inner, owner }, incoming)
    }

    /// Opens a stream: sends SYN_STREAM with `headers` and waits for the peer's SYN_REPLY
    /// (client-go bounds this wait with a 30 s timeout; wrap the call to do the same).
    pub async fn open(&self, headers: Headers) -> Result<Stream, SpdyError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let shared = {
            let mut state = self.inner.lock();
            if state.ended || state.going_away {
                return Err(SpdyError::SessionClosed);
            }
            if state.peer_went_away {
                return Err(SpdyError::GoneAway);
            }
            let id = state.next_stream_id;
            if id > MAX_STREAM_ID {
                return Err(SpdyError::StreamIdsExhausted);
            }
            state.next_stream_id += 2;
            let shared = StreamShared::opened(id, reply_tx);
            state.streams.insert(id, shared.clone());
            // Queued under the state lock so stream ids reach the wire in increasing order.
            self.inner.outbox.push(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                fin: false,
                unidirectional: false,
                headers: headers.clone(),
            })?;
            shared
        };
        match reply_rx.await {
            Ok(Ok(())) => Ok(Stream::new(
                shared,
                self.inner.clone(),
                headers,
                self.owner.clone(),
            )),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(SpdyError::SessionClosed),
        }
    }

    /// Sends a PING and waits for its echo.
    pub async fn ping(&self) -> Result<Duration, SpdyError> {
        let (pong_tx, pong_rx) = oneshot::channel();
        let id = {
            let mut state = self.inner.lock();
            if state.ended {
                return Err(SpdyError::SessionClosed);
            }
            let id = state.next_ping_id;
            state.next_ping_id = match id.checked_add(2) {
                Some(next) => next,
                None => self.inner.role.first_id(),
            };
            state.pings.insert(id, pong_tx);
            id
        };
        let sent = Instant::now();
        self.inner.outbox.push(Frame::Ping { id })?;
        pong_rx.await.map_err(|_| SpdyError::SessionClosed)?;
        Ok(sent.elapsed())
    }

    /// Sends GOAWAY, shuts down the write side of the connection once everything queued is
    /// written, and waits for that. Streams cannot write afterwards; reads go on until the peer
    /// closes (or [`LINGER`] passes).
    pub async fn close(&self) {
        self.inner.begin_close(GoAwayStatus::OK);
        let mut done = self.inner.writer_done.subscribe();
        let _ = done.wait_for(|done| *done).await;
    }

    /// Resolves when the connection is over (the peer closed or broke it, or the session
    /// closed); a stream's FIN does not count.
    pub async fn closed(&self) {
        let mut ended = self.inner.ended.subscribe();
        let _ = ended.wait_for(|ended| *ended).await;
    }

    pub fn is_closed(&self) -> bool {
        *self.inner.ended.borrow()
    }
}

/// Weak reference to the owner for the reader: peer streams keep the session alive only once
/// handed out.
pub(crate) type WeakOwner = Weak<Owner>;
