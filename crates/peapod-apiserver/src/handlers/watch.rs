//! watch: a chunked stream of `{"type":..,"object":..}` events, as kube-apiserver's watch cache
//! serves it: synthetic ADDED events for the current state when no resourceVersion is given (or
//! with `sendInitialEvents`), an exact replay from a given resourceVersion, `410 Expired` as an
//! ERROR event when that version is too old, BOOKMARKs when allowed, and an end after
//! `timeoutSeconds`.

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use peapod_store::{WatchEvent, WatchEventType, WatchStream};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::read::ListParams;
use super::{blocking, ApiResult, Scope};
use crate::negotiate::Output;
use crate::selectors::Selection;
use crate::status::ApiError;
use crate::table::{self, IncludeObject};

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(30);
/// kube-apiserver's `minRequestTimeout`: watches without timeoutSeconds end between one and
/// two of these.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where a watch starts.
enum Start {
    /// The current state as ADDED events, then every later change.
    Current { initial_events_end: bool },
    /// Every change after this resourceVersion.
    After(u64),
}

fn start(params: &ListParams) -> ApiResult<Start> {
    let rv = params.resource_version.as_deref().unwrap_or("");
    if params.send_initial_events == Some(true) {
        if params.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::bad_request(
                "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        return Ok(Start::Current {
            initial_events_end: true,
        });
    }
    match rv {
        "" | "0" => Ok(Start::Current {
            initial_events_end: false,
        }),
        other => other
            .parse()
            .map(Start::After)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {other}"))),
    }
}

/// The per-watch state that turns store changes into the events this client should see.
struct Watcher {
    scope: Scope,
    selection: Selection,
    include: IncludeObject,
    bookmarks: bool,
    /// Objects this client has been told about, so one leaving the selection reads DELETED.
    visible: HashSet<(String, String)>,
    headers_sent: bool,
    last_rv: u64,
}

pub async fn watch(scope: Scope) -> ApiResult<Response> {
    let params: ListParams = scope.params()?;
    let selection = params.selection(&scope)?;
    let start = start(&params)?;
    let include = params.include_object()?;
    let timeout = match params.timeout_seconds {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds as u64),
        _ => MIN_REQUEST_TIMEOUT.mul_f64(1.0 + rand_fraction()),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let mut watcher = Watcher {
        bookmarks: params.allow_watch_bookmarks == Some(true),
        scope,
        selection,
        include,
        visible: HashSet::new(),
        headers_sent: false,
        last_rv: 0,
    };
    let stream = watcher.open(start, &tx).await?;
    tokio::spawn(async move {
        if let Some(stream) = stream {
            let _ = tokio::time::timeout(timeout, watcher.run(stream, &tx)).await;
        }
    });
    let body = Body::from_stream(stream_of(rx).map(Ok::<_, std::convert::Infallible>));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    Ok(response)
}

