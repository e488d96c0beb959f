use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::view::tests::{namespaces, service, slice};

/// A headless Service with enough endpoints that its A answer exceeds 512 bytes.
const MANY: u8 = 60;

fn view() -> View {
    let services = BTreeMap::from([
        service(
            "default",
            "web",
            json!({"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80}]}),
        ),
        service("default", "many", json!({"clusterIP": "None"})),
        service(
            "default",
            "ext",
            json!({"type": "ExternalName", "externalName": "example.com"}),
        ),
    ]);
    let endpoints: Vec<_> = (1..=MANY)
        .map(|i| json!({"addresses": [format!("10.42.1.{i}")], "conditions": {"ready": true}}))
        .collect();
    let slices = BTreeMap::from([slice(
        "default",
        "many-1",
        "many",
        json!(endpoints),
        json!([]),
    )]);
    let mut view = View::build(&services, &slices, &namespaces(&["default"]));
    view.synced = true;
    view
}

/// The fake resolver's answer to `query`: 192.0.2.`last` for every question.
fn upstream_answer(query: &[u8], last: u8) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let mut response = Message::response(query.metadata.id, OpCode::Query);
    response.metadata.recursion_available = true;
    for q in &query.queries {
        response.add_query(q.clone());
        let a = Record::from_rdata(q.name().clone(), 60, RData::A(A::new(192, 0, 2, last)));
        response.add_answer(a);
    }
    response.to_vec().ok()
}

/// A resolver on loopback answering 192.0.2.7 over UDP and 192.0.2.8 over TCP, on one port.
async fn fake_upstream() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    let listener = TcpListener::bind(address).await.unwrap();
    tokio::spawn(async move {
        let mut buffer = vec![0; 4096];
        while let Ok((len, from)) = socket.recv_from(&mut buffer).await {
            if let Some(response) = upstream_answer(&buffer[..len], 7) {
                let _ = socket.send_to(&response, from).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let len = stream.read_u16().await.unwrap_or_default();
            let mut query = vec![0; usize::from(len)];
            if stream.read_exact(&mut query).await.is_err() {
                continue;
            }
            if let Some(response) = upstream_answer(&query, 8) {
                let _ = stream.write_u16(response.len() as u16).await;
                let _ = stream.write_all(&response).await;
            }
        }
    });
    address
}

/// A server on a free loopback port, its address.
async fn start() -> (Server<Handler>, SocketAddr) {
    let upstream = fake_upstream().await;
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(address).await.unwrap();
    let shared = Arc::new(SharedView::default());
    shared.set(view());
    let handler = Handler {
        view: shared,
        zone: Zone {
            domain: "cluster.local".into(),
            dns_ip: Ipv4Addr::new(10, 43, 0, 10),
            reverse: vec!["10.43.0.0/16".parse().unwrap()],
        },
        forwarder: Forwarder::new(vec![upstream]),
    };
    (serve(handler, vec![(udp, tcp)]), address)
}

fn query(name: &str, qtype: RecordType, edns: bool) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut extension = Edns::new();
        extension.set_max_payload(4096);
        message.set_edns(extension);
    }
    message
}

async fn udp_exchange(server: SocketAddr, bytes: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    socket.send_to(bytes, server).await.unwrap();
    let mut buffer = vec![0; 65535];
    let received = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buffer)).await;
    let len = received.ok()?.unwrap();
    Some(buffer[..len].to_vec())
}

async fn udp(server: SocketAddr, message: &Message) -> Message {
    let bytes = udp_exchange(server, &message.to_vec().unwrap()).await;
    Message::from_vec(&bytes.expect("an answer")).unwrap()
}

async fn tcp(server: SocketAddr, message: &Message) -> Message {
    let mut stream = tokio::net::TcpStream::connect(server).await.unwrap();
    let bytes = message.to_vec().unwrap();
    stream.write_u16(bytes.len() as u16).await.unwrap();
    stream.write_all(&bytes).await.unwrap();
    let len = stream.read_u16().await.unwrap();
    let mut buffer = vec![0; usize::from(len)];
    stream.read_exact(&mut buffer).await.unwrap();
    Message::from_vec(&buffer).unwrap()
}

