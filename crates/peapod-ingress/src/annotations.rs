//! The ingress-nginx annotations peapod honours, per Ingress: `rewrite-target` (with the
//! path's capture groups `$1`..`$9`; paths become case-insensitive regexes anchored at the
//! start, as with `use-regex`), `ssl-redirect` (308 to HTTPS when the host has TLS, on by
//! default) and `backend-protocol` (HTTP, HTTPS, GRPC, GRPCS).

use std::collections::BTreeMap;

use regex::Regex;

const PREFIX: &str = "nginx.ingress.kubernetes.io/";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackendProtocol {
    #[default]
    Http,
    Https,
    /// HTTP/2 without TLS (h2c prior knowledge).
    Grpc,
    /// HTTP/2 over TLS.
    Grpcs,
}

impl BackendProtocol {
    pub fn is_tls(self) -> bool {
        matches!(self, BackendProtocol::Https | BackendProtocol::Grpcs)
    }

    pub fn is_http2(self) -> bool {
        matches!(self, BackendProtocol::Grpc | BackendProtocol::Grpcs)
    }
}

/// What an Ingress's annotations ask of its paths.
#[derive(Clone, Debug, PartialEq)]
pub struct PathOptions {
    pub rewrite_target: Option<String>,
    /// Prefix and ImplementationSpecific paths are regexes.
    pub regex_paths: bool,
    pub ssl_redirect: bool,
    pub backend_protocol: BackendProtocol,
}

impl Default for PathOptions {
    fn default() -> Self {
        PathOptions {
            rewrite_target: None,
            regex_paths: false,
            ssl_redirect: true,
            backend_protocol: BackendProtocol::Http,
        }
    }
}

/// The options of an Ingress with `annotations`; unknown values keep ingress-nginx's default.
pub fn parse(annotations: Option<&BTreeMap<String, String>>) -> PathOptions {
    let get = |name: &str| {
        annotations
            .and_then(|a| a.get(&format!("{PREFIX}{name}")))
            .map(|v| v.trim())
    };
    let rewrite_target = get("rewrite-target")
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let backend_protocol = match get("backend-protocol")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("HTTPS") => BackendProtocol::Https,
        Some("GRPC") => BackendProtocol::Grpc,
        Some("GRPCS") => BackendProtocol::Grpcs,
        _ => BackendProtocol::Http,
    };
    PathOptions {
        regex_paths: rewrite_target.is_some() || get("use-regex") == Some("true"),
        rewrite_target,
        ssl_redirect: get("ssl-redirect") != Some("false"),
        backend_protocol,
    }
}

/// The regex a path becomes under `use-regex`: case-insensitive and anchored at the start,
/// as nginx's `location ~*`.
pub fn path_regex(path: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("(?i)^{path}"))
}

/// nginx's `rewrite <regex> <target> break`: the whole path replaced by `target`, its `$N`
/// the regex's groups (empty when a group did not take part). None when `regex` does not
/// match `path`.
pub fn rewrite(regex: &Regex, target: &str, path: &str) -> Option<String> {
    let captures = regex.captures(path)?;
    let mut out = String::with_capacity(target.len() + path.len());
    let mut chars = target.chars().peekable();
    while let Some(c) = chars.next() {
        let group = chars.peek().and_then(|d| d.to_digit(10));
        match (c, group) {
            ('$', Some(n)) => {
                chars.next();
                out.push_str(captures.get(n as usize).map_or("", |m| m.as_str()));
            }
            _ => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_redirect_to_https_over_http() {
        assert_eq!(parse(None), PathOptions::default());
        assert!(parse(None).ssl_redirect);
    }

    #[test]
    fn annotations_are_read() {
        let options = parse(Some(&annotations(&[
            ("rewrite-target", "/$2"),
            ("ssl-redirect", "false"),
            ("backend-protocol", "grpc"),
        ])));
        assert_eq!(options.rewrite_target.as_deref(), Some("/$2"));
        assert!(options.regex_paths);
        assert!(!options.ssl_redirect);
        assert_eq!(options.backend_protocol, BackendProtocol::Grpc);
        assert!(parse(Some(&annotations(&[("use-regex", "true")]))).regex_paths);
    }

    /// ingress-nginx's rewrite example: `/something(/|$)(.*)` with `/$2`.
    #[test]
    fn rewrites_use_the_path_groups() {
        let regex = path_regex("/something(/|$)(.*)").unwrap();
        let cases = [
            ("/something", "/"),
            ("/something/", "/"),
            ("/something/new", "/new"),
            ("/SOMETHING/x/y", "/x/y"),
        ];
        for (path, want) in cases {
            assert_eq!(
                rewrite(&regex, "/$2", path).as_deref(),
                Some(want),
                "{path}"
            );
        }
        assert_eq!(rewrite(&regex, "/$2", "/other"), None);
        let plain = path_regex("/app").unwrap();
        assert_eq!(rewrite(&plain, "/", "/app/x").as_deref(), Some("/"));
        assert_eq!(rewrite(&plain, "/v$9$", "/app").as_deref(), Some("/v$"));
    }
}
