//! A [`kube::Client`] that calls the agent's router in process, as a controller's own user:
//! kube-runtime's watches, reflectors and event recorder over the same handlers a remote
//! client reaches, with no socket in between.

use axum::http::{header, HeaderValue, Request};
use peapod_apiserver::authn::User;
use tower::ServiceExt;

/// A client whose requests reach `router` as `user`, `user_agent` naming the field manager of
/// its writes, as client-go's User-Agent does.
pub fn in_process(router: axum::Router, user: User, user_agent: &'static str) -> kube::Client {
    let agent = HeaderValue::from_static(user_agent);
    let service = router.map_request(move |request: Request<kube::client::Body>| {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(user.clone());
        parts.headers.insert(header::USER_AGENT, agent.clone());
        Request::from_parts(parts, axum::body::Body::new(body))
    });
    kube::Client::new(service, "default")
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use axum::Extension;
    use k8s_openapi::api::core::v1::Namespace;

    use super::*;

    #[tokio::test]
    async fn requests_carry_the_user_and_agent() {
        let router = axum::Router::new().route(
            "/api/v1/namespaces/{name}",
            get(
                |Extension(user): Extension<User>, headers: axum::http::HeaderMap| async move {
                    let agent = headers[header::USER_AGENT].to_str().unwrap_or_default();
                    let name = format!("{}-{agent}", user.name);
                    axum::Json(serde_json::json!({
                        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name},
                    }))
                },
            ),
        );
        let user = User::new("system:serviceaccount:kube-system:tester", &[]);
        let client = in_process(router, user, "tester");
        let namespaces = kube::Api::<Namespace>::all(client);
        let found = namespaces.get("any").await.expect("the router answers");
        assert_eq!(
            found.metadata.name.as_deref(),
            Some("system:serviceaccount:kube-system:tester-tester")
        );
    }
}
