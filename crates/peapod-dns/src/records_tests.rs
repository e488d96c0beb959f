use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::view::tests::{namespaces, service, slice};

fn zone() -> Zone {
    Zone {
        domain: "cluster.local".into(),
        dns_ip: Ipv4Addr::new(10, 43, 0, 10),
        reverse: vec![
            "10.43.0.0/16".parse().unwrap(),
            "10.42.0.0/16".parse().unwrap(),
        ],
    }
}

fn cluster() -> View {
    let services = BTreeMap::from([
        service(
            "default",
            "web",
            json!({"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"], "ports": [
                {"name": "http", "port": 80, "protocol": "TCP"},
                {"name": "dns", "port": 53, "protocol": "UDP"},
                {"port": 8080}]}),
        ),
        service(
            "default",
            "nginx",
            json!({"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}),
        ),
        service("default", "empty", json!({"clusterIP": "None"})),
        service(
            "default",
            "ext",
            json!({"type": "ExternalName", "externalName": "example.com"}),
        ),
        service(
            "default",
            "alias",
            json!({"type": "ExternalName", "externalName": "web.default.svc.cluster.local"}),
        ),
        service(
            "default",
            "broken",
            json!({"type": "ExternalName", "externalName": "nothing.default.svc.cluster.local"}),
        ),
    ]);
    let slices = BTreeMap::from([
        slice(
            "default",
            "nginx-1",
            "nginx",
            json!([
                {"addresses": ["10.42.0.5"], "hostname": "web-0", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.6"], "hostname": "web-1", "conditions": {"ready": true}},
                {"addresses": ["10.42.0.7"], "conditions": {"ready": false}},
            ]),
            json!([{"name": "web", "port": 80, "protocol": "TCP"}]),
        ),
        slice(
            "default",
            "web-1",
            "web",
            json!([{"addresses": ["10.42.0.8"], "conditions": {"ready": true}}]),
            json!([{"name": "http", "port": 8000, "protocol": "TCP"}]),
        ),
    ]);
    let mut view = View::build(&services, &slices, &namespaces(&["default", "kube-system"]));
    view.synced = true;
    view.serial = 1234;
    view
}

fn ask(view: &View, name: &str, qtype: RecordType) -> Option<Answer> {
    answer(view, &zone(), &Name::from_ascii(name).unwrap(), qtype)
}

/// A section as `name type data` lines, as dig prints them without TTL and class.
fn lines(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect()
}

const ZONE_SOA: &str =
    "cluster.local. SOA ns.dns.cluster.local. hostmaster.cluster.local. 1234 7200 1800 86400 5";

/// A question and what comes back: rcode, answer and authority lines.
type Case<'a> = (
    &'a str,
    RecordType,
    ResponseCode,
    &'a [&'a str],
    &'a [&'a str],
);

#[test]
fn answers_follow_coredns() {
    use RecordType::*;
    let cases: &[Case] = &[
        (
            "web.default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &["web.default.svc.cluster.local. A 10.43.0.20"],
            &[],
        ),
        (
            "WEB.Default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &["WEB.Default.svc.cluster.local. A 10.43.0.20"],
            &[],
        ),
        (
            "web.default.svc.cluster.local.",
            AAAA,
            ResponseCode::NoError,
            &[],
            &[ZONE_SOA],
        ),
        (
            "web.default.svc.cluster.local.",
            MX,
            ResponseCode::NoError,
            &[],
            &[ZONE_SOA],
        ),
        (
            "nope.default.svc.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "web.nope.svc.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "nope.svc.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &[],
            &[ZONE_SOA],
        ),
        (
            "svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &[],
            &[ZONE_SOA],
        ),
        ("cluster.local.", A, ResponseCode::NoError, &[], &[ZONE_SOA]),
        (
            "cluster.local.",
            SOA,
            ResponseCode::NoError,
            &[ZONE_SOA],
            &[],
        ),
        (
            "x.web.default.other.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "a.b.c.web.default.svc.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "nginx.default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &[
                "nginx.default.svc.cluster.local. A 10.42.0.5",
                "nginx.default.svc.cluster.local. A 10.42.0.6",
            ],
            &[],
        ),
        (
            "empty.default.svc.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "web-0.nginx.default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &["web-0.nginx.default.svc.cluster.local. A 10.42.0.5"],
            &[],
        ),
        (
            "web-9.nginx.default.svc.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "10-42-0-8.web.default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &["10-42-0-8.web.default.svc.cluster.local. A 10.42.0.8"],
            &[],
        ),
        (
            "ext.default.svc.cluster.local.",
            CNAME,
            ResponseCode::NoError,
            &["ext.default.svc.cluster.local. CNAME example.com."],
            &[],
        ),
        (
            "alias.default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &[
                "alias.default.svc.cluster.local. CNAME web.default.svc.cluster.local.",
                "web.default.svc.cluster.local. A 10.43.0.20",
            ],
            &[],
        ),
        (
            "broken.default.svc.cluster.local.",
            A,
            ResponseCode::NoError,
            &[],
            &[ZONE_SOA],
        ),
        (
            "10-42-0-9.default.pod.cluster.local.",
            A,
            ResponseCode::NoError,
            &["10-42-0-9.default.pod.cluster.local. A 10.42.0.9"],
            &[],
        ),
        (
            "10-42-0-9.nope.pod.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "not-an-ip.default.pod.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "dns-version.cluster.local.",
            TXT,
            ResponseCode::NoError,
            &["dns-version.cluster.local. TXT 1.1.0"],
            &[],
        ),
        (
            "dns-version.cluster.local.",
            A,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "ns.dns.cluster.local.",
            A,
            ResponseCode::NoError,
            &["ns.dns.cluster.local. A 10.43.0.10"],
            &[],
        ),
        (
            "_http._tcp.web.default.svc.cluster.local.",
            TXT,
            ResponseCode::NoError,
            &[],
            &[ZONE_SOA],
        ),
        (
            "_nope._tcp.web.default.svc.cluster.local.",
            SRV,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
        (
            "_http._udp.web.default.svc.cluster.local.",
            SRV,
            ResponseCode::NXDomain,
            &[],
            &[ZONE_SOA],
        ),
    ];
    let view = cluster();
    for (name, qtype, rcode, answers, authority) in cases {
        let got = ask(&view, name, *qtype).expect(name);
        assert_eq!(got.rcode, *rcode, "{name} {qtype}");
        assert_eq!(lines(&got.answers), *answers, "{name} {qtype}");
        assert_eq!(lines(&got.authority), *authority, "{name} {qtype}");
    }
}