fn stream_of(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

impl Watcher {
    /// Subscribes and queues the initial events; `None` when the stream already ended (410).
    async fn open(
        &mut self,
        start: Start,
        tx: &mpsc::Sender<Bytes>,
    ) -> ApiResult<Option<WatchStream>> {
        let (store, key) = (self.scope.store.clone(), self.scope.kind.storage.clone());
        let namespace = self.scope.namespace().map(str::to_owned);
        match start {
            Start::Current { initial_events_end } => {
                let predicate = self.scope.predicate(&self.selection);
                let (list, stream) = blocking(move || {
                    Ok(store.list_watch_raw(&key, namespace.as_deref(), predicate)?)
                })
                .await?;
                self.last_rv = list.resource_version;
                for stored in list.items {
                    let object = self.scope.served(stored)?;
                    self.send(tx, WatchEventType::Added, object).await;
                }
                if initial_events_end {
                    self.send_bookmark(tx, true).await;
                }
                Ok(Some(stream))
            }
            Start::After(rv) => {
                self.last_rv = rv;
                let opened =
                    blocking(move || Ok(store.watch_raw(&key, namespace.as_deref(), rv)?)).await;
                match opened {
                    Ok(stream) => Ok(Some(stream)),
                    Err(err) if err.code == StatusCode::GONE => {
                        let _ = tx.send(error_event(&err)).await;
                        Ok(None)
                    }
                    Err(err) => Err(err),
                }
            }
        }
    }

    async fn run(&mut self, mut stream: WatchStream, tx: &mpsc::Sender<Bytes>) {
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some(Ok(event)) => self.deliver(tx, event).await,
                    Some(Err(err)) => {
                        let _ = tx.send(error_event(&ApiError::from(err))).await;
                        return;
                    }
                    None => return,
                },
                _ = ticker.tick(), if self.bookmarks => self.send_bookmark(tx, false).await,
                _ = tx.closed() => return,
            }
            if tx.is_closed() {
                return;
            }
        }
    }

    /// Filters one change through the selection: an object entering it reads ADDED, one leaving
    /// it DELETED (judged on the object before the change, as kube's watch cache does).
    async fn deliver(&mut self, tx: &mpsc::Sender<Bytes>, event: WatchEvent) {
        self.last_rv = event.resource_version;
        let codec = self.scope.codec();
        let served = codec.served(event.object).and_then(|object| {
            let previous = event.previous.map(|p| codec.served(p)).transpose()?;
            Ok((object, previous))
        });
        let (object, previous) = match served {
            Ok(served) => served,
            Err(err) => {
                let _ = tx.send(error_event(&err)).await;
                return;
            }
        };
        let strategy = self.scope.strategy.clone();
        let now = self.selection.matches(&object, strategy.as_ref());
        let before = match (&event.kind, &previous) {
            (WatchEventType::Added, _) => false,
            (WatchEventType::Deleted, _) => now || self.visible.contains(&object_key(&object)),
            (_, Some(previous)) => self.selection.matches(previous, strategy.as_ref()),
            (_, None) => self.visible.contains(&object_key(&object)),
        };
        let kind = match (event.kind, before, now) {
            (WatchEventType::Deleted, true, _) => WatchEventType::Deleted,
            (WatchEventType::Deleted, false, _) => return,
            (_, false, true) => WatchEventType::Added,
            (kind, true, true) => kind,
            (_, true, false) => WatchEventType::Deleted,
            (_, false, false) => return,
        };
        self.send(tx, kind, object).await;
    }

    /// Sends one served object as an event of `kind`.
    async fn send(&mut self, tx: &mpsc::Sender<Bytes>, kind: WatchEventType, object: Value) {
        let key = object_key(&object);
        if kind == WatchEventType::Deleted {
            self.visible.remove(&key);
        } else {
            self.visible.insert(key);
        }
        let object = match &self.scope.output {
            Output::Table { .. } => {
                let rv = super::read::resource_version(&object);
                let row = vec![(self.scope.strategy.cells(&object), &object)];
                let no_headers = self.headers_sent;
                self.headers_sent = true;
                let columns = self.scope.strategy.columns();
                let metadata = json!({"resourceVersion": rv});
                table::table(&columns, row, self.include, metadata, no_headers)
            }
            Output::PartialObjectMetadata | Output::PartialObjectMetadataList => {
                table::partial_object_metadata(&object)
            }
            _ => object,
        };
        let _ = tx.send(event_line(kind.as_str(), &object)).await;
    }

    async fn send_bookmark(&mut self, tx: &mpsc::Sender<Bytes>, initial_events_end: bool) {
        let mut metadata = json!({"resourceVersion": self.last_rv.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({
            "kind": self.scope.kind.gvk.kind,
            "apiVersion": self.scope.kind.api_version(),
            "metadata": metadata,
        });
        let _ = tx.send(event_line("BOOKMARK", &object)).await;
    }
}

fn object_key(object: &Value) -> (String, String) {
    let field = |name: &str| {
        object
            .pointer(&format!("/metadata/{name}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("namespace"), field("name"))
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

fn error_event(err: &ApiError) -> Bytes {
    event_line("ERROR", &err.status())
}
