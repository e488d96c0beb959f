//! The answer for one question from a [`View`], with the CoreDNS kubernetes plugin's rules
//! (`pods insecure`, TTL 5 s): Service, endpoint, SRV, pod, PTR and `dns-version` records,
//! NODATA and NXDOMAIN with the zone's SOA. Names outside the zones are not answered here.

use std::net::{IpAddr, Ipv4Addr};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::Ipv4Net;

use crate::view::{Port, ServiceEntry, ServiceKind, View};

/// CoreDNS's default TTL.
pub const TTL: u32 = 5;
/// The TTL CoreDNS gives `dns-version`.
const VERSION_TTL: u32 = 28800;
/// kubernetes/dns' schema version, as CoreDNS answers it.
pub const SCHEMA_VERSION: &str = "1.1.0";
/// How many CNAMEs inside the zone are followed, as CoreDNS's `plugin.A`.
const MAX_CNAME_CHAIN: usize = 8;

/// The zones the server is authoritative for.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The cluster domain, lower case, without the final dot.
    pub domain: String,
    /// The address `ns.dns.<domain>` names: the DNS Service's.
    pub dns_ip: Ipv4Addr,
    /// The pod and Service ranges, whose reverse names are answered here.
    pub reverse: Vec<Ipv4Net>,
}

/// A response's code and sections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Answer {
    pub rcode: ResponseCode,
    pub answers: Vec<Record>,
    pub authority: Vec<Record>,
    pub additionals: Vec<Record>,
    /// A CNAME target outside the cluster domain whose records the server looks up and
    /// appends, as CoreDNS's upstream lookup does.
    pub chase: Option<Name>,
}

/// What a query name asks of the cluster (CoreDNS's `recordRequest`).
#[derive(Debug, Default, PartialEq, Eq)]
struct Request<'a> {
    /// `svc` or `pod`; empty for the apex and `svc.<domain>`.
    kind: &'a str,
    namespace: &'a str,
    service: &'a str,
    endpoint: &'a str,
    port: &'a str,
    protocol: &'a str,
}

/// One result of a lookup before it becomes records (CoreDNS's `msg.Service`).
#[derive(Debug)]
struct Item {
    host: Host,
    port: u16,
    /// The item's own name relative to the domain: an SRV record's target.
    target: String,
}

#[derive(Debug)]
enum Host {
    Ip(IpAddr),
    Name(String),
}

/// The name does not exist (NXDOMAIN).
#[derive(Debug)]
struct NameError;

/// The answer for `qname`/`qtype`, or None when the name lies outside every zone.
pub fn answer(view: &View, zone: &Zone, qname: &Name, qtype: RecordType) -> Option<Answer> {
    let lower = qname.to_lowercase().to_ascii();
    let lower = lower.trim_end_matches('.');
    let mut answer = if let Some(base) = relative(lower, &zone.domain) {
        cluster_answer(view, zone, qname, base, qtype)
    } else {
        let (range, reverse_zone) = zone
            .reverse
            .iter()
            .map(|range| (range, reverse_zone_name(range)))
            .find(|(_, apex)| relative(lower, apex).is_some())?;
        // A range not on an octet boundary shares its reverse zone with other addresses.
        if reverse_ip(lower).is_some_and(|ip| !range.contains(&ip)) {
            return None;
        }
        reverse_answer(view, zone, qname, lower, &reverse_zone, qtype)
    };
    if answer.rcode == ResponseCode::NXDomain && !view.synced {
        answer.rcode = ResponseCode::ServFail;
        answer.authority.clear();
    }
    Some(answer)
}

/// `name` without `.zone` (empty at the apex), or None outside the zone.
fn relative<'a>(name: &'a str, zone: &str) -> Option<&'a str> {
    if name == zone {
        return Some("");
    }
    name.strip_suffix(zone)?.strip_suffix('.')
}

