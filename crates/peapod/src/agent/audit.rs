//! The audit log: one line per API request, on both listeners and from the kubelet's
//! in-process client, at info on target `peapod::audit`: who asked (the user the authenticator
//! recorded on the response, or the client's own), what (method and path), the answer's
//! status code and how long it took to start answering (a watch or a log follow streams on
//! after that).

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use peapod_apiserver::authn::User;

/// The target of the audit lines, for `RUST_LOG=peapod::audit=off` and the like.
pub const TARGET: &str = "peapod::audit";

/// The middleware: the outermost layer of each listener, so that refusals are logged too.
pub async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // In-process clients come with their user; the listeners' authenticators answer with it.
    let asked_as = request.extensions().get::<User>().cloned();
    let response = next.run(request).await;
    let user = response
        .extensions()
        .get::<User>()
        .or(asked_as.as_ref())
        .map_or("system:anonymous", |user| user.name.as_str());
    tracing::info!(
        target: TARGET,
        user,
        method = %method,
        path,
        code = response.status().as_u16(),
        duration_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
