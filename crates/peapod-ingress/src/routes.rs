//! The routing table of the Ingresses this controller serves, as the Ingress spec and
//! ingress-nginx choose: a request's host picks the rules of that exact host, else of the
//! one-label wildcard (`*.example.com` matches `a.example.com`, not `b.a.example.com` nor
//! `example.com`), else the rules without host; among their paths the longest match wins,
//! Exact before Prefix at equal length; Prefix matches whole path elements
//! (`/foo` matches `/foo` and `/foo/bar`, not `/foobar`); ImplementationSpecific is Prefix;
//! paths are regexes under `use-regex`/`rewrite-target`. When no path matches, the
//! host's Ingress's `defaultBackend`, else none (a 404).

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::{Ingress, IngressBackend};
use regex::Regex;

use crate::annotations::{self, PathOptions};

/// The port of a Service a backend names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PortRef {
    Name(String),
    Number(i32),
}

/// Where a matched request goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Service {
        name: String,
        port: PortRef,
    },
    /// A `resource` backend, which this controller cannot serve.
    Unsupported,
}

#[derive(Clone, Debug)]
enum PathMatch {
    Exact(String),
    /// The path without its trailing `/`; empty for `/`.
    Prefix(String),
    Regex(Regex),
}

/// One path of one Ingress, or an Ingress's default backend.
#[derive(Clone, Debug)]
pub struct Route {
    pub namespace: String,
    pub ingress: String,
    pub target: Target,
    pub options: Arc<PathOptions>,
    matcher: PathMatch,
    /// How long a match is, for longest-match-first.
    weight: usize,
}

impl Route {
    /// The path the backend receives: rewritten under `rewrite-target`, else `path`.
    pub fn upstream_path(&self, path: &str) -> String {
        match (&self.matcher, &self.options.rewrite_target) {
            (PathMatch::Regex(regex), Some(target)) => {
                annotations::rewrite(regex, target, path).unwrap_or_else(|| path.to_owned())
            }
            _ => path.to_owned(),
        }
    }

    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            PathMatch::Exact(exact) => path == exact,
            PathMatch::Prefix(prefix) => {
                prefix.is_empty()
                    || path
                        .strip_prefix(prefix.as_str())
                        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathMatch::Regex(regex) => regex.is_match(path),
        }
    }

    fn is_exact(&self) -> bool {
        matches!(self.matcher, PathMatch::Exact(_))
    }
}

#[derive(Default, Debug)]
struct HostRoutes {
    paths: Vec<Route>,
    default: Option<Route>,
}

impl HostRoutes {
    fn find(&self, path: &str) -> Option<&Route> {
        let mut best: Option<&Route> = None;
        for route in self.paths.iter().filter(|r| r.matches(path)) {
            let better =
                best.is_none_or(|b| (route.weight, route.is_exact()) > (b.weight, b.is_exact()));
            if better {
                best = Some(route);
            }
        }
        best.or(self.default.as_ref())
    }
}

/// All the routes of the served Ingresses.
#[derive(Default, Debug)]
pub struct RouteTable {
    exact: HashMap<String, HostRoutes>,
    /// Keyed by what follows `*.`.
    wildcard: HashMap<String, HostRoutes>,
    any: HostRoutes,
    tls_hosts: Vec<String>,
}

impl RouteTable {
    /// The table of `ingresses`, the oldest first, so that the oldest Ingress's default
    /// backend and rules win ties as in ingress-nginx.
    pub fn build(ingresses: &[Arc<Ingress>]) -> RouteTable {
        let mut sorted: Vec<&Ingress> = ingresses.iter().map(AsRef::as_ref).collect();
        sorted.sort_by_key(|i| {
            let created = i.metadata.creation_timestamp.clone().map(|t| t.0);
            (
                created,
                i.metadata.namespace.clone(),
                i.metadata.name.clone(),
            )
        });
        let mut table = RouteTable::default();
        for ingress in sorted {
            table.add(ingress);
        }
        table
    }