fn cluster_answer(view: &View, zone: &Zone, qname: &Name, base: &str, qtype: RecordType) -> Answer {
    let soa = || soa_record(view, zone, &zone.domain);
    match (base, qtype) {
        ("", RecordType::SOA) => return found(vec![soa()], vec![]),
        ("", RecordType::NS) => {
            let ns = absolute(&format!("ns.dns.{}", zone.domain));
            let glue = record(ns.clone(), RData::A(A(zone.dns_ip)));
            return found(vec![record(qname.clone(), RData::NS(NS(ns)))], vec![glue]);
        }
        ("ns.dns", RecordType::A) => {
            return found(
                vec![record(qname.clone(), RData::A(A(zone.dns_ip)))],
                vec![],
            );
        }
        ("ns.dns", _) => return empty(ResponseCode::NoError, soa()),
        ("dns-version", RecordType::TXT) => {
            let txt = TXT::new(vec![SCHEMA_VERSION.to_string()]);
            let mut version = record(qname.clone(), RData::TXT(txt));
            version.ttl = VERSION_TTL;
            return found(vec![version], vec![]);
        }
        _ => {}
    }
    let items = parse(base).and_then(|request| lookup(view, &request));
    let items = match items {
        Ok(items) => items,
        Err(NameError) => return empty(ResponseCode::NXDomain, soa()),
    };
    let answer = match qtype {
        RecordType::A | RecordType::AAAA => address_answer(view, zone, qname, &items, qtype, 0),
        RecordType::CNAME => {
            let cnames = items.iter().filter_map(|item| match &item.host {
                Host::Name(target) => Some(cname(qname, target)),
                Host::Ip(_) => None,
            });
            found(cnames.collect(), vec![])
        }
        RecordType::SRV => srv_answer(zone, qname, &items),
        _ => Answer::default(),
    };
    if answer.answers.is_empty() && answer.rcode == ResponseCode::NoError {
        return empty(ResponseCode::NoError, soa());
    }
    answer
}

/// CoreDNS's `parseRequest`: `[_port._proto.|endpoint.]service.namespace.(svc|pod)`.
fn parse(base: &str) -> Result<Request<'_>, NameError> {
    let mut request = Request::default();
    if base.is_empty() || base == "svc" || base == "pod" {
        return Ok(request);
    }
    let mut labels = base.rsplit('.');
    request.kind = labels.next().ok_or(NameError)?;
    if request.kind != "svc" && request.kind != "pod" {
        return Err(NameError);
    }
    request.namespace = labels.next().unwrap_or_default();
    request.service = labels.next().unwrap_or_default();
    let rest: Vec<&str> = labels.collect();
    match rest.as_slice() {
        [] => {}
        [endpoint] => request.endpoint = endpoint,
        [protocol, port] => {
            request.protocol = protocol.strip_prefix('_').unwrap_or(protocol);
            request.port = port.strip_prefix('_').unwrap_or(port);
        }
        _ => return Err(NameError),
    }
    Ok(request)
}

/// CoreDNS's `Records`: the items a request names, NODATA as an empty list.
fn lookup(view: &View, request: &Request) -> Result<Vec<Item>, NameError> {
    if request.kind.is_empty() {
        return Ok(Vec::new());
    }
    if !view.namespaces.contains(request.namespace) {
        return Err(NameError);
    }
    if request.service.is_empty() {
        return Ok(Vec::new());
    }
    if request.kind == "pod" {
        return pod_items(request);
    }
    service_items(view, request)
}

/// `pods insecure`: any dashed address in an existing namespace is that address.
fn pod_items(request: &Request) -> Result<Vec<Item>, NameError> {
    if !request.endpoint.is_empty() || !request.port.is_empty() {
        return Err(NameError);
    }
    let name = request.service;
    let text = if name.matches('-').count() == 3 && !name.contains("--") {
        name.replace('-', ".")
    } else {
        name.replace('-', ":")
    };
    let ip: IpAddr = text.parse().map_err(|_| NameError)?;
    Ok(vec![Item {
        host: Host::Ip(ip),
        port: 0,
        target: format!("{name}.{}.pod", request.namespace),
    }])
}

