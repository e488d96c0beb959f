//! Links, addresses and routes through rtnetlink: the agent's bridge and each pod's veth pair.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::sys::{protocols::NETLINK_ROUTE, AsyncSocket, TokioSocket};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

/// The name of the pod's end of its veth pair, inside the pod's network namespace.
pub const POD_INTERFACE: &str = "eth0";

/// Longest interface name the kernel accepts (IFNAMSIZ - 1).
const MAX_NAME_LEN: usize = 15;

/// `addr_assign_type` of a link whose MAC was set explicitly (NET_ADDR_SET).
const ADDR_SET: &str = "3";

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("no tokio runtime to drive the netlink connection")]
    NoRuntime,
    #[error("cannot open a netlink socket: {0}")]
    Socket(#[source] io::Error),
    #[error("link {name} exists and is a {kind}, not a bridge")]
    NotABridge { name: String, kind: String },
    #[error("link name {name:?} is not 1 to 15 bytes without '/', ':' or whitespace")]
    InvalidName { name: String },
    #[error("cannot {action} {name}: {source}")]
    Netlink {
        action: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot list the host's {what}: {source}")]
    Dump {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("cannot enter network namespace {}: {source}", path.display())]
    Namespace {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot {action} in network namespace {}: {source}", path.display())]
    InNamespace {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {}: {source}", path.display())]
    Sysfs {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A netlink connection to the host's (the agent's own) network namespace.
#[derive(Clone)]
pub struct Links {
    handle: Handle,
}

impl Links {
    /// Opens the connection; its driver task is spawned on the current tokio runtime.
    pub fn connect() -> Result<Links, LinkError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| LinkError::NoRuntime)?;
        let (connection, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
        runtime.spawn(connection);
        Ok(Links { handle })
    }

    /// Creates bridge `name` when absent (with a MAC derived from its name, so it neither
    /// changes as ports join nor across restarts), or checks that the existing link is a
    /// bridge; then ensures `gateway` is among its addresses and that it is up.
    pub async fn ensure_bridge(&self, name: &str, gateway: Ipv4Net) -> Result<u32, LinkError> {
        validate_name(name)?;
        let index = match self.link_by_name(name).await? {
            Some(link) => self.adopt_bridge(name, &link).await?,
            None => self.create_bridge(name).await?,
        };
        self.ensure_address(name, index, gateway).await?;
        Ok(index)
    }

    /// The IPv4 routes of the main table, as (destination, output ifindex); the default
    /// route appears as 0.0.0.0/0, routes without a single output device with `None`.
    pub async fn ipv4_routes(&self) -> Result<Vec<(Ipv4Net, Option<u32>)>, LinkError> {
        let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
        let routes: Vec<RouteMessage> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(|e| dump_error("routes", e))?;
        Ok(routes
            .iter()
            .filter(|route| route_table(route) == u32::from(RouteHeader::RT_TABLE_MAIN))
            .filter_map(ipv4_route)
            .collect())
    }

    /// Gives a pod its interface: a veth pair whose host end `host_name` joins the bridge
    /// `bridge_index` and is up, and whose other end is created directly inside `netns` as
    /// `eth0`, up, with `address` and a default route via `gateway`; `lo` there is brought up
    /// too. On any failure after the pair exists, the host end (hence the pair) is removed.
    pub async fn add_pod_interface(
        &self,
        host_name: &str,
        bridge_index: u32,
        netns: &Path,
        address: Ipv4Net,
        gateway: Ipv4Addr,
    ) -> Result<(), LinkError> {
        validate_name(host_name)?;
        let namespace =
            Arc::new(File::open(netns).map_err(|source| namespace_error(netns, source))?);
        // The pod-side socket is opened on a helper thread while the kernel creates the pair.
        let pod_socket = socket_in_namespace(Arc::clone(&namespace), netns)?;
        self.create_veth(host_name, bridge_index, &namespace)
            .await?;
        let configured = async {
            let socket = pod_socket
                .await
                .map_err(|_| namespace_error(netns, io::Error::other("helper thread ended early")))?
                .map_err(|source| namespace_error(netns, source))?;
            configure_pod_side(socket, netns, address, gateway).await
        }
        .await;
        if let Err(err) = configured {
            if let Err(cleanup) = self.delete_link(host_name).await {
                tracing::warn!(link = host_name, error = %cleanup, "cannot remove half-made veth pair");
            }
            return Err(err);
        }
        Ok(())
    }

    /// Deletes link `name`; Ok when it does not exist.
    pub async fn delete_link(&self, name: &str) -> Result<(), LinkError> {
        validate_name(name)?;
        let message = LinkUnspec::new_with_name(name).build();
        match self.handle.link().del_with_message(message).execute().await {
            Err(err) if errno(&err) == Some(libc::ENODEV) => Ok(()),
            result => result.map_err(|e| netlink_error("delete link", name, e)),
        }
    }

    /// Names of the links enslaved to the bridge `bridge_index`.
    pub async fn bridge_ports(&self, bridge_index: u32) -> Result<Vec<String>, LinkError> {
        let links: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| dump_error("links", e))?;
        Ok(links
            .iter()
            .filter(|link| controller(link) == Some(bridge_index))
            .filter_map(link_name)
            .collect())
    }

    /// The ifindex of link `name`, None when absent.
    pub async fn index_of(&self, name: &str) -> Result<Option<u32>, LinkError> {
        validate_name(name)?;
        Ok(self.link_by_name(name).await?.map(|link| link.header.index))
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<LinkMessage>, LinkError> {
        find_link(&self.handle, name)
            .await
            .map_err(|e| netlink_error("look up link", name, e))
    }

    async fn create_bridge(&self, name: &str) -> Result<u32, LinkError> {
        let message = LinkBridge::new(name)
            .address(bridge_mac(name).to_vec())
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|e| netlink_error("create bridge", name, e))?;
        let created = self.link_by_name(name).await?;
        created.map(|link| link.header.index).ok_or_else(|| {
            netlink_error("find the new bridge", name, rtnetlink::Error::RequestFailed)
        })
    }

    /// Accepts an existing bridge: brings it up and pins its MAC when that is still the
    /// kernel's choice, which would otherwise follow its ports.
    async fn adopt_bridge(&self, name: &str, link: &LinkMessage) -> Result<u32, LinkError> {
        let kind = link_kind(link);
        if kind != InfoKind::Bridge.to_string() {
            return Err(LinkError::NotABridge {
                name: name.to_string(),
                kind,
            });
        }
        let index = link.header.index;
        if !link.header.flags.contains(LinkFlags::Up) {
            self.set_link(
                name,
                LinkUnspec::new_with_index(index).up().build(),
                "bring up",
            )
            .await?;
        }
        if !mac_is_pinned(name)? {
            if let Some(mac) = link_mac(link) {
                let message = LinkUnspec::new_with_index(index).address(mac).build();
                self.set_link(name, message, "pin the mac address of")
                    .await?;
            }
        }
        Ok(index)
    }

    async fn set_link(
        &self,
        name: &str,
        message: LinkMessage,
        action: &'static str,
    ) -> Result<(), LinkError> {
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|e| netlink_error(action, name, e))
    }

    async fn ensure_address(
        &self,
        name: &str,
        index: u32,
        address: Ipv4Net,
    ) -> Result<(), LinkError> {
        let present: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_prefix_length_filter(address.prefix_len())
            .set_address_filter(IpAddr::V4(address.addr()))
            .execute()
            .try_collect()
            .await
            .map_err(|e| netlink_error("list the addresses of", name, e))?;
        if !present.is_empty() {
            return Ok(());
        }
        self.handle
            .address()
            .add(index, IpAddr::V4(address.addr()), address.prefix_len())
            .execute()
            .await
            .map_err(|e| netlink_error("add the gateway address to", name, e))
    }

    async fn create_veth(
        &self,
        host_name: &str,
        bridge_index: u32,
        namespace: &File,
    ) -> Result<(), LinkError> {
        use std::os::fd::AsRawFd;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(POD_INTERFACE)
            .setns_by_fd(namespace.as_raw_fd())
            .build();
        let message = LinkVeth::new(host_name, POD_INTERFACE)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .controller(bridge_index)
            .up()
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(|e| netlink_error("create veth pair", host_name, e))
    }
}

/// Opens a netlink socket inside `namespace` on a dedicated thread: a socket belongs to the
/// network namespace of the thread creating it, and a pooled thread must never switch.
fn socket_in_namespace(
    namespace: Arc<File>,
    path: &Path,
) -> Result<tokio::sync::oneshot::Receiver<io::Result<TokioSocket>>, LinkError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| LinkError::NoRuntime)?;
    let (sender, receiver) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("peapod-netns".to_string())
        .stack_size(64 * 1024)
        .spawn(move || {
            let socket = nix::sched::setns(&*namespace, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(io::Error::from)
                .and_then(|()| {
                    let _entered = runtime.enter();
                    TokioSocket::new(NETLINK_ROUTE)
                });
            let _ = sender.send(socket);
        })
        .map_err(|source| namespace_error(path, source))?;
    Ok(receiver)
}

