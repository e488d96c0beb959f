//! The Services a container learns of through its environment, as kubelet's
//! getServiceEnvVarMap and envvars.FromServices make them: `<NAME>_SERVICE_HOST`,
//! `<NAME>_SERVICE_PORT` (and one per named port) and the Docker-link set
//! (`<NAME>_PORT_80_TCP_ADDR`, ...) for every Service with a cluster IP in the pod's namespace
//! when `enableServiceLinks` is on, and for `default/kubernetes` always. The Services come
//! from one list-and-watch over every namespace (kubelet's service informer), so that a
//! container start costs no request; pods start once it has listed them, as kubelet waits
//! for its service informer before making a pod's environment.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use k8s_openapi::api::core::v1::Service;
use peapod_apiserver::client::LocalClient;
use tokio::sync::watch;

use super::reflector::{Delta, Reflector};

const SERVICES: &str = "/api/v1/services";
/// The Services of the default namespace every pod hears of (kubelet's masterServices).
const MASTER_SERVICES: &[&str] = &["kubernetes"];

/// The Services as the watch last showed them.
pub struct ServiceLinks {
    services: RwLock<HashMap<(String, String), Service>>,
    synced: watch::Sender<bool>,
}

impl Default for ServiceLinks {
    fn default() -> Self {
        ServiceLinks {
            services: Default::default(),
            synced: watch::channel(false).0,
        }
    }
}

impl ServiceLinks {
    /// The variables of the Services a pod in `namespace` sees, by name.
    pub fn env(&self, namespace: &str, enable_service_links: bool) -> BTreeMap<String, String> {
        let services = self.services.read().expect("services lock");
        let mut seen: BTreeMap<&str, &Service> = BTreeMap::new();
        for ((service_namespace, name), service) in services.iter() {
            if !has_cluster_ip(service) {
                continue;
            }
            if service_namespace == "default" && MASTER_SERVICES.contains(&name.as_str()) {
                seen.entry(name).or_insert(service);
            } else if service_namespace == namespace && enable_service_links {
                seen.insert(name, service);
            }
        }
        seen.values()
            .flat_map(|service| variables(service))
            .collect()
    }

    /// Takes a Service in (the watch and tests).
    pub fn put(&self, service: Service) {
        let key = key_of(&service);
        self.services
            .write()
            .expect("services lock")
            .insert(key, service);
    }

    /// Waits until the Services have been listed once.
    pub async fn wait_synced(&self) {
        let mut synced = self.synced.subscribe();
        let _ = synced.wait_for(|s| *s).await;
    }

    /// Lists and watches the Services until the process ends.
    pub async fn run(&self, client: LocalClient) {
        let mut reflector = Reflector::new(client, SERVICES, "");
        loop {
            match reflector.next().await {
                Delta::Listed(objects) => {
                    let listed = objects.into_iter().filter_map(decode).map(|service| {
                        let key = key_of(&service);
                        (key, service)
                    });
                    *self.services.write().expect("services lock") = listed.collect();
                    self.synced.send_replace(true);
                }
                Delta::Changed(object) => {
                    if let Some(service) = decode(object) {
                        self.put(service);
                    }
                }
                Delta::Deleted(object) => {
                    if let Some(service) = decode(object) {
                        let key = key_of(&service);
                        self.services.write().expect("services lock").remove(&key);
                    }
                }
            }
        }
    }
}

fn decode(object: serde_json::Value) -> Option<Service> {
    serde_json::from_value(object).ok()
}

fn key_of(service: &Service) -> (String, String) {
    let meta = &service.metadata;
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// kube's IsServiceIPSet: neither headless nor without an address (ExternalName).
fn has_cluster_ip(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref());
    !matches!(ip, None | Some("") | Some("None"))
}

