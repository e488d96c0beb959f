//! The DNS server: UDP and TCP listeners on hickory-server, each query answered from the
//! current [`View`] or forwarded. hickory cuts UDP answers to the client's buffer (512 bytes
//! without EDNS) and sets TC, and answers unparsable queries FORMERR.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Message, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::Record;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

use crate::forward::Forwarder;
use crate::records::{self, Answer, Zone};
use crate::view::View;

/// How long a TCP client may stay idle between queries.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// The EDNS buffer this server advertises at most (the DNS flag day's 1232 bytes).
const MAX_UDP_PAYLOAD: u16 = 1232;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("listening for DNS on {protocol} {address}: {source}")]
    Bind {
        protocol: &'static str,
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The view queries are answered from, replaced whole as the watches change it.
#[derive(Debug, Default)]
pub struct SharedView(RwLock<Arc<View>>);

impl SharedView {
    pub fn get(&self) -> Arc<View> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, view: View) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    }
}

/// Answers each query from the view, or forwards it.
pub struct Handler {
    pub view: Arc<SharedView>,
    pub zone: Zone,
    pub forwarder: Forwarder,
}

/// Binds UDP and TCP on `address`.
pub async fn bind(address: SocketAddr) -> Result<(UdpSocket, TcpListener), ServeError> {
    let failed = |protocol| {
        move |source| ServeError::Bind {
            protocol,
            address,
            source,
        }
    };
    let udp = UdpSocket::bind(address).await.map_err(failed("UDP"))?;
    let tcp = TcpListener::bind(address).await.map_err(failed("TCP"))?;
    Ok((udp, tcp))
}

/// Serves `handler` on the bound sockets until the server is dropped.
pub fn serve(handler: Handler, sockets: Vec<(UdpSocket, TcpListener)>) -> Server<Handler> {
    let mut server = Server::new(handler);
    for (udp, tcp) in sockets {
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
    }
    server
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        // Cluster answers carry no RA, as CoreDNS's; forwarded ones the resolver's flags.
        let mut metadata = Metadata::response_from_request(&request.metadata);
        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().clamp(512, MAX_UDP_PAYLOAD));
            edns
        });
        let answer = self.answer(request, &mut metadata).await;
        let builder = MessageResponseBuilder::new(&request.queries, edns.as_ref());
        let response = builder.build(
            metadata,
            answer.answers.iter(),
            answer.authority.iter(),
            std::iter::empty::<&Record>(),
            answer.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "sending a DNS response");
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

impl Handler {
    /// The sections for `request`, its code and flags set in `metadata`.
    async fn answer(&self, request: &Request, metadata: &mut Metadata) -> Answer {
        let refuse = |metadata: &mut Metadata, code| {
            metadata.response_code = code;
            Answer::default()
        };
        if request.metadata.op_code != OpCode::Query {
            return refuse(metadata, ResponseCode::NotImp);
        }
        if request
            .edns
            .as_ref()
            .is_some_and(|asked| asked.version() > 0)
        {
            return refuse(metadata, ResponseCode::BADVERS);
        }
        let [query] = request.queries.queries() else {
            return refuse(metadata, ResponseCode::FormErr);
        };
        let (name, qtype) = (query.original().name(), query.query_type());
        let view = self.view.get();
        match records::answer(&view, &self.zone, name, qtype) {
            Some(mut answer) => {
                metadata.authoritative = true;
                metadata.response_code = answer.rcode;
                if let Some(target) = answer.chase.take() {
                    if let Ok(found) = self.forwarder.lookup(&target, qtype).await {
                        answer.answers.extend(found.answers);
                    }
                }
                answer
            }
            None => {
                let tcp = request.protocol() == Protocol::Tcp;
                match self.forwarder.forward(request.as_slice(), tcp).await {
                    Ok(response) => forwarded(response, metadata),
                    Err(error) => {
                        tracing::debug!(%error, %name, "forwarding a DNS query");
                        refuse(metadata, ResponseCode::ServFail)
                    }
                }
            }
        }
    }
}

/// A resolver's answer passed on under the client's query id.
fn forwarded(response: Message, metadata: &mut Metadata) -> Answer {
    let id = metadata.id;
    *metadata = response.metadata;
    metadata.id = id;
    Answer {
        rcode: metadata.response_code,
        answers: response.answers,
        authority: response.authorities,
        additionals: response.additionals,
        chase: None,
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