/// Gives `eth0` its address and default route and brings `lo` up, through a socket opened
/// inside the pod's namespace.
async fn configure_pod_side(
    socket: TokioSocket,
    path: &Path,
    address: Ipv4Net,
    gateway: Ipv4Addr,
) -> Result<(), LinkError> {
    let (connection, handle, _) = rtnetlink::from_socket(socket);
    let work = async {
        let in_ns = |action| move |e| namespace_netlink_error(action, path, e);
        let link_up = |name: &str| {
            let message = LinkUnspec::new_with_name(name).up().build();
            handle.link().set(message).execute()
        };
        // eth0's MAC follows from the pod's address (the CNI plugins' 0a:58 + IPv4 scheme):
        // a sandbox re-created with the same address keeps the same MAC, so the neighbour
        // entries the node and other pods hold for it stay right. The kernel sets the address
        // before the flags of one request, so eth0 (created down) comes up with it.
        let [a, b, c, d] = address.addr().octets();
        let eth0_up = LinkUnspec::new_with_name(POD_INTERFACE)
            .address(vec![0x0a, 0x58, a, b, c, d])
            .up()
            .build();
        // One socket's requests are sent in order and the kernel handles them in order, so
        // each batch goes out at once: eth0 is up before the route that needs it, and the
        // address (whose subnet holds the gateway) is added before that route.
        let (eth0, (), ()) = futures::try_join!(
            async {
                let link = find_link(&handle, POD_INTERFACE)
                    .await
                    .map_err(in_ns("look up eth0"))?;
                link.map(|link| link.header.index).ok_or_else(|| {
                    namespace_netlink_error("find eth0", path, rtnetlink::Error::RequestFailed)
                })
            },
            async {
                handle
                    .link()
                    .set(eth0_up)
                    .execute()
                    .await
                    .map_err(in_ns("bring up eth0"))
            },
            async { link_up("lo").await.map_err(in_ns("bring up lo")) },
        )?;
        let add_address = handle
            .address()
            .add(eth0, IpAddr::V4(address.addr()), address.prefix_len())
            .execute();
        let route = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gateway)
            .output_interface(eth0)
            .build();
        let add_route = handle.route().add(route).execute();
        futures::try_join!(
            async {
                add_address
                    .await
                    .map_err(in_ns("add the pod address to eth0"))
            },
            async { add_route.await.map_err(in_ns("add the default route")) },
        )
        .map(|_| ())
    };
    tokio::select! {
        result = work => result,
        () = connection => Err(namespace_netlink_error("configure eth0", path, rtnetlink::Error::RequestFailed)),
    }
}