/// envvars.FromServices for one Service.
fn variables(service: &Service) -> Vec<(String, String)> {
    let spec = service.spec.clone().unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    let (Some(ip), Some(first)) = (spec.cluster_ip, ports.first()) else {
        return Vec::new();
    };
    let prefix = variable_name(service.metadata.name.as_deref().unwrap_or_default());
    let mut env = vec![
        (format!("{prefix}_SERVICE_HOST"), ip.clone()),
        (format!("{prefix}_SERVICE_PORT"), first.port.to_string()),
    ];
    for port in &ports {
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let key = format!("{prefix}_SERVICE_PORT_{}", variable_name(name));
            env.push((key, port.port.to_string()));
        }
    }
    for (i, port) in ports.iter().enumerate() {
        let protocol = port.protocol.as_deref().unwrap_or("TCP");
        let lower = protocol.to_ascii_lowercase();
        let url = format!("{lower}://{}", host_port(&ip, port.port));
        if i == 0 {
            env.push((format!("{prefix}_PORT"), url.clone()));
        }
        let port_prefix = format!(
            "{prefix}_PORT_{}_{}",
            port.port,
            protocol.to_ascii_uppercase()
        );
        env.push((port_prefix.clone(), url));
        env.push((format!("{port_prefix}_PROTO"), lower));
        env.push((format!("{port_prefix}_PORT"), port.port.to_string()));
        env.push((format!("{port_prefix}_ADDR"), ip.clone()));
    }
    env
}

/// Go's net.JoinHostPort: an IPv6 address in brackets.
fn host_port(ip: &str, port: i32) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// kubelet's makeEnvVariableName: upper case, dashes as underscores.
fn variable_name(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn service(namespace: &str, name: &str, ip: &str, ports: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"namespace": namespace, "name": name},
            "spec": {"clusterIP": ip, "ports": ports},
        }))
        .unwrap()
    }

    fn links() -> ServiceLinks {
        let links = ServiceLinks::default();
        links.put(service(
            "default",
            "kubernetes",
            "10.43.0.1",
            json!([{"name": "https", "port": 443, "protocol": "TCP"}]),
        ));
        links.put(service(
            "shop",
            "redis-primary",
            "10.0.0.11",
            json!([{"port": 6379, "protocol": "TCP"}]),
        ));
        links.put(service(
            "shop",
            "web",
            "10.0.0.12",
            json!([{"name": "http", "port": 80}, {"name": "dns", "port": 53, "protocol": "UDP"}]),
        ));
        links.put(service("shop", "headless", "None", json!([{"port": 80}])));
        links.put(service(
            "other",
            "elsewhere",
            "10.0.0.13",
            json!([{"port": 80}]),
        ));
        links
    }

    /// The example of kube's Service documentation, for redis-primary.
    #[test]
    fn a_service_gives_the_documented_variables() {
        let env = links().env("shop", true);
        let expected = [
            ("REDIS_PRIMARY_SERVICE_HOST", "10.0.0.11"),
            ("REDIS_PRIMARY_SERVICE_PORT", "6379"),
            ("REDIS_PRIMARY_PORT", "tcp://10.0.0.11:6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP", "tcp://10.0.0.11:6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP_PROTO", "tcp"),
            ("REDIS_PRIMARY_PORT_6379_TCP_PORT", "6379"),
            ("REDIS_PRIMARY_PORT_6379_TCP_ADDR", "10.0.0.11"),
        ];
        for (key, value) in expected {
            assert_eq!(env.get(key).map(String::as_str), Some(value), "{key}");
        }
    }

    #[test]
    fn named_ports_and_protocols() {
        let env = links().env("shop", true);
        assert_eq!(env["WEB_SERVICE_PORT"], "80");
        assert_eq!(env["WEB_SERVICE_PORT_HTTP"], "80");
        assert_eq!(env["WEB_SERVICE_PORT_DNS"], "53");
        assert_eq!(env["WEB_PORT"], "tcp://10.0.0.12:80");
        assert_eq!(env["WEB_PORT_53_UDP"], "udp://10.0.0.12:53");
        assert_eq!(env["WEB_PORT_53_UDP_PROTO"], "udp");
        assert_eq!(env["KUBERNETES_SERVICE_HOST"], "10.43.0.1");
        assert_eq!(env["KUBERNETES_SERVICE_PORT_HTTPS"], "443");
    }

    #[test]
    fn other_namespaces_and_headless_services_are_left_out() {
        let env = links().env("shop", true);
        assert!(!env.keys().any(|k| k.starts_with("HEADLESS_")), "{env:?}");
        assert!(!env.keys().any(|k| k.starts_with("ELSEWHERE_")), "{env:?}");
    }

    /// enableServiceLinks: false keeps only the master Services'.
    #[test]
    fn links_off_keeps_the_kubernetes_service() {
        let env = links().env("shop", false);
        assert!(env.keys().all(|k| k.starts_with("KUBERNETES_")), "{env:?}");
        assert_eq!(env["KUBERNETES_PORT_443_TCP_ADDR"], "10.43.0.1");
        assert_eq!(env.len(), 8);
    }
}
