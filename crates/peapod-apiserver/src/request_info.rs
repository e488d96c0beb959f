//! What a request asks for, read from its method, path and query alone, by kube-apiserver's
//! `RequestInfoFactory` rules: resource requests under `/api/{version}` and
//! `/apis/{group}/{version}` get a kube verb (`list`, `watch`, `deletecollection`, ...), a
//! namespace, resource, name and subresource; every other path is a non-resource request whose
//! verb is the lower-case HTTP method.

use http::Method;
use percent_encoding::percent_decode_str;

/// The parsed request, as kube's `request.RequestInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource_request: bool,
    /// The percent-decoded URL path.
    pub path: String,
    /// A kube verb for resource requests; the lower-case method otherwise.
    pub verb: String,
    /// `api` or `apis`; empty for non-resource requests.
    pub api_prefix: String,
    /// Empty for the core group.
    pub api_group: String,
    pub api_version: String,
    pub namespace: Option<String>,
    /// The plural resource (`pods`); empty when the path names none (`/api/v1/watch`).
    pub resource: String,
    pub subresource: Option<String>,
    pub name: Option<String>,
    /// The path from the resource on: `[resource, name, subresource, ...]`.
    pub parts: Vec<String>,
}

/// Verbs given as a path segment before the resource (deprecated by kube, still parsed).
const PATH_VERBS: &[&str] = &["proxy", "watch"];

/// Path verbs whose third part is part of the proxied path, not a subresource.
const PATH_VERBS_WITHOUT_SUBRESOURCES: &[&str] = &["proxy"];

/// What may follow `namespaces/{name}` as a subresource of the namespace itself rather than a
/// resource in it.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

impl RequestInfo {
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> RequestInfo {
        let mut info = RequestInfo {
            path: percent_decode_str(path).decode_utf8_lossy().into_owned(),
            verb: method.as_str().to_lowercase(),
            ..RequestInfo::default()
        };
        let segments = split_path(path);
        let Some(rest) = info.take_group_version(&segments) else {
            return info;
        };

        let rest = match rest.split_first() {
            Some((verb, tail)) if PATH_VERBS.contains(&verb.as_str()) => {
                if tail.is_empty() {
                    // kube fails such a request; it names no resource.
                    return info;
                }
                info.verb = verb.clone();
                tail
            }
            _ => {
                info.verb = verb_of(method).to_owned();
                rest
            }
        };

        info.parts = info.take_namespace(rest).to_vec();
        info.take_resource_name_subresource();
        if info.name.is_none() && info.verb == "get" {
            info.verb = if watch_requested(query) {
                "watch"
            } else {
                "list"
            }
            .to_owned();
        }
        if info.name.is_none() && info.verb == "delete" {
            info.verb = "deletecollection".to_owned();
        }
        info
    }

    /// Reads `api/{version}` or `apis/{group}/{version}`; returns what follows when the request
    /// is a resource request (something follows), `None` for a non-resource request.
    fn take_group_version<'a>(&mut self, segments: &'a [String]) -> Option<&'a [String]> {
        if segments.len() < 3 {
            return None;
        }
        let (prefix, rest) = segments.split_first()?;
        let (group, rest) = match prefix.as_str() {
            "api" => ("", rest),
            "apis" => {
                // kube names the prefix of `/apis/{group}/{version}` though it is no resource.
                self.api_prefix = prefix.clone();
                match rest {
                    [group, rest @ ..] if rest.len() >= 2 => (group.as_str(), rest),
                    _ => return None,
                }
            }
            _ => return None,
        };
        let (version, rest) = rest.split_first()?;
        self.is_resource_request = true;
        self.api_prefix = prefix.clone();
        self.api_group = group.to_owned();
        self.api_version = version.clone();
        Some(rest)
    }

    /// Reads `namespaces/{namespace}/...`; returns the parts from the resource on. A namespace
    /// alone, or with one of its own subresources, is the `namespaces` resource itself.
    fn take_namespace<'a>(&mut self, parts: &'a [String]) -> &'a [String] {
        if parts.first().map(String::as_str) != Some("namespaces") {
            return parts;
        }
        let Some(namespace) = parts.get(1) else {
            return parts;
        };
        self.namespace = Some(namespace.clone());
        match parts.get(2) {
            Some(next) if !NAMESPACE_SUBRESOURCES.contains(&next.as_str()) => &parts[2..],
            _ => parts,
        }
    }

    fn take_resource_name_subresource(&mut self) {
        let parts = &self.parts;
        self.resource = parts.first().cloned().unwrap_or_default();
        self.name = parts.get(1).cloned();
        if !PATH_VERBS_WITHOUT_SUBRESOURCES.contains(&self.verb.as_str()) {
            self.subresource = parts.get(2).cloned();
        }
    }
}

/// The verb of a method on a named object; collections are told apart afterwards.
fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
}