async fn find_link(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, rtnetlink::Error> {
    match handle
        .link()
        .get()
        .match_name(name)
        .execute()
        .try_next()
        .await
    {
        Err(err) if errno(&err) == Some(libc::ENODEV) => Ok(None),
        other => other,
    }
}

fn validate_name(name: &str) -> Result<(), LinkError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && !name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace());
    if valid {
        Ok(())
    } else {
        Err(LinkError::InvalidName {
            name: name.to_string(),
        })
    }
}

/// A locally administered unicast MAC derived from the bridge's name (FNV-1a), so the
/// gateway's MAC seen by pods survives agent restarts and bridge re-creation.
fn bridge_mac(name: &str) -> [u8; 6] {
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let bytes = hash.to_be_bytes();
    [0x02, bytes[0], bytes[1], bytes[2], bytes[3], bytes[4]]
}

fn mac_is_pinned(name: &str) -> Result<bool, LinkError> {
    let path = PathBuf::from(format!("/sys/class/net/{name}/addr_assign_type"));
    let value =
        std::fs::read_to_string(&path).map_err(|source| LinkError::Sysfs { path, source })?;
    Ok(value.trim() == ADDR_SET)
}

fn link_kind(link: &LinkMessage) -> String {
    link.attributes
        .iter()
        .find_map(|attr| match attr {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
                LinkInfo::Kind(kind) => Some(kind.to_string()),
                _ => None,
            }),
            _ => None,
        })
        .unwrap_or_else(|| "device without a kind".to_string())
}