/// CoreDNS's `findServices` for one Service.
fn service_items(view: &View, request: &Request) -> Result<Vec<Item>, NameError> {
    let entry = view
        .service(request.namespace, request.service)
        .ok_or(NameError)?;
    let own_name = format!("{}.{}.svc", request.service, request.namespace);
    let items = match &entry.kind {
        ServiceKind::ExternalName(target) => {
            // An address is no CNAME target: CoreDNS answers nothing for it.
            let plain = request.endpoint.is_empty() && request.port.is_empty();
            (plain && !target.is_empty() && target.parse::<IpAddr>().is_err())
                .then(|| Item {
                    host: Host::Name(target.clone()),
                    port: 0,
                    target: own_name,
                })
                .into_iter()
                .collect()
        }
        ServiceKind::ClusterIp(ips) if request.endpoint.is_empty() => entry
            .ports
            .iter()
            .filter(|port| wanted(request, port))
            .flat_map(|port| {
                ips.iter().map(|ip| Item {
                    host: Host::Ip(*ip),
                    port: port.port,
                    target: own_name.clone(),
                })
            })
            .collect(),
        _ => endpoint_items(entry, request, &own_name),
    };
    if items.is_empty() {
        return Err(NameError);
    }
    Ok(items)
}

/// A headless Service's endpoints, or the one endpoint a name asks for.
fn endpoint_items(entry: &ServiceEntry, request: &Request, own_name: &str) -> Vec<Item> {
    let sentinel = [Port {
        name: String::new(),
        protocol: String::new(),
        port: 0,
    }];
    let mut items = Vec::new();
    for set in &entry.endpoint_sets {
        let ports: &[Port] = if set.ports.is_empty() {
            &sentinel
        } else {
            &set.ports
        };
        let endpoints = set
            .endpoints
            .iter()
            .filter(|e| request.endpoint.is_empty() || request.endpoint == e.label);
        for endpoint in endpoints {
            for port in ports.iter().filter(|p| wanted(request, p)) {
                items.push(Item {
                    host: Host::Ip(endpoint.ip),
                    port: port.port,
                    target: format!("{}.{own_name}", endpoint.label),
                });
            }
        }
    }
    items
}

/// CoreDNS's `matchPortAndProtocol`: an absent `_port` or `_proto` matches any.
fn wanted(request: &Request, port: &Port) -> bool {
    (request.port.is_empty() || request.port.eq_ignore_ascii_case(&port.name))
        && (request.protocol.is_empty() || request.protocol.eq_ignore_ascii_case(&port.protocol))
}

/// A and AAAA answers: the addresses of the family asked, CNAMEs followed inside the zone.
fn address_answer(
    view: &View,
    zone: &Zone,
    qname: &Name,
    items: &[Item],
    qtype: RecordType,
    depth: usize,
) -> Answer {
    let mut answer = Answer::default();
    for item in items {
        match &item.host {
            Host::Ip(ip) => {
                if let Some(rdata) = address(*ip, qtype) {
                    let owned = record(qname.clone(), rdata);
                    if !answer.answers.contains(&owned) {
                        answer.answers.push(owned);
                    }
                }
            }
            Host::Name(target) => {
                let link = cname(qname, target);
                match relative(target, &zone.domain) {
                    Some(base) if depth < MAX_CNAME_CHAIN => {
                        let target_name = absolute(target);
                        let next = parse(base).and_then(|request| lookup(view, &request));
                        let next = next.map(|items| {
                            address_answer(view, zone, &target_name, &items, qtype, depth + 1)
                        });
                        if let Some(next) = next.ok().filter(|next| !next.answers.is_empty()) {
                            answer.answers.push(link);
                            answer.answers.extend(next.answers);
                            answer.chase = next.chase;
                        }
                    }
                    Some(_) => {}
                    None => {
                        answer.answers.push(link);
                        answer.chase = Some(absolute(target));
                    }
                }
            }
        }
    }
    answer
}

/// SRV answers with CoreDNS's weights (100 shared among the records) and the targets'
/// addresses in the additional section.
fn srv_answer(zone: &Zone, qname: &Name, items: &[Item]) -> Answer {
    let addressed: Vec<(&Item, IpAddr)> = items
        .iter()
        .filter_map(|item| match item.host {
            Host::Ip(ip) if item.port != 0 => Some((item, ip)),
            Host::Ip(_) => None,
            Host::Name(_) => None,
        })
        .collect();
    let weight = u16::try_from((100 / addressed.len().max(1)).max(1)).unwrap_or(1);
    let mut answer = Answer::default();
    for (item, ip) in addressed {
        let target = absolute(&format!("{}.{}", item.target, zone.domain));
        let srv = record(
            qname.clone(),
            RData::SRV(SRV::new(0, weight, item.port, target.clone())),
        );
        if !answer.answers.contains(&srv) {
            answer.answers.push(srv);
        }
        let rdata = match ip {
            IpAddr::V4(v4) => RData::A(A(v4)),
            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
        };
        let extra = record(target, rdata);
        if !answer.additionals.contains(&extra) {
            answer.additionals.push(extra);
        }
    }
    answer
}

