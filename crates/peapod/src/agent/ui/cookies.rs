//! The session cookie and the page's request mark: `peapod_session` (Secure, HttpOnly,
//! SameSite=Strict) names a session, and authenticates an API request only beside
//! `X-Peapod-UI: 1`, a header a cross-site form or link cannot add.

use axum::http::{header, HeaderMap, HeaderValue};

pub const SESSION_COOKIE: &str = "peapod_session";
/// The header the page's API requests carry.
pub const UI_HEADER: &str = "x-peapod-ui";

/// The session id of the request's cookie, if it has one.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && !value.is_empty())
        .map(|(_, value)| value.trim_matches('"'))
}

/// Whether the request says it comes from the page (`X-Peapod-UI: 1`).
pub fn from_the_page(headers: &HeaderMap) -> bool {
    headers
        .get(UI_HEADER)
        .is_some_and(|value| value.as_bytes() == b"1")
}

/// Whether `path` is one of the page's (its own routes, not the API's).
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// The Set-Cookie value that gives the browser session `id`.
pub fn set_session(id: &str) -> HeaderValue {
    let cookie = format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict");
    HeaderValue::from_str(&cookie).expect("a base64url session id is a valid header value")
}

/// The Set-Cookie value that removes the session cookie.
pub fn clear_session() -> HeaderValue {
    HeaderValue::from_static(
        "peapod_session=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let one = headers(&[("cookie", "a=b; peapod_session=abc-_1; c=d")]);
        assert_eq!(session_id(&one), Some("abc-_1"));
        let split = headers(&[("cookie", "a=b"), ("cookie", "peapod_session=xyz")]);
        assert_eq!(session_id(&split), Some("xyz"));
        assert_eq!(session_id(&headers(&[("cookie", "peapod_session=")])), None);
        assert_eq!(
            session_id(&headers(&[("cookie", "peapod_sessionx=1")])),
            None
        );
        assert_eq!(session_id(&headers(&[])), None);
    }

    #[test]
    fn only_the_exact_ui_header_marks_the_page() {
        assert!(from_the_page(&headers(&[("x-peapod-ui", "1")])));
        assert!(!from_the_page(&headers(&[("x-peapod-ui", "true")])));
        assert!(!from_the_page(&headers(&[])));
    }

    #[test]
    fn ui_paths_are_the_ui_folder_only() {
        assert!(is_ui_path("/ui"));
        assert!(is_ui_path("/ui/"));
        assert!(is_ui_path("/ui/app.js"));
        assert!(!is_ui_path("/uix"));
        assert!(!is_ui_path("/api/v1/pods"));
    }

    #[test]
    fn the_cookie_is_secure_http_only_and_strict() {
        let set = set_session("abc");
        assert_eq!(
            set.to_str().unwrap(),
            "peapod_session=abc; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        assert!(clear_session().to_str().unwrap().contains("Max-Age=0"));
    }
}