fn link_mac(link: &LinkMessage) -> Option<Vec<u8>> {
    link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::Address(mac) => Some(mac.clone()),
        _ => None,
    })
}

fn link_name(link: &LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}

fn controller(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|attr| match attr {
        LinkAttribute::Controller(index) => Some(*index),
        _ => None,
    })
}

fn route_table(route: &RouteMessage) -> u32 {
    route
        .attributes
        .iter()
        .find_map(|attr| match attr {
            RouteAttribute::Table(table) => Some(*table),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table))
}

fn ipv4_route(route: &RouteMessage) -> Option<(Ipv4Net, Option<u32>)> {
    if route.header.address_family != AddressFamily::Inet {
        return None;
    }
    let mut destination = Ipv4Addr::UNSPECIFIED;
    let mut oif = None;
    for attr in &route.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(addr)) => destination = *addr,
            RouteAttribute::Oif(index) => oif = Some(*index),
            _ => {}
        }
    }
    let net = Ipv4Net::new(destination, route.header.destination_prefix_length).ok()?;
    Some((net, oif))
}

fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code().abs()),
        _ => None,
    }
}

fn os_error(err: rtnetlink::Error) -> io::Error {
    match err {
        rtnetlink::Error::NetlinkError(message) => message.to_io(),
        other => io::Error::other(other.to_string()),
    }
}

fn netlink_error(action: &'static str, name: &str, err: rtnetlink::Error) -> LinkError {
    LinkError::Netlink {
        action,
        name: name.to_string(),
        source: os_error(err),
    }
}

fn dump_error(what: &'static str, err: rtnetlink::Error) -> LinkError {
    LinkError::Dump {
        what,
        source: os_error(err),
    }
}

fn namespace_error(path: &Path, source: io::Error) -> LinkError {
    LinkError::Namespace {
        path: path.to_path_buf(),
        source,
    }
}