/// PTR records for addresses of the pod and Service ranges; other names there do not exist.
fn reverse_answer(
    view: &View,
    zone: &Zone,
    qname: &Name,
    lower: &str,
    reverse_zone: &str,
    qtype: RecordType,
) -> Answer {
    let soa = || soa_record(view, zone, reverse_zone);
    if lower == reverse_zone {
        return match qtype {
            RecordType::SOA => found(vec![soa()], vec![]),
            _ => empty(ResponseCode::NoError, soa()),
        };
    }
    let names = reverse_ip(lower)
        .map(|ip| view.reverse(IpAddr::V4(ip)))
        .unwrap_or_default();
    if names.is_empty() {
        return empty(ResponseCode::NXDomain, soa());
    }
    if qtype != RecordType::PTR {
        return empty(ResponseCode::NoError, soa());
    }
    let answers = names
        .iter()
        .map(|name| {
            let target = absolute(&format!("{name}.{}", zone.domain));
            record(qname.clone(), RData::PTR(PTR(target)))
        })
        .collect();
    found(answers, vec![])
}

/// `5.0.42.10.in-addr.arpa` → 10.42.0.5.
fn reverse_ip(name: &str) -> Option<Ipv4Addr> {
    let octets: Vec<u8> = name
        .strip_suffix(".in-addr.arpa")?
        .split('.')
        .map(|label| label.parse().ok())
        .collect::<Option<_>>()?;
    match octets.as_slice() {
        [d, c, b, a] => Some(Ipv4Addr::new(*a, *b, *c, *d)),
        _ => None,
    }
}

/// The reverse zone covering a range: its whole octets, `43.10.in-addr.arpa` for a /16.
pub fn reverse_zone_name(range: &Ipv4Net) -> String {
    let whole = usize::from(range.prefix_len() / 8);
    let octets = range.network().octets();
    let mut labels: Vec<String> = octets[..whole].iter().map(u8::to_string).collect();
    labels.reverse();
    labels.push("in-addr.arpa".into());
    labels.join(".")
}

fn address(ip: IpAddr, qtype: RecordType) -> Option<RData> {
    match (ip, qtype) {
        (IpAddr::V4(v4), RecordType::A) => Some(RData::A(A(v4))),
        (IpAddr::V6(v6), RecordType::AAAA) => Some(RData::AAAA(AAAA(v6))),
        _ => None,
    }
}

fn cname(qname: &Name, target: &str) -> Record {
    record(qname.clone(), RData::CNAME(CNAME(absolute(target))))
}

fn soa_record(view: &View, zone: &Zone, owner: &str) -> Record {
    let soa = SOA::new(
        absolute(&format!("ns.dns.{}", zone.domain)),
        absolute(&format!("hostmaster.{}", zone.domain)),
        view.serial,
        7200,
        1800,
        86400,
        TTL,
    );
    record(absolute(owner), RData::SOA(soa))
}

/// A fully qualified name from a lower-case name the view or zone holds; those are valid
/// DNS names, checked where they came in, so a failure yields the root rather than a panic.
fn absolute(name: &str) -> Name {
    let mut name = Name::from_ascii(name).unwrap_or_else(|_| Name::root());
    name.set_fqdn(true);
    name
}

fn record(name: Name, rdata: RData) -> Record {
    Record::from_rdata(name, TTL, rdata)
}

fn found(answers: Vec<Record>, additionals: Vec<Record>) -> Answer {
    Answer {
        answers,
        additionals,
        ..Answer::default()
    }
}

fn empty(rcode: ResponseCode, soa: Record) -> Answer {
    Answer {
        rcode,
        authority: vec![soa],
        ..Answer::default()
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
