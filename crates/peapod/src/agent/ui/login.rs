//! The page's logins and logout: a one-time link of `peapod ui` opens a session for the
//! admin; a token posted by the login form (authenticated as a bearer token would be) opens
//! one bound to that token; either sets the session cookie and sends the browser to the page.
//! A refusal answers 401 with the login page saying why.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use peapod_apiserver::authn::User;

use super::sessions::{CodeError, Login};
use super::{assets, cookies, see_other, Ui};

/// Why a login (or logout) was refused; the message is shown on the login page.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Code(#[from] CodeError),
    #[error("The token was refused.")]
    Refused,
    #[error("The login form must be sent as application/x-www-form-urlencoded.")]
    NotAForm,
    #[error("The request came from another site.")]
    CrossSite,
}

impl LoginError {
    fn status(&self) -> StatusCode {
        match self {
            LoginError::Code(_) | LoginError::Refused => StatusCode::UNAUTHORIZED,
            LoginError::NotAForm => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            LoginError::CrossSite => StatusCode::FORBIDDEN,
        }
    }
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        login_page(self.status(), &self.to_string())
    }
}

/// `GET /ui/login`: the login form, or with `?code=` the one-time link's login.
pub async fn show(State(ui): State<Ui>, RawQuery(query): RawQuery) -> Response {
    let Some(code) = query.as_deref().and_then(code_of) else {
        return login_page(StatusCode::OK, "");
    };
    match ui.sessions().redeem(&code, Login::User(User::admin())) {
        Ok(id) => {
            tracing::info!("the topology page logged in with a login link");
            logged_in(&id)
        }
        Err(err) => LoginError::from(err).into_response(),
    }
}

/// `POST /ui/login` with `token=…`: a session bound to the token, if it authenticates.
pub async fn submit(
    State(ui): State<Ui>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, LoginError> {
    if !same_origin(&headers, &uri) {
        return Err(LoginError::CrossSite);
    }
    if !is_form(&headers) {
        return Err(LoginError::NotAForm);
    }
    let token = token_of(&body).ok_or(LoginError::Refused)?;
    let user = ui
        .authenticator
        .bearer_user(&token)
        .await
        .ok_or(LoginError::Refused)?;
    tracing::info!(user = %user.name, "the topology page logged in with a token");
    Ok(logged_in(&ui.sessions().open(Login::Token(token))))
}

/// `POST /ui/logout`: ends the session and clears the cookie. The form's body is read though
/// unused: answering an HTTP/2 request before its body has arrived resets the stream, which
/// clients report as a failed request.
pub async fn logout(
    State(ui): State<Ui>,
    uri: Uri,
    headers: HeaderMap,
    _form: Bytes,
) -> Result<Response, LoginError> {
    if !same_origin(&headers, &uri) {
        return Err(LoginError::CrossSite);
    }
    if let Some(id) = cookies::session_id(&headers) {
        ui.sessions().end(id);
    }
    let mut response = see_other("/ui/login");
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, cookies::clear_session());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The answer that ends a login: the session cookie, and the page.
fn logged_in(id: &str) -> Response {
    let mut response = see_other("/ui/");
    let headers = response.headers_mut();
    headers.insert(header::SET_COOKIE, cookies::set_session(id));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn login_page(status: StatusCode, message: &str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (status, headers, assets::login_page(message)).into_response()
}

/// The `code` of a query string.
fn code_of(query: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, value)| name == "code" && !value.is_empty())
        .map(|(_, value)| value.into_owned())
}

/// The `token` of a form body, trimmed (a pasted token often ends with a newline).
fn token_of(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.trim().to_owned())
        .filter(|token| !token.is_empty())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Whether a browser's form post comes from the page's own origin: browsers say so in
/// `Sec-Fetch-Site` (also under no-referrer, where `Origin` is `null`) or name it in `Origin`;
/// clients that send neither (curl) are not browsers a site could drive.
fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes().eq_ignore_ascii_case(b"same-origin");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()));
    match (origin.to_str(), host) {
        (Ok(origin), Some(host)) => origin.eq_ignore_ascii_case(&format!("https://{host}")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    header::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn the_form_gives_the_token_trimmed() {
        assert_eq!(token_of(b"token=abc.def%2B1%0A"), Some("abc.def+1".into()));
        assert_eq!(token_of(b"other=1&token=t"), Some("t".into()));
        assert_eq!(token_of(b"token=+"), None);
        assert_eq!(token_of(b"tok=x"), None);
        assert_eq!(token_of(b""), None);
    }

    #[test]
    fn the_query_gives_the_code() {
        assert_eq!(code_of("code=a-b_c"), Some("a-b_c".into()));
        assert_eq!(code_of("x=1&code=z"), Some("z".into()));
        assert_eq!(code_of("code="), None);
    }

    #[test]
    fn only_url_encoded_forms_are_read() {
        let form = headers(&[(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )]);
        assert!(is_form(&form));
        assert!(!is_form(&headers(&[("content-type", "application/json")])));
        assert!(!is_form(&headers(&[])));
    }

    #[test]
    fn posts_from_other_sites_are_told_apart() {
        let uri: Uri = "/ui/login".parse().unwrap();
        let ours = headers(&[
            ("host", "10.0.0.1:6443"),
            ("origin", "https://10.0.0.1:6443"),
        ]);
        assert!(same_origin(&ours, &uri));
        let theirs = headers(&[
            ("host", "10.0.0.1:6443"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!same_origin(&theirs, &uri));
        let opaque = headers(&[("host", "10.0.0.1:6443"), ("origin", "null")]);
        assert!(!same_origin(&opaque, &uri));
        let h2: Uri = "https://10.0.0.1:6443/ui/login".parse().unwrap();
        let h2_ours = headers(&[("origin", "https://10.0.0.1:6443")]);
        assert!(
            same_origin(&h2_ours, &h2),
            "HTTP/2 names the host in :authority"
        );
        assert!(same_origin(&headers(&[]), &uri), "not a browser");
    }

    #[test]
    fn fetch_metadata_vouches_for_an_opaque_origin() {
        let uri: Uri = "/ui/logout".parse().unwrap();
        let no_referrer = headers(&[
            ("host", "10.0.0.1:6443"),
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ]);
        assert!(same_origin(&no_referrer, &uri));
        for site in ["cross-site", "same-site", "none"] {
            let other = HeaderMap::from_iter([
                (header::HOST, HeaderValue::from_static("10.0.0.1:6443")),
                (header::ORIGIN, HeaderValue::from_static("null")),
                (
                    header::HeaderName::from_static("sec-fetch-site"),
                    HeaderValue::from_static(site),
                ),
            ]);
            assert!(!same_origin(&other, &uri), "{site}");
        }
        let forged_origin = headers(&[
            ("host", "10.0.0.1:6443"),
            ("origin", "https://10.0.0.1:6443"),
            ("sec-fetch-site", "cross-site"),
        ]);
        assert!(
            !same_origin(&forged_origin, &uri),
            "the browser's word wins"
        );
    }
}