#[test]
fn srv_records_name_ports_and_carry_addresses() {
    let view = cluster();
    let got = ask(
        &view,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .unwrap();
    assert_eq!(
        lines(&got.answers),
        ["_http._tcp.web.default.svc.cluster.local. SRV 0 100 80 web.default.svc.cluster.local."]
    );
    assert_eq!(
        lines(&got.additionals),
        ["web.default.svc.cluster.local. A 10.43.0.20"]
    );
    let got = ask(
        &view,
        "_web._tcp.nginx.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .unwrap();
    assert_eq!(
        lines(&got.answers),
        [
            "_web._tcp.nginx.default.svc.cluster.local. SRV 0 50 80 web-0.nginx.default.svc.cluster.local.",
            "_web._tcp.nginx.default.svc.cluster.local. SRV 0 50 80 web-1.nginx.default.svc.cluster.local.",
        ]
    );
    assert_eq!(
        lines(&got.additionals),
        [
            "web-0.nginx.default.svc.cluster.local. A 10.42.0.5",
            "web-1.nginx.default.svc.cluster.local. A 10.42.0.6",
        ]
    );
}

#[test]
fn external_names_outside_the_zone_are_chased_upstream() {
    let got = ask(&cluster(), "ext.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(
        lines(&got.answers),
        ["ext.default.svc.cluster.local. CNAME example.com."]
    );
    assert_eq!(got.chase, Some(Name::from_ascii("example.com.").unwrap()));
}

#[test]
fn reverse_names_of_the_ranges() {
    let view = cluster();
    let ptr = |name| ask(&view, name, RecordType::PTR).unwrap();
    assert_eq!(
        lines(&ptr("20.0.43.10.in-addr.arpa.").answers),
        ["20.0.43.10.in-addr.arpa. PTR web.default.svc.cluster.local."]
    );
    assert_eq!(
        lines(&ptr("5.0.42.10.in-addr.arpa.").answers),
        ["5.0.42.10.in-addr.arpa. PTR web-0.nginx.default.svc.cluster.local."]
    );
    let unknown = ptr("99.0.42.10.in-addr.arpa.");
    assert_eq!(unknown.rcode, ResponseCode::NXDomain);
    assert_eq!(
        lines(&unknown.authority),
        ["42.10.in-addr.arpa. SOA ns.dns.cluster.local. hostmaster.cluster.local. 1234 7200 1800 86400 5"]
    );
    assert!(ask(&view, "1.1.168.192.in-addr.arpa.", RecordType::PTR).is_none());
    assert!(ask(&view, "example.com.", RecordType::A).is_none());
    assert!(ask(&view, "notcluster.local.", RecordType::A).is_none());
}

#[test]
fn unknown_names_are_servfail_until_synced() {
    let mut view = cluster();
    view.synced = false;
    let got = ask(&view, "nope.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(got.rcode, ResponseCode::ServFail);
    let got = ask(&view, "web.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(got.rcode, ResponseCode::NoError);
}

#[test]
fn reverse_zone_names_cover_whole_octets() {
    let name = |cidr: &str| reverse_zone_name(&cidr.parse().unwrap());
    assert_eq!(name("10.43.0.0/16"), "43.10.in-addr.arpa");
    assert_eq!(name("10.43.7.0/24"), "7.43.10.in-addr.arpa");
    assert_eq!(name("10.96.0.0/12"), "10.in-addr.arpa");
}
