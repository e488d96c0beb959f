//! `kubectl get ingresses` columns (kube's printIngress): Name, Class, Hosts (three, then
//! `+ N more...`), Address (load-balancer IPs or hostnames, cut at 16 characters), Ports, Age.

use std::collections::BTreeSet;

use k8s_openapi::api::networking::v1::Ingress;
use peapod_apiserver::table::{age_cell, name_cell, Column, AGE, NAME};
use serde_json::{json, Value};

use super::CLASS_ANNOTATION;

const LOAD_BALANCER_WIDTH: usize = 16;
const SHOWN_HOSTS: usize = 3;

pub fn columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new(
            "Class",
            "string",
            "The name of the IngressClass resource that should be used for additional configuration",
        ),
        Column::new(
            "Hosts",
            "string",
            "Hosts that incoming requests are matched against before the ingress rule",
        ),
        Column::new(
            "Address",
            "string",
            "Address is a list containing ingress points for the load-balancer",
        ),
        Column::new("Ports", "string", "Ports of TLS configurations that open"),
        AGE,
    ]
}

pub fn cells(ingress: &Ingress) -> Vec<Value> {
    let spec = ingress.spec.clone().unwrap_or_default();
    let annotated = ingress
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CLASS_ANNOTATION).cloned());
    let class = spec
        .ingress_class_name
        .clone()
        .or(annotated)
        .unwrap_or_else(|| "<none>".to_owned());
    let hosts: Vec<String> = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.host.clone())
        .filter(|h| !h.is_empty())
        .collect();
    let ports = if spec.tls.as_ref().is_some_and(|t| !t.is_empty()) {
        "80, 443"
    } else {
        "80"
    };
    vec![
        name_cell(&ingress.metadata),
        json!(class),
        json!(format_hosts(&hosts)),
        json!(address(ingress)),
        json!(ports),
        age_cell(&ingress.metadata),
    ]
}

/// kube's formatHosts.
fn format_hosts(hosts: &[String]) -> String {
    if hosts.is_empty() {
        return "*".to_owned();
    }
    let shown = hosts[..hosts.len().min(SHOWN_HOSTS)].join(",");
    match hosts.len().checked_sub(SHOWN_HOSTS) {
        Some(more) if more > 0 => format!("{shown} + {more} more..."),
        _ => shown,
    }
}

/// kube's ingressLoadBalancerStatusStringer, not wide.
fn address(ingress: &Ingress) -> String {
    let points = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let sorted: BTreeSet<String> = points
        .into_iter()
        .flatten()
        .filter_map(|point| {
            let ip = point.ip.clone().filter(|ip| !ip.is_empty());
            ip.or_else(|| point.hostname.clone().filter(|h| !h.is_empty()))
        })
        .collect();
    let joined = sorted.into_iter().collect::<Vec<_>>().join(",");
    if joined.len() > LOAD_BALANCER_WIDTH {
        format!("{}...", &joined[..LOAD_BALANCER_WIDTH - 3])
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingress(value: Value) -> Ingress {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn rows_show_class_hosts_address_and_ports() {
        let ing = ingress(json!({
            "metadata": {"name": "web"},
            "spec": {
                "ingressClassName": "peapod",
                "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}],
                "tls": [{"hosts": ["a.example.com"], "secretName": "a"}],
            },
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.10"}]}},
        }));
        let row = cells(&ing);
        assert_eq!(row[1], json!("peapod"));
        assert_eq!(row[2], json!("a.example.com,b.example.com"));
        assert_eq!(row[3], json!("192.168.1.10"));
        assert_eq!(row[4], json!("80, 443"));
    }

    #[test]
    fn defaults_read_none_star_and_80() {
        let row = cells(&ingress(json!({"metadata": {"name": "web"}, "spec": {}})));
        assert_eq!(
            row[1..5],
            [json!("<none>"), json!("*"), json!(""), json!("80")]
        );
    }

    #[test]
    fn many_hosts_and_long_addresses_are_cut() {
        let hosts: Vec<String> = (1..=5).map(|n| format!("h{n}")).collect();
        assert_eq!(format_hosts(&hosts), "h1,h2,h3 + 2 more...");
        let ing = ingress(json!({
            "metadata": {"name": "web"},
            "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]}},
        }));
        assert_eq!(address(&ing), "10.0.0.1,10.0...");
    }
}
