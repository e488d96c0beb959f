//! The page's routes behind the HTTPS listener's authenticator, as the agent mounts them.

use super::*;
use crate::agent::authn;
use crate::agent::tokens::TokenFile;
use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderMap;
use peapod_apiserver::authn::User;
use tower::ServiceExt;

struct Fixture {
    app: Router,
    authenticator: Arc<Authenticator>,
    _dir: tempfile::TempDir,
}

/// The page's routes beside an API path that answers with its user's name; the token file
/// holds `t0ken` for `robot`.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.csv");
    std::fs::write(&tokens, "t0ken,robot,42,team\n").unwrap();
    let authenticator = Arc::new(Authenticator::new(TokenFile::open(&tokens).unwrap()));
    let whoami = |request: Request| async move {
        let user = request.extensions().get::<User>().cloned().unwrap();
        let cookie = request.headers().contains_key(header::COOKIE);
        format!("{} {cookie}", user.name)
    };
    let app = routes(authenticator.clone())
        .route("/api/v1/pods", get(whoami))
        .layer(axum::middleware::from_fn_with_state(
            authenticator.clone(),
            authn::authenticate,
        ));
    Fixture {
        app,
        authenticator,
        _dir: dir,
    }
}

struct Answer {
    code: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |value| value.to_str().unwrap())
    }

    /// The session id the answer's Set-Cookie gives.
    fn session(&self) -> String {
        let cookie = self.header("set-cookie");
        let value = cookie.strip_prefix("peapod_session=").unwrap();
        value.split(';').next().unwrap().to_owned()
    }
}