    fn add(&mut self, ingress: &Ingress) {
        let Some(spec) = &ingress.spec else { return };
        let options = Arc::new(annotations::parse(ingress.metadata.annotations.as_ref()));
        let namespace = ingress.metadata.namespace.clone().unwrap_or_default();
        let name = ingress.metadata.name.clone().unwrap_or_default();
        let route = |backend: &IngressBackend, matcher: PathMatch, weight: usize| Route {
            namespace: namespace.clone(),
            ingress: name.clone(),
            target: target(backend),
            options: options.clone(),
            matcher,
            weight,
        };
        let default = spec
            .default_backend
            .as_ref()
            .map(|b| route(b, PathMatch::Prefix(String::new()), 0));
        for rule in spec.rules.iter().flatten() {
            let host = rule.host.clone().unwrap_or_default().to_ascii_lowercase();
            let group = self.group(&host);
            if group.default.is_none() {
                group.default.clone_from(&default);
            }
            for path in rule.http.iter().flat_map(|h| &h.paths) {
                let value = path.path.clone().unwrap_or_else(|| "/".to_owned());
                let Some((matcher, weight)) = matcher(&path.path_type, &value, &options) else {
                    tracing::warn!(ingress = %name, path = %value, "skipping a path that is not a valid regex");
                    continue;
                };
                group.paths.push(route(&path.backend, matcher, weight));
            }
        }
        if self.any.default.is_none() {
            self.any.default = default;
        }
        for tls in spec.tls.iter().flatten() {
            let hosts = tls.hosts.iter().flatten().map(|h| h.to_ascii_lowercase());
            self.tls_hosts.extend(hosts);
        }
    }

    fn group(&mut self, host: &str) -> &mut HostRoutes {
        if host.is_empty() {
            &mut self.any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            self.wildcard.entry(suffix.to_owned()).or_default()
        } else {
            self.exact.entry(host.to_owned()).or_default()
        }
    }

    /// The route of a request for `host` (lowercase, without port) and `path`.
    pub fn find(&self, host: &str, path: &str) -> Option<&Route> {
        if let Some(group) = self.exact.get(host) {
            return group.find(path);
        }
        let parent = host.split_once('.').map(|(_, rest)| rest);
        if let Some(group) = parent.and_then(|p| self.wildcard.get(p)) {
            return group.find(path);
        }
        self.any.find(path)
    }

    /// Whether an Ingress lists `host` (or its one-label wildcard) under `spec.tls`.
    pub fn has_tls(&self, host: &str) -> bool {
        self.tls_hosts.iter().any(|tls| host_matches(tls, host))
    }
}

/// Whether `pattern` (a host or `*.` wildcard) covers `host`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host.split_once('.').is_some_and(|(_, rest)| rest == suffix),
        None => pattern == host,
    }
}

fn target(backend: &IngressBackend) -> Target {
    let Some(service) = &backend.service else {
        return Target::Unsupported;
    };
    let port = service.port.clone().unwrap_or_default();
    let port = match port.name.filter(|n| !n.is_empty()) {
        Some(name) => PortRef::Name(name),
        None => PortRef::Number(port.number.unwrap_or(0)),
    };
    Target::Service {
        name: service.name.clone(),
        port,
    }
}

fn matcher(path_type: &str, path: &str, options: &PathOptions) -> Option<(PathMatch, usize)> {
    if path_type == "Exact" {
        return Some((PathMatch::Exact(path.to_owned()), path.len()));
    }
    if options.regex_paths {
        let regex = annotations::path_regex(path).ok()?;
        return Some((PathMatch::Regex(regex), path.len()));
    }
    let prefix = path.trim_end_matches('/').to_owned();
    let weight = prefix.len();
    Some((PathMatch::Prefix(prefix), weight))
}

#[cfg(test)]
#[path = "routes_tests.rs"]
mod tests;