#[tokio::test]
async fn answers_over_udp_and_tcp() {
    let (_server, address) = start().await;
    let ask = query("web.default.svc.cluster.local.", RecordType::A, false);
    for response in [udp(address, &ask).await, tcp(address, &ask).await] {
        assert_eq!(response.metadata.id, ask.metadata.id);
        assert_eq!(response.metadata.response_code, ResponseCode::NoError);
        assert!(response.metadata.authoritative);
        assert!(!response.metadata.recursion_available);
        assert_eq!(response.answers.len(), 1);
        assert_eq!(response.answers[0].data.to_string(), "10.43.0.20");
        assert_eq!(response.answers[0].ttl, 5);
    }
    let missing = udp(
        address,
        &query("no.default.svc.cluster.local.", RecordType::A, false),
    )
    .await;
    assert_eq!(missing.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(missing.authorities[0].record_type(), RecordType::SOA);
}

#[tokio::test]
async fn large_udp_answers_are_truncated_and_whole_over_tcp() {
    let (_server, address) = start().await;
    let ask = query("many.default.svc.cluster.local.", RecordType::A, false);
    let cut = udp(address, &ask).await;
    assert!(cut.metadata.truncation);
    assert!(cut.answers.len() < usize::from(MANY));
    let whole = tcp(address, &ask).await;
    assert!(!whole.metadata.truncation);
    assert_eq!(whole.answers.len(), usize::from(MANY));
    let roomy = udp(
        address,
        &query("many.default.svc.cluster.local.", RecordType::A, true),
    )
    .await;
    assert!(!roomy.metadata.truncation);
    assert_eq!(roomy.answers.len(), usize::from(MANY));
}

#[tokio::test]
async fn malformed_queries_are_formerr_and_serving_goes_on() {
    let (_server, address) = start().await;
    // A header claiming one question, then bytes that are no name.
    let mut garbage = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    garbage.extend_from_slice(&[0xff; 7]);
    let answer = udp_exchange(address, &garbage).await.expect("an answer");
    let answer = Message::from_vec(&answer).unwrap();
    assert_eq!(answer.metadata.id, 0xabcd);
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);
    assert_eq!(udp_exchange(address, &[1, 2, 3]).await, None);
    let two = {
        let mut message = query("web.default.svc.cluster.local.", RecordType::A, false);
        message.add_query(Query::query(Name::from_ascii("x.").unwrap(), RecordType::A));
        message
    };
    assert_eq!(
        udp(address, &two).await.metadata.response_code,
        ResponseCode::FormErr
    );
    let fine = udp(
        address,
        &query("web.default.svc.cluster.local.", RecordType::A, false),
    )
    .await;
    assert_eq!(fine.metadata.response_code, ResponseCode::NoError);
}

#[tokio::test]
async fn other_names_are_forwarded_and_external_names_chased() {
    let (_server, address) = start().await;
    let ask = query("example.org.", RecordType::A, false);
    let over_udp = udp(address, &ask).await;
    let over_tcp = tcp(address, &ask).await;
    for (response, expected) in [(over_udp, "192.0.2.7"), (over_tcp, "192.0.2.8")] {
        assert_eq!(response.metadata.id, ask.metadata.id);
        assert!(!response.metadata.authoritative);
        assert!(response.metadata.recursion_available);
        assert_eq!(response.answers[0].data.to_string(), expected);
    }
    let chased = udp(
        address,
        &query("ext.default.svc.cluster.local.", RecordType::A, false),
    )
    .await;
    let answers: Vec<String> = chased.answers.iter().map(|r| r.data.to_string()).collect();
    assert_eq!(answers, ["example.com.", "192.0.2.7"]);
}

#[tokio::test]
async fn forwarding_without_a_resolver_and_unsynced_names_are_servfail() {
    let handler = Handler {
        view: Arc::new(SharedView::default()),
        zone: Zone {
            domain: "cluster.local".into(),
            dns_ip: Ipv4Addr::new(10, 43, 0, 10),
            reverse: vec![],
        },
        forwarder: Forwarder::new(vec![]),
    };
    let (udp_socket, tcp_listener) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let address = udp_socket.local_addr().unwrap();
    let _server = serve(handler, vec![(udp_socket, tcp_listener)]);
    let response = udp(address, &query("example.org.", RecordType::A, false)).await;
    assert_eq!(response.metadata.response_code, ResponseCode::ServFail);
    let unsynced = udp(
        address,
        &query("x.default.svc.cluster.local.", RecordType::A, false),
    )
    .await;
    assert_eq!(unsynced.metadata.response_code, ResponseCode::ServFail);
}

#[tokio::test]
async fn a_taken_address_is_a_bind_error_naming_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = taken.local_addr().unwrap();
    let error = bind(address).await.unwrap_err();
    assert!(error
        .to_string()
        .starts_with(&format!("listening for DNS on UDP {address}")));
}