fn namespace_netlink_error(action: &'static str, path: &Path, err: rtnetlink::Error) -> LinkError {
    LinkError::InNamespace {
        action,
        path: path.to_path_buf(),
        source: os_error(err),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use super::*;

    /// A name no other test (or earlier run) uses: prefix, pid and a counter, in hex.
    fn unique(prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}{:05x}{n:03x}", std::process::id() & 0xfffff);
        assert!(name.len() <= MAX_NAME_LEN, "{name}");
        name
    }

    /// A /24 of the benchmarking range 198.18.0.0/15, distinct per call, never a host route.
    fn subnet() -> u8 {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        u8::try_from(NEXT.fetch_add(1, Ordering::Relaxed)).unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    fn ip(args: &[&str]) -> String {
        let out = Command::new("ip").args(args).output().expect("run ip");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ip_json(args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        serde_json::from_str(&ip(&all)).unwrap()
    }

    fn has_flag(link: &Value, flag: &str) -> bool {
        link["flags"].as_array().unwrap().iter().any(|f| f == flag)
    }

    /// Removes a host link when dropped, even when the test failed.
    struct LinkGuard(String);

    impl Drop for LinkGuard {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["link", "del", &self.0]).output();
        }
    }

    /// A named network namespace (as `ip netns` makes), removed when dropped.
    struct NetnsGuard(String);

    impl NetnsGuard {
        fn new() -> NetnsGuard {
            let name = unique("ptns");
            ip(&["netns", "add", &name]);
            NetnsGuard(name)
        }

        fn path(&self) -> PathBuf {
            PathBuf::from(format!("/run/netns/{}", self.0))
        }
    }

    impl Drop for NetnsGuard {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }

    async fn bridge(links: &Links) -> (LinkGuard, u32, u8) {
        let name = unique("ptbr");
        let guard = LinkGuard(name.clone());
        let third = subnet();
        let index = links
            .ensure_bridge(&name, net(&format!("198.18.{third}.1/24")))
            .await
            .unwrap();
        (guard, index, third)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ensure_bridge_creates_then_changes_nothing() {
        let links = Links::connect().unwrap();
        let name = unique("ptbr");
        let _guard = LinkGuard(name.clone());
        let gateway = net("198.18.200.1/24");
        let index = links.ensure_bridge(&name, gateway).await.unwrap();
        let before = ip_json(&["addr", "show", "dev", &name]);
        let again = links.ensure_bridge(&name, gateway).await.unwrap();
        let after = ip_json(&["addr", "show", "dev", &name]);

        assert_eq!(index, again);
        assert_eq!(before, after);
        let link = &after[0];
        assert_eq!(link["ifindex"], index);
        let detail = ip_json(&["-d", "link", "show", "dev", &name]);
        assert_eq!(detail[0]["linkinfo"]["info_kind"], "bridge");
        assert!(has_flag(link, "UP"));
        let mac: Vec<String> = bridge_mac(&name)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(link["address"], mac.join(":"));
        let addrs: Vec<_> = link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["family"] == "inet")
            .map(|a| {
                (
                    a["local"].as_str().unwrap().to_string(),
                    a["prefixlen"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(addrs, vec![("198.18.200.1".to_string(), 24)]);
        assert!(mac_is_pinned(&name).unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ensure_bridge_adopts_an_existing_bridge_and_pins_its_mac() {
        let links = Links::connect().unwrap();
        let name = unique("ptbr");
        let _guard = LinkGuard(name.clone());
        ip(&["link", "add", &name, "type", "bridge"]);
        assert!(!mac_is_pinned(&name).unwrap());
        let mac = ip_json(&["link", "show", "dev", &name])[0]["address"].clone();

        let index = links
            .ensure_bridge(&name, net("198.18.201.1/24"))
            .await
            .unwrap();

        let link = &ip_json(&["addr", "show", "dev", &name])[0];
        assert_eq!(link["ifindex"], index);
        assert_eq!(link["address"], mac);
        assert!(has_flag(link, "UP"));
        assert!(mac_is_pinned(&name).unwrap());
        assert!(link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["local"] == "198.18.201.1"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ensure_bridge_refuses_a_veth_and_leaves_it_alone() {
        let links = Links::connect().unwrap();
        let name = unique("ptvt");
        let _guard = LinkGuard(name.clone());
        ip(&["link", "add", &name, "type", "veth"]);

        let err = links
            .ensure_bridge(&name, net("198.18.202.1/24"))
            .await
            .unwrap_err();

        assert!(
            matches!(&err, LinkError::NotABridge { name: n, kind } if *n == name && kind == "veth"),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("link {name} exists and is a veth, not a bridge")
        );
        let link = &ip_json(&["addr", "show", "dev", &name])[0];
        assert!(!has_flag(link, "UP"));
        assert!(link["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["family"] != "inet"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delete_and_look_up_links() {
        let links = Links::connect().unwrap();
        let name = unique("ptvt");
        let _guard = LinkGuard(name.clone());
        assert_eq!(links.index_of(&name).await.unwrap(), None);
        links.delete_link(&name).await.unwrap();

        ip(&["link", "add", &name, "type", "veth"]);
        let index = ip_json(&["link", "show", "dev", &name])[0]["ifindex"]
            .as_u64()
            .unwrap();
        assert_eq!(
            links.index_of(&name).await.unwrap(),
            Some(u32::try_from(index).unwrap())
        );

        links.delete_link(&name).await.unwrap();
        assert_eq!(links.index_of(&name).await.unwrap(), None);
        links.delete_link(&name).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn invalid_names_are_refused_before_the_kernel() {
        let links = Links::connect().unwrap();
        for name in ["", "sixteen-chars-xx", "a/b", "a b"] {
            let err = links.delete_link(name).await.unwrap_err();
            assert!(
                matches!(err, LinkError::InvalidName { .. }),
                "{name}: {err:?}"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pod_interface_is_addressed_routed_and_reachable() {
        let links = Links::connect().unwrap();
        let (bridge_guard, bridge_index, third) = bridge(&links).await;
        let ns = NetnsGuard::new();
        let host = unique("ptve");
        let _host_guard = LinkGuard(host.clone());
        let gateway = Ipv4Addr::new(198, 18, third, 1);
        let pod_ip = format!("198.18.{third}.7");

        links
            .add_pod_interface(
                &host,
                bridge_index,
                &ns.path(),
                net(&format!("{pod_ip}/24")),
                gateway,
            )
            .await
            .unwrap();

        let eth0 = &ip_json(&["-n", &ns.0, "addr", "show", "dev", "eth0"])[0];
        assert!(has_flag(eth0, "UP"));
        // The MAC follows from the address (0a:58 + IPv4), stable across re-creation.
        assert_eq!(eth0["address"], format!("0a:58:c6:12:{third:02x}:07"));
        let inet = eth0["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["family"] == "inet")
            .unwrap();
        assert_eq!(
            (
                inet["local"].as_str().unwrap(),
                inet["prefixlen"].as_u64().unwrap()
            ),
            (pod_ip.as_str(), 24)
        );
        let lo = &ip_json(&["-n", &ns.0, "link", "show", "dev", "lo"])[0];
        assert!(has_flag(lo, "UP"));
        let routes = ip_json(&["-n", &ns.0, "route", "show", "default"]);
        assert_eq!(routes[0]["gateway"], gateway.to_string());
        assert_eq!(routes[0]["dev"], "eth0");
        let host_end = &ip_json(&["link", "show", "dev", &host])[0];
        assert!(has_flag(host_end, "UP"));
        assert_eq!(host_end["master"], bridge_guard.0.as_str());
        assert_eq!(
            links.bridge_ports(bridge_index).await.unwrap(),
            vec![host.clone()]
        );

        assert_pod_reaches(&ns.path(), gateway);
    }

    /// A TCP connection from inside the namespace to a listener on the bridge's address.
    fn assert_pod_reaches(netns: &Path, gateway: Ipv4Addr) {
        let listener = std::net::TcpListener::bind((gateway, 0)).unwrap();
        let target = listener.local_addr().unwrap();
        let ns = File::open(netns).unwrap();
        let client = std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            std::net::TcpStream::connect_timeout(&target, Duration::from_secs(3))
                .map(|s| s.local_addr())
        });
        let (_, peer) = listener.accept().unwrap();
        let local = client.join().unwrap().unwrap().unwrap();
        assert_eq!(peer, local);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_pod_setup_removes_the_pair() {
        let links = Links::connect().unwrap();
        let (_bridge_guard, bridge_index, third) = bridge(&links).await;
        let ns = NetnsGuard::new();
        let host = unique("ptve");
        let _host_guard = LinkGuard(host.clone());
        // A gateway outside the pod's subnet makes the route, the last step, fail.
        let err = links
            .add_pod_interface(
                &host,
                bridge_index,
                &ns.path(),
                net(&format!("198.18.{third}.7/24")),
                Ipv4Addr::new(203, 0, 113, 1),
            )
            .await
            .unwrap_err();

        assert!(
            matches!(
                &err,
                LinkError::InNamespace {
                    action: "add the default route",
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(links.index_of(&host).await.unwrap(), None);
        let ns_links = ip_json(&["-n", &ns.0, "link", "show"]);
        assert!(ns_links
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["ifname"] != "eth0"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_existing_host_link_of_that_name_is_not_touched() {
        let links = Links::connect().unwrap();
        let (_bridge_guard, bridge_index, third) = bridge(&links).await;
        let ns = NetnsGuard::new();
        let host = unique("ptvt");
        let _host_guard = LinkGuard(host.clone());
        ip(&["link", "add", &host, "type", "veth"]);

        let err = links
            .add_pod_interface(
                &host,
                bridge_index,
                &ns.path(),
                net(&format!("198.18.{third}.7/24")),
                Ipv4Addr::new(198, 18, third, 1),
            )
            .await
            .unwrap_err();

        assert!(
            matches!(&err, LinkError::Netlink { source, .. } if source.raw_os_error() == Some(libc::EEXIST)),
            "{err:?}"
        );
        assert_eq!(
            ip_json(&["-d", "link", "show", "dev", &host])[0]["linkinfo"]["info_kind"],
            "veth"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn missing_namespace_is_reported_with_its_path() {
        let links = Links::connect().unwrap();
        let path = Path::new("/run/netns/peapod-no-such-namespace");
        let err = links
            .add_pod_interface(
                &unique("ptve"),
                1,
                path,
                net("198.18.0.7/24"),
                Ipv4Addr::new(198, 18, 0, 1),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, LinkError::Namespace { path: p, .. } if p == path),
            "{err:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn routes_include_the_bridge_subnet_on_its_index() {
        let links = Links::connect().unwrap();
        let (_bridge_guard, bridge_index, third) = bridge(&links).await;
        let routes = links.ipv4_routes().await.unwrap();
        assert!(
            routes.contains(&(net(&format!("198.18.{third}.0/24")), Some(bridge_index))),
            "{routes:?}"
        );
        // Local-table routes (such as the bridge's own /32) are not in the main table.
        assert!(!routes
            .iter()
            .any(|(dst, _)| *dst == net(&format!("198.18.{third}.1/32"))));
    }

    #[test]
    fn bridge_mac_is_stable_local_and_unicast() {
        let mac = bridge_mac("peapod0");
        assert_eq!(mac, bridge_mac("peapod0"));
        assert_ne!(mac, bridge_mac("peapod1"));
        assert_eq!(mac[0] & 0b11, 0b10);
    }

    /// Run with `cargo test -p peapod-net link::tests::timing -- --ignored --nocapture`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "measures; prints timings"]
    async fn timing_of_add_pod_interface() {
        const PODS: usize = 50;
        let links = Links::connect().unwrap();
        let (_bridge_guard, bridge_index, third) = bridge(&links).await;
        let gateway = Ipv4Addr::new(198, 18, third, 1);
        let namespaces: Vec<NetnsGuard> = (0..2 * PODS).map(|_| NetnsGuard::new()).collect();
        let hosts: Vec<String> = (0..2 * PODS).map(|_| unique("ptve")).collect();
        let _host_guards: Vec<LinkGuard> = hosts.iter().cloned().map(LinkGuard).collect();
        let address = move |i: usize| net(&format!("198.18.{third}.{}/24", i + 2));

        let start = Instant::now();
        for i in 0..PODS {
            links
                .add_pod_interface(
                    &hosts[i],
                    bridge_index,
                    &namespaces[i].path(),
                    address(i),
                    gateway,
                )
                .await
                .unwrap();
        }
        let sequential = start.elapsed();

        let start = Instant::now();
        let tasks: Vec<_> = (PODS..2 * PODS)
            .map(|i| {
                let (links, host, path) = (links.clone(), hosts[i].clone(), namespaces[i].path());
                tokio::spawn(async move {
                    links
                        .add_pod_interface(&host, bridge_index, &path, address(i), gateway)
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let concurrent = start.elapsed();
        assert_eq!(
            links.bridge_ports(bridge_index).await.unwrap().len(),
            2 * PODS
        );

        let start = Instant::now();
        for host in &hosts[..PODS] {
            links.delete_link(host).await.unwrap();
        }
        let sequential_deletion = start.elapsed();
        let start = Instant::now();
        let deletions = hosts[PODS..].iter().map(|host| links.delete_link(host));
        futures::future::try_join_all(deletions).await.unwrap();
        let concurrent_deletion = start.elapsed();
        assert!(links.bridge_ports(bridge_index).await.unwrap().is_empty());
        println!(
            "add_pod_interface: {PODS} sequential {sequential:?}, {PODS} concurrent {concurrent:?}; \
             delete_link: {PODS} sequential {sequential_deletion:?}, {PODS} concurrent {concurrent_deletion:?}"
        );
    }
}