/// `?watch=` as kube converts a query value to a bool: anything but `0` and `false`.
fn watch_requested(query: Option<&str>) -> bool {
    let Some(query) = query else {
        return false;
    };
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "watch")
        .is_some_and(|(_, value)| value != "0" && !value.eq_ignore_ascii_case("false"))
}

/// The decoded segments of a path, leading and trailing slashes ignored.
fn split_path(path: &str) -> Vec<String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Vec::new();
    }
    trimmed
        .split('/')
        .map(|segment| percent_decode_str(segment).decode_utf8_lossy().into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(method: &str, url: &str) -> RequestInfo {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (path, query) = match url.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (url, None),
        };
        RequestInfo::parse(&method, path, query)
    }

    fn some(value: &str) -> Option<String> {
        (!value.is_empty()).then(|| value.to_owned())
    }

    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
    );

    /// kube's `TestGetAPIRequestInfo` success table: method, url, verb, prefix, group, version,
    /// namespace, resource, subresource, name, parts.
    #[rustfmt::skip]
    const RESOURCE_CASES: &[Case] = &[
        ("GET", "/api/v1/namespaces", "list", "api", "", "v1", "", "namespaces", "", "", &["namespaces"]),
        ("GET", "/api/v1/namespaces/other", "get", "api", "", "v1", "other", "namespaces", "", "other", &["namespaces", "other"]),
        ("GET", "/api/v1/namespaces/other/pods", "list", "api", "", "v1", "other", "pods", "", "", &["pods"]),
        ("GET", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
        ("HEAD", "/api/v1/namespaces/other/pods/foo", "get", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
        ("GET", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", &["pods"]),
        ("HEAD", "/api/v1/pods", "list", "api", "", "v1", "", "pods", "", "", &["pods"]),
        ("PATCH", "/api/v1/namespaces/new-namespace", "patch", "api", "", "v1", "new-namespace", "namespaces", "", "new-namespace", &["namespaces", "new-namespace"]),
        // path verbs
        ("GET", "/api/v1/proxy/namespaces/other/pods/foo", "proxy", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
        ("GET", "/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource", "proxy", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo", "subpath", "not", "a", "subresource"]),
        ("GET", "/api/v1/watch/pods", "watch", "api", "", "v1", "", "pods", "", "", &["pods"]),
        ("GET", "/api/v1/pods?watch=true", "watch", "api", "", "v1", "", "pods", "", "", &["pods"]),
        ("GET", "/api/v1/pods?watch=false", "list", "api", "", "v1", "", "pods", "", "", &["pods"]),
        ("GET", "/api/v1/watch/namespaces/other/pods", "watch", "api", "", "v1", "other", "pods", "", "", &["pods"]),
        ("GET", "/api/v1/namespaces/other/pods?watch=1", "watch", "api", "", "v1", "other", "pods", "", "", &["pods"]),
        ("GET", "/api/v1/namespaces/other/pods?watch=0", "list", "api", "", "v1", "other", "pods", "", "", &["pods"]),
        // subresources
        ("GET", "/api/v1/namespaces/other/pods/foo/status", "get", "api", "", "v1", "other", "pods", "status", "foo", &["pods", "foo", "status"]),
        ("GET", "/api/v1/namespaces/other/pods/foo/proxy/subpath", "get", "api", "", "v1", "other", "pods", "proxy", "foo", &["pods", "foo", "proxy", "subpath"]),
        ("PUT", "/api/v1/namespaces/other/finalize", "update", "api", "", "v1", "other", "namespaces", "finalize", "other", &["namespaces", "other", "finalize"]),
        ("PUT", "/api/v1/namespaces/other/status", "update", "api", "", "v1", "other", "namespaces", "status", "other", &["namespaces", "other", "status"]),
        // verbs
        ("PATCH", "/api/v1/namespaces/other/pods/foo", "patch", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
        ("DELETE", "/api/v1/namespaces/other/pods/foo", "delete", "api", "", "v1", "other", "pods", "", "foo", &["pods", "foo"]),
        ("POST", "/api/v1/namespaces/other/pods", "create", "api", "", "v1", "other", "pods", "", "", &["pods"]),
        // deletecollection
        ("DELETE", "/api/v1/nodes", "deletecollection", "api", "", "v1", "", "nodes", "", "", &["nodes"]),
        ("DELETE", "/api/v1/namespaces", "deletecollection", "api", "", "v1", "", "namespaces", "", "", &["namespaces"]),
        ("DELETE", "/api/v1/namespaces/other/pods", "deletecollection", "api", "", "v1", "other", "pods", "", "", &["pods"]),
        ("DELETE", "/apis/extensions/v1/namespaces/other/pods", "deletecollection", "apis", "extensions", "v1", "other", "pods", "", "", &["pods"]),
        // groups and versions
        ("POST", "/apis/extensions/v1/namespaces/other/pods", "create", "apis", "extensions", "v1", "other", "pods", "", "", &["pods"]),
        ("POST", "/apis/extensions/v1beta3/namespaces/other/pods", "create", "apis", "extensions", "v1beta3", "other", "pods", "", "", &["pods"]),
    ];

    #[test]
    fn resource_requests_follow_kube() {
        for &(method, url, verb, prefix, group, version, namespace, resource, sub, name, parts) in
            RESOURCE_CASES
        {
            let info = parse(method, url);
            assert!(info.is_resource_request, "{method} {url}");
            assert_eq!(info.verb, verb, "{method} {url}");
            assert_eq!(info.api_prefix, prefix, "{method} {url}");
            assert_eq!(info.api_group, group, "{method} {url}");
            assert_eq!(info.api_version, version, "{method} {url}");
            assert_eq!(info.namespace, some(namespace), "{method} {url}");
            assert_eq!(info.resource, resource, "{method} {url}");
            assert_eq!(info.subresource, some(sub), "{method} {url}");
            assert_eq!(info.name, some(name), "{method} {url}");
            assert_eq!(info.parts, parts, "{method} {url}");
        }
    }

    #[test]
    fn non_resource_requests_keep_the_method_as_verb() {
        let paths = [
            "/",
            "",
            "/api/version/",
            "/apis/group/version/",
            "/badprefix/version/resource",
            "/apis/version/resource",
            "/version",
            "/healthz",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/apps",
            "/apis/apps/v1",
            "/apis/extensions/v1beta1/",
            "/openapi/v3",
            "/openapi/v3/apis/apps/v1",
        ];
        for path in paths {
            let info = parse("GET", path);
            assert!(!info.is_resource_request, "{path}");
            assert_eq!(info.verb, "get", "{path}");
        }
        assert_eq!(parse("GET", "/apis/apps/v1").api_prefix, "apis");
        assert_eq!(parse("GET", "/api/v1").api_prefix, "");
        assert_eq!(parse("HEAD", "/healthz").verb, "head");
        assert_eq!(parse("POST", "/apis").verb, "post");
    }

    #[test]
    fn resource_request_detection_follows_kube() {
        let cases = [
            ("/api/version/resource", true),
            ("/apis/group/version/resource/name/subresource", true),
            ("/api/version/resource/name/subresource", true),
            ("/apis/batch/v1/job", true),
            ("/apis/batch/v1/job/foo", true),
            ("/apis/batch/v1/job/foo/scale", true),
            ("/not-api/version/resource", false),
            ("/apis/extensions/v1beta1", false),
        ];
        for (path, resource) in cases {
            assert_eq!(parse("GET", path).is_resource_request, resource, "{path}");
        }
    }

    #[test]
    fn path_verb_without_resource_names_nothing() {
        let info = parse("GET", "/api/v1/watch");
        assert!(info.is_resource_request);
        assert_eq!(info.resource, "");
        assert!(info.parts.is_empty());
    }

    #[test]
    fn watch_query_values_convert_like_kube_bools() {
        assert_eq!(parse("GET", "/api/v1/pods?watch=FALSE").verb, "list");
        assert_eq!(parse("GET", "/api/v1/pods?watch=yes").verb, "watch");
        assert_eq!(
            parse("GET", "/api/v1/pods?limit=5&watch=true").verb,
            "watch"
        );
        assert_eq!(parse("GET", "/api/v1/pods?watched=true").verb, "list");
        // a name makes it a get, whatever the query says
        assert_eq!(
            parse("GET", "/api/v1/namespaces/a/pods/b?watch=true").verb,
            "get"
        );
    }

    #[test]
    fn other_methods_have_no_verb() {
        let info = parse("OPTIONS", "/api/v1/pods");
        assert!(info.is_resource_request);
        assert_eq!(info.verb, "");
    }

    #[test]
    fn segments_are_percent_decoded() {
        let info = parse("GET", "/api/v1/namespaces/default/configmaps/a%3Ab%20c");
        assert_eq!(info.name.as_deref(), Some("a:b c"));
        assert_eq!(info.path, "/api/v1/namespaces/default/configmaps/a:b c");
        let info = parse(
            "GET",
            "/apis/apps/v1/namespaces/default/deployments/web%2Fscale",
        );
        assert_eq!(info.name.as_deref(), Some("web/scale"));
        assert_eq!(info.subresource, None);
    }

    #[test]
    fn cluster_scoped_subresources() {
        let info = parse("PATCH", "/api/v1/nodes/n1/status");
        assert_eq!(info.verb, "patch");
        assert_eq!(info.namespace, None);
        assert_eq!(info.resource, "nodes");
        assert_eq!(info.name.as_deref(), Some("n1"));
        assert_eq!(info.subresource.as_deref(), Some("status"));
    }
}