async fn call(fixture: &Fixture, request: axum::http::Request<Body>) -> Answer {
    let response = fixture.app.clone().oneshot(request).await.unwrap();
    let code = response.status().as_u16();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        code,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn get_with(path: &str, session: Option<&str>, page_header: bool) -> axum::http::Request<Body> {
    let mut builder = axum::http::Request::get(path);
    if let Some(id) = session {
        builder = builder.header("cookie", format!("other=1; peapod_session={id}"));
    }
    if page_header {
        builder = builder.header("x-peapod-ui", "1");
    }
    builder.body(Body::empty()).unwrap()
}

fn post_form(path: &str, body: &str, origin: Option<&str>) -> axum::http::Request<Body> {
    let mut builder = axum::http::Request::post(path)
        .header("host", "10.0.0.1:6443")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(origin) = origin {
        builder = builder.header("origin", origin);
    }
    builder.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn a_login_link_works_once_and_its_cookie_reads_the_api_with_the_header_only() {
    let fixture = fixture();
    let code = fixture.authenticator.sessions().issue_code();
    let login = format!("/ui/login?code={code}");
    let first = call(&fixture, get_with(&login, None, false)).await;
    assert_eq!((first.code, first.header("location")), (303, "/ui/"));
    let cookie = first.header("set-cookie");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert_eq!(first.header("cache-control"), "no-store");
    let session = first.session();

    let again = call(&fixture, get_with(&login, None, false)).await;
    assert_eq!(again.code, 401);
    assert!(again.body.contains("already used"), "{}", again.body);
    let unknown = call(&fixture, get_with("/ui/login?code=nope", None, false)).await;
    assert_eq!(unknown.code, 401);
    assert!(unknown.body.contains("not valid"), "{}", unknown.body);

    let api = call(&fixture, get_with("/api/v1/pods", Some(&session), true)).await;
    assert_eq!(
        (api.code, api.body.as_str()),
        (200, "system:admin false"),
        "the cookie goes no further than authentication"
    );
    let forged = call(&fixture, get_with("/api/v1/pods", Some(&session), false)).await;
    assert_eq!(forged.code, 401, "a cookie without the page's header");
    let stale = call(&fixture, get_with("/api/v1/pods", Some("nope"), true)).await;
    assert_eq!(stale.code, 401);
}

#[tokio::test]
async fn the_page_needs_a_session_and_carries_its_security_headers() {
    let fixture = fixture();
    let anonymous = call(&fixture, get_with("/ui/", None, false)).await;
    assert_eq!(
        (anonymous.code, anonymous.header("location")),
        (303, "/ui/login")
    );
    assert!(anonymous
        .header("content-security-policy")
        .contains("frame-ancestors 'none'"));
    let form = call(&fixture, get_with("/ui/login", None, false)).await;
    assert_eq!(form.code, 200);
    assert!(form.body.contains("name=\"token\""), "{}", form.body);
    assert_eq!(form.header("cache-control"), "no-store");
    assert_eq!(form.header("x-content-type-options"), "nosniff");
    assert_eq!(form.header("referrer-policy"), "no-referrer");
    let style = call(&fixture, get_with("/ui/app.css", None, false)).await;
    assert_eq!(
        style.code, 200,
        "the login page's stylesheet needs no session"
    );
    assert_eq!(style.header("content-type"), "text/css; charset=utf-8");
    let script = call(&fixture, get_with("/ui/api.js", None, false)).await;
    assert_eq!((script.code, script.header("location")), (303, "/ui/login"));

    let session = fixture
        .authenticator
        .sessions()
        .open(sessions::Login::User(User::admin()));
    let index = call(&fixture, get_with("/ui/", Some(&session), false)).await;
    assert_eq!(index.code, 200);
    assert_eq!(index.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(index.header("cache-control"), "no-cache");
    let missing = call(&fixture, get_with("/ui/nope.js", Some(&session), false)).await;
    assert_eq!(missing.code, 404);
    let redirect = call(&fixture, get_with("/ui", None, false)).await;
    assert_eq!((redirect.code, redirect.header("location")), (303, "/ui/"));
}

#[tokio::test]
async fn a_token_logs_in_as_its_user_and_a_logout_ends_the_session() {
    let fixture = fixture();
    let refused = call(&fixture, post_form("/ui/login", "token=wrong", None)).await;
    assert_eq!(refused.code, 401);
    assert!(refused.body.contains("The token was refused."));
    let foreign = post_form("/ui/login", "token=t0ken", Some("https://evil.example"));
    assert_eq!(call(&fixture, foreign).await.code, 403);

    let ours = post_form("/ui/login", "token=t0ken%0A", Some("https://10.0.0.1:6443"));
    let login = call(&fixture, ours).await;
    assert_eq!((login.code, login.header("location")), (303, "/ui/"));
    let session = login.session();
    let api = call(&fixture, get_with("/api/v1/pods", Some(&session), true)).await;
    assert_eq!((api.code, api.body.as_str()), (200, "robot false"));

    let logout = axum::http::Request::post("/ui/logout")
        .header("cookie", format!("peapod_session={session}"))
        .body(Body::empty())
        .unwrap();
    let out = call(&fixture, logout).await;
    assert_eq!((out.code, out.header("location")), (303, "/ui/login"));
    assert!(out.header("set-cookie").contains("Max-Age=0"));
    let after = call(&fixture, get_with("/api/v1/pods", Some(&session), true)).await;
    assert_eq!(after.code, 401);
}

#[tokio::test]
async fn other_methods_on_the_page_paths_reach_nothing() {
    let fixture = fixture();
    let request = axum::http::Request::post("/ui/login-links")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&fixture, request).await.code, 404);
}

#[tokio::test]
async fn the_page_goes_to_the_session_the_authenticator_found_not_to_a_bearer_token() {
    let fixture = fixture();
    let bearer = axum::http::Request::get("/ui/main.js")
        .header("authorization", "Bearer t0ken")
        .body(Body::empty())
        .unwrap();
    let refused = call(&fixture, bearer).await;
    assert_eq!(
        (refused.code, refused.header("location")),
        (303, "/ui/login")
    );

    let token_session = fixture
        .authenticator
        .sessions()
        .open(sessions::Login::Token("t0ken".into()));
    let script = call(
        &fixture,
        get_with("/ui/main.js", Some(&token_session), false),
    )
    .await;
    assert_eq!(script.code, 200);
    assert!(script.header("content-type").starts_with("text/javascript"));
}
