//! Agent URL paths and query strings, percent-encoded.

use std::fmt;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything except RFC 3986 unreserved characters is escaped.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// `/api/v1/namespaces/{ns}/pods`, or `/api/v1/pods` for all namespaces.
pub fn pods_path(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("/api/v1/namespaces/{}/pods", encode(ns)),
        None => "/api/v1/pods".to_string(),
    }
}

pub fn pod_path(namespace: &str, name: &str) -> String {
    format!("{}/{}", pods_path(Some(namespace)), encode(name))
}

/// `/api/v1/namespaces/{ns}/events`, or `/api/v1/events` for all namespaces.
pub fn events_path(namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("/api/v1/namespaces/{}/events", encode(ns)),
        None => "/api/v1/events".to_string(),
    }
}

pub const IMAGES_PATH: &str = "/apis/images.peapod.io/v1/images";

/// A query string built in order; renders as `""` or `?k=v&k=v`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query(Vec<(&'static str, String)>);

impl Query {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, key: &'static str, value: impl Into<String>) -> &mut Self {
        self.0.push((key, value.into()));
        self
    }

    /// Adds `key=true` when `flag` is set (the agent reads absent as false).
    pub fn flag(&mut self, key: &'static str, flag: bool) -> &mut Self {
        if flag {
            self.push(key, "true");
        }
        self
    }

    pub fn opt(&mut self, key: &'static str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.push(key, value);
        }
        self
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.0.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(f, "{sep}{key}={}", encode(value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_encodes_values_in_order() {
        let mut q = Query::new();
        q.push("labelSelector", "app=web,tier!=db")
            .flag("watch", true)
            .flag("follow", false)
            .opt("container", None)
            .push("command", "ls -l");
        assert_eq!(
            q.to_string(),
            "?labelSelector=app%3Dweb%2Ctier%21%3Ddb&watch=true&command=ls%20-l"
        );
        assert_eq!(Query::new().to_string(), "");
    }

    #[test]
    fn paths() {
        assert_eq!(pods_path(None), "/api/v1/pods");
        assert_eq!(
            pod_path("kube-system", "a.b"),
            "/api/v1/namespaces/kube-system/pods/a.b"
        );
        assert_eq!(events_path(Some("x")), "/api/v1/namespaces/x/events");
        assert_eq!(
            encode("docker.io/library/busybox:1.36"),
            "docker.io%2Flibrary%2Fbusybox%3A1.36"
        );
    }
}
