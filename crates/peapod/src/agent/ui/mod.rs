//! The topology page (issue 17) on the HTTPS listener under `/ui/`: its login and its static
//! files, nothing else. The page is an API client like kubectl: it reads the regular API
//! paths with the session cookie and `X-Peapod-UI: 1` ([`super::authn`]), so RBAC decides
//! what it sees. The page's paths pass the authenticator without credentials; the page's
//! files go only where it found a live session; every answer carries a strict
//! Content-Security-Policy.

pub mod assets;
pub mod command;
pub mod cookies;
pub mod links;
mod login;
pub mod sessions;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Extension;
use axum::Router;

use super::authn::{Authenticator, Credential};
use sessions::Sessions;

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// What the page's routes share: the authenticator, which holds the sessions and checks the
/// tokens of token sessions.
#[derive(Clone, Debug)]
pub struct Ui {
    authenticator: Arc<Authenticator>,
}

impl Ui {
    fn sessions(&self) -> &Sessions {
        self.authenticator.sessions()
    }
}

/// The page's routes for the HTTPS listener (every `/ui/` path is theirs).
pub fn routes(authenticator: Arc<Authenticator>) -> Router {
    Router::new()
        .route("/ui", get(|| async { see_other("/ui/") }))
        .route("/ui/", get(page))
        .route("/ui/login", get(login::show).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/{*file}", get(page).fallback(not_found))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(Ui { authenticator })
}

/// `GET /ui/` and `GET /ui/<file>`: the page's files, to a live session only but for the
/// stylesheet the login page needs. The authenticator has checked the session already.
async fn page(uri: Uri, credential: Option<Extension<Credential>>) -> Response {
    let file = match uri.path().strip_prefix("/ui/") {
        Some("") | None => "index.html",
        Some(file) => file,
    };
    let in_session = credential.is_some_and(|Extension(c)| c == Credential::PageSession);
    if !assets::is_public(file) && !in_session {
        return see_other("/ui/login");
    }
    match assets::get(file) {
        Some(asset) => ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response(),
        None => not_found().await,
    }
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

/// 303 to `location` (a GET there, whatever the request's method).
fn see_other(location: &'static str) -> Response {
    let location = [(header::LOCATION, location)];
    (StatusCode::SEE_OTHER, location).into_response()
}

/// The headers of every answer under `/ui/`; login answers set `no-store` themselves.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests;
