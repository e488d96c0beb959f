//! `POST /ui/login-links`, on the root-only Unix socket alone: a one-time login link for the
//! admin, at the API server's advertised address, which `peapod ui` prints.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};

use super::sessions::Sessions;

pub const PATH: &str = "/ui/login-links";

/// Why no link can be made.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error(
        "this agent serves no HTTPS (PEAPOD_API_LISTEN is off), so it has no page to log in to"
    )]
    NoHttps,
}

impl IntoResponse for LinkError {
    fn into_response(self) -> Response {
        let status = serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": "NotFound",
            "code": 404,
        });
        (StatusCode::NOT_FOUND, Json(status)).into_response()
    }
}

/// What makes login links: the sessions they open, and where the page is served.
#[derive(Clone, Debug)]
pub struct LoginLinks {
    sessions: Arc<Sessions>,
    origin: String,
}

impl LoginLinks {
    /// Links to the HTTPS listener bound to `local`, for a node whose address is `host_ip`.
    pub fn new(sessions: Arc<Sessions>, local: SocketAddr, host_ip: &str) -> LoginLinks {
        LoginLinks {
            sessions,
            origin: advertised_origin(local, host_ip),
        }
    }

    fn issue(&self) -> String {
        let code = self.sessions.issue_code();
        format!("{}/ui/login?code={code}", self.origin)
    }
}

/// The socket's route; `links` is None when the agent serves no HTTPS.
pub fn routes(links: Option<LoginLinks>) -> Router {
    Router::new().route(PATH, post(issue)).with_state(links)
}

async fn issue(State(links): State<Option<LoginLinks>>) -> Result<Response, LinkError> {
    let links = links.ok_or(LinkError::NoHttps)?;
    tracing::info!("issued a login link for the topology page");
    let url = links.issue();
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "url": url }))).into_response())
}

/// `https://address:port` of the listener: the address it is bound to, or the node's own
/// (the one the `kubernetes` Service advertises) when it listens on every address. An IPv6
/// address is bracketed, as a URL needs.
fn advertised_origin(local: SocketAddr, host_ip: &str) -> String {
    if !local.ip().is_unspecified() {
        return format!("https://{local}");
    }
    match host_ip.parse::<IpAddr>() {
        Ok(ip) => format!("https://{}", SocketAddr::new(ip, local.port())),
        Err(_) => format!("https://{host_ip}:{}", local.port()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[test]
    fn the_link_names_the_address_clients_reach() {
        let origin = |addr: &str| advertised_origin(addr.parse().unwrap(), "192.0.2.7");
        assert_eq!(origin("0.0.0.0:6443"), "https://192.0.2.7:6443");
        assert_eq!(origin("[::]:6443"), "https://192.0.2.7:6443");
        assert_eq!(origin("127.0.0.1:7000"), "https://127.0.0.1:7000");
        assert_eq!(origin("[::1]:6443"), "https://[::1]:6443");
        let on_v6_node = advertised_origin("[::]:6443".parse().unwrap(), "fd00::7");
        assert_eq!(on_v6_node, "https://[fd00::7]:6443");
    }

    async fn post_link(links: Option<LoginLinks>) -> (u16, serde_json::Value) {
        let request = axum::http::Request::post(PATH).body(Body::empty()).unwrap();
        let response = routes(links).oneshot(request).await.unwrap();
        let code = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (code, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn each_link_carries_a_fresh_code_or_says_there_is_no_https() {
        let sessions = Arc::new(Sessions::new());
        let links = LoginLinks::new(sessions, "127.0.0.1:7000".parse().unwrap(), "x");
        let (code, first) = post_link(Some(links.clone())).await;
        assert_eq!(code, 201);
        let url = first["url"].as_str().unwrap();
        assert!(
            url.starts_with("https://127.0.0.1:7000/ui/login?code="),
            "{url}"
        );
        assert_ne!(post_link(Some(links)).await.1, first);

        let (code, status) = post_link(None).await;
        assert_eq!(code, 404);
        assert!(status["message"].as_str().unwrap().contains("no HTTPS"));
    }
}
