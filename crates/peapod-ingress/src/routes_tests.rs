use serde_json::{json, Value};

use super::*;

fn ingress(name: &str, created: &str, spec: Value) -> Arc<Ingress> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": spec,
        }))
        .unwrap(),
    )
}

fn paths(host: &str, paths: &[(&str, &str, &str)]) -> Value {
    let paths: Vec<Value> = paths
        .iter()
        .map(|(path, kind, service)| {
            json!({"path": path, "pathType": kind,
                   "backend": {"service": {"name": service, "port": {"number": 80}}}})
        })
        .collect();
    json!({"rules": [{"host": host, "http": {"paths": paths}}]})
}

fn service(route: Option<&Route>) -> Option<String> {
    match &route?.target {
        Target::Service { name, .. } => Some(name.clone()),
        Target::Unsupported => None,
    }
}

/// Paths and types of one Ingress, the request path, the path expected to answer.
type Case = (
    &'static [(&'static str, &'static str)],
    &'static str,
    Option<&'static str>,
);

/// The examples table of the Ingress documentation.
#[test]
fn path_matching_follows_the_ingress_docs() {
    let cases: &[Case] = &[
        (&[("/", "Prefix")], "/anything", Some("/")),
        (&[("/foo", "Exact")], "/foo", Some("/foo")),
        (&[("/foo", "Exact")], "/bar", None),
        (&[("/foo", "Exact")], "/foo/", None),
        (&[("/foo/", "Exact")], "/foo", None),
        (&[("/foo", "Prefix")], "/foo", Some("/foo")),
        (&[("/foo", "Prefix")], "/foo/", Some("/foo")),
        (&[("/foo/", "Prefix")], "/foo", Some("/foo/")),
        (&[("/foo/", "Prefix")], "/foo/", Some("/foo/")),
        (&[("/aaa/bb", "Prefix")], "/aaa/bbb", None),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbb", Some("/aaa/bbb")),
        (&[("/aaa/bbb/", "Prefix")], "/aaa/bbb", Some("/aaa/bbb/")),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/", Some("/aaa/bbb")),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbb/ccc", Some("/aaa/bbb")),
        (&[("/aaa/bbb", "Prefix")], "/aaa/bbbxyz", None),
        (
            &[("/", "Prefix"), ("/aaa", "Prefix")],
            "/aaa/ccc",
            Some("/aaa"),
        ),
        (
            &[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")],
            "/aaa/bbb",
            Some("/aaa/bbb"),
        ),
        (
            &[("/", "Prefix"), ("/aaa", "Prefix"), ("/aaa/bbb", "Prefix")],
            "/ccc",
            Some("/"),
        ),
        (&[("/aaa", "Prefix")], "/ccc", None),
        (
            &[("/foo", "Prefix"), ("/foo", "Exact")],
            "/foo",
            Some("/foo exact"),
        ),
        (
            &[("/foo", "ImplementationSpecific")],
            "/foo/x",
            Some("/foo"),
        ),
    ];
    for (rules, request, want) in cases {
        let spec_paths: Vec<(String, String, String)> = rules
            .iter()
            .map(|(path, kind)| {
                let service = if *kind == "Exact" && rules.len() > 1 {
                    format!("{path} exact")
                } else {
                    (*path).to_owned()
                };
                ((*path).to_owned(), (*kind).to_owned(), service)
            })
            .collect();
        let borrowed: Vec<(&str, &str, &str)> = spec_paths
            .iter()
            .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
            .collect();
        let table = RouteTable::build(&[ingress(
            "web",
            "2024-01-01T00:00:00Z",
            paths("a.io", &borrowed),
        )]);
        let found = service(table.find("a.io", request));
        assert_eq!(found.as_deref(), *want, "{rules:?} {request}");
    }
}

#[test]
fn hosts_pick_exact_then_one_label_wildcard_then_any() {
    let table = RouteTable::build(&[
        ingress(
            "exact",
            "2024-01-01T00:00:00Z",
            paths("foo.bar.com", &[("/", "Prefix", "exact")]),
        ),
        ingress(
            "wild",
            "2024-01-02T00:00:00Z",
            paths("*.bar.com", &[("/", "Prefix", "wild")]),
        ),
        ingress(
            "any",
            "2024-01-03T00:00:00Z",
            paths("", &[("/", "Prefix", "any")]),
        ),
    ]);
    assert_eq!(
        service(table.find("foo.bar.com", "/")).as_deref(),
        Some("exact")
    );
    assert_eq!(
        service(table.find("baz.bar.com", "/")).as_deref(),
        Some("wild")
    );
    assert_eq!(service(table.find("bar.com", "/")).as_deref(), Some("any"));
    assert_eq!(
        service(table.find("a.baz.bar.com", "/")).as_deref(),
        Some("any")
    );
    assert!(host_matches("*.bar.com", "x.bar.com"));
    assert!(!host_matches("*.bar.com", "x.y.bar.com"));
}

#[test]
fn default_backends_catch_what_no_path_matches() {
    let mut spec = paths("foo.io", &[("/app", "Prefix", "app")]);
    spec["defaultBackend"] = json!({"service": {"name": "fallback", "port": {"name": "http"}}});
    let table = RouteTable::build(&[ingress("web", "2024-01-01T00:00:00Z", spec)]);
    assert_eq!(
        service(table.find("foo.io", "/app/x")).as_deref(),
        Some("app")
    );
    assert_eq!(
        service(table.find("foo.io", "/other")).as_deref(),
        Some("fallback")
    );
    let unknown = table.find("other.io", "/").unwrap();
    let want = Target::Service {
        name: "fallback".into(),
        port: PortRef::Name("http".into()),
    };
    assert_eq!(unknown.target, want);
    let without = RouteTable::build(&[ingress(
        "w",
        "2024-01-01T00:00:00Z",
        paths("foo.io", &[("/app", "Prefix", "app")]),
    )]);
    assert!(without.find("other.io", "/").is_none());
}

#[test]
fn regex_paths_rewrite() {
    let ing: Ingress = serde_json::from_value(json!({
        "metadata": {"name": "r", "namespace": "default",
                     "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/$2"}},
        "spec": paths("r.io", &[("/something(/|$)(.*)", "ImplementationSpecific", "web")]),
    }))
    .unwrap();
    let table = RouteTable::build(&[Arc::new(ing)]);
    let route = table.find("r.io", "/something/new").unwrap();
    assert_eq!(route.upstream_path("/something/new"), "/new");
    assert!(table.find("r.io", "/other").is_none());
}

#[test]
fn tls_hosts_are_known() {
    let mut spec = paths("a.io", &[("/", "Prefix", "web")]);
    spec["tls"] = json!([{"hosts": ["a.io", "*.b.io"], "secretName": "s"}]);
    let table = RouteTable::build(&[ingress("web", "2024-01-01T00:00:00Z", spec)]);
    assert!(table.has_tls("a.io"));
    assert!(table.has_tls("x.b.io"));
    assert!(!table.has_tls("c.io"));
}
