//! The kubelet of peapod, a client of the API server as k3s' embedded kubelet is: it lists and
//! watches the node's pods (and, as the scheduler, those awaiting a node), runs one [`worker`]
//! per pod, and on start removes what belongs to pods that no longer exist.

pub mod backoff;
pub mod config_objects;
pub mod downward;
pub mod environment;
pub mod events;
pub mod eviction;
pub mod flight;
pub mod hooks;
pub mod image_gc;
pub mod images;
pub mod node_status;
pub mod pod_cgroup;
pub mod pod_manager;
pub mod policy;
pub mod probe_workers;
pub mod prober;
pub mod pull_secrets;
pub mod reflector;
pub mod sandbox;
pub mod scheduler;
pub mod service_account_tokens;
pub mod service_links;
pub mod status;
pub mod status_manager;
pub mod termination;
pub mod volume_claims;
pub mod worker;

#[cfg(test)]
mod testing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use peapod_apiserver::client::LocalClient;
use peapod_image::ImageStore;
use tokio::sync::mpsc;

use crate::paths::Paths;
use reflector::{Delta, Reflector};

/// Where the kubelet's pods are listed and watched.
const PODS: &str = "/api/v1/pods";
/// Where the kubelet watches its Node.
const NODES: &str = "/api/v1/nodes";
const NAMESPACES: &str = "/api/v1/namespaces";

/// What every pod worker shares.
pub struct Context {
    /// The kubelet's client of the API server, as the node's user.
    pub client: LocalClient,
    /// The pods as the kubelet's watches (and its own writes) last showed them.
    pub pods: pod_manager::PodManager,
    pub recorder: events::Recorder,
    /// The image store, for what needs no pull (listing, bundles, removal).
    pub images: ImageStore,
    /// Pulls and EnsureImageExists over the same store (shared with the image API).
    pub image_manager: Arc<images::ImageManager>,
    pub paths: Paths,
    pub node_name: String,
    pub host_ip: String,
    pub network: peapod_net::Network,
    pub scheduler: scheduler::Scheduler,
    /// CrashLoopBackOff's first delay (kubelet: 10 s) and cap (5 min).
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Node options: pod pids limit, unsafe sysctls allowed.
    pub policy: policy::KubeletPolicy,
    /// Pods the eviction manager evicted, for their workers, and DiskPressure.
    pub evictions: eviction::Evictions,
    /// The ConfigMaps and Secrets pods consume, as the kubelet's watches show them.
    pub config: Arc<config_objects::ConfigObjects>,
    /// The node's allocatable, which a resourceFieldRef reads for a limit left unset.
    pub allocatable: downward::NodeAllocatable,
    /// The service account tokens of pods' projected volumes.
    pub tokens: service_account_tokens::TokenManager,
    /// The Services whose variables containers get.
    pub services: Arc<service_links::ServiceLinks>,
    /// The cluster domain and DNS Service address ClusterFirst pods resolve with.
    pub cluster: crate::agent::cluster::ClusterConfig,
}

pub struct Kubelet {
    ctx: Arc<Context>,
    workers: Mutex<HashMap<String, mpsc::UnboundedSender<()>>>,
}

impl Kubelet {
    pub fn new(ctx: Arc<Context>) -> Arc<Kubelet> {
        Arc::new(Kubelet {
            ctx,
            workers: Mutex::new(HashMap::new()),
        })
    }

    /// Runs the pod sources and their workers, with the eviction manager beside them.
    pub async fn run(self: Arc<Self>, eviction: eviction::EvictionPolicy) {
        let kubelet = Arc::downgrade(&self);
        let manager = tokio::spawn(eviction::run(self.ctx.clone(), eviction, move |uid| {
            if let Some(kubelet) = kubelet.upgrade() {
                kubelet.wake(uid);
            }
        }));
        let kubelet = Arc::downgrade(&self);
        let config = self.ctx.config.clone();
        let config = tokio::spawn(config.run(self.ctx.client.clone(), move |object| {
            if let Some(kubelet) = kubelet.upgrade() {
                kubelet.config_changed(object);
            }
        }));
        let node = tokio::spawn(watch_node(self.ctx.clone()));
        let namespaces = tokio::spawn(watch_namespaces(self.ctx.clone()));
        let ctx = self.ctx.clone();
        let services = tokio::spawn(async move { ctx.services.run(ctx.client.clone()).await });
        let budgets = tokio::spawn(scheduler::budgets::watch(self.ctx.clone()));
        self.watch_pods().await;
        manager.abort();
        config.abort();
        node.abort();
        namespaces.abort();
        services.abort();
        budgets.abort();
    }

    /// Wakes the workers of the pods that consume `object`, which changed.
    fn config_changed(&self, object: &config_objects::ObjectRef) {
        for pod in self.ctx.pods.pods() {
            if config_objects::references(&pod).contains(object) {
                let uid = uid_of(&pod);
                self.ctx.config.mark_stale(&uid);
                self.wake(&uid);
            }
        }
    }

    /// Wakes the worker of pod `uid`, if it has one.
    fn wake(&self, uid: &str) {
        if let Some(tx) = self.workers.lock().expect("worker map lock").get(uid) {
            let _ = tx.send(());
        }
    }

    /// The pod sources: the node's pods (`spec.nodeName=<node>`, the kubelet's) and those
    /// awaiting a node (`spec.nodeName=`, the scheduler's). Workers start once both listed, so
    /// that the ports of bound pods are held before a pending pod asks for them.
    async fn watch_pods(self: &Arc<Self>) {
        let mut sources = tokio::task::JoinSet::new();
        let (tx, mut deltas) = mpsc::unbounded_channel();
        for source in [Source::Node, Source::Unscheduled] {
            let selector = match source {
                Source::Node => format!("spec.nodeName={}", self.ctx.node_name),
                Source::Unscheduled => "spec.nodeName=".to_owned(),
            };
            let mut reflector = Reflector::new(self.ctx.client.clone(), PODS, &selector);
            let tx = tx.clone();
            sources.spawn(async move {
                loop {
                    if tx.send((source, reflector.next().await)).is_err() {
                        return;
                    }
                }
            });
        }
        let mut listed = [false, false];
        while let Some((source, delta)) = deltas.recv().await {
            let relisted = matches!(delta, Delta::Listed(_));
            let touched = self.apply(source, delta).await;
            let synced = listed.iter().all(|l| *l);
            listed[source as usize] |= relisted;
            if !listed.iter().all(|l| *l) {
                continue;
            }
            let pods = self.ctx.pods.pods();
            if !synced {
                self.ctx.scheduler.restore(&pods);
            }
            if relisted {
                self.remove_orphans(&pods).await;
            }
            if !synced {
                // A container's env or volumes may name a ConfigMap or Secret: not before
                // they are known.
                self.ctx.config.wait_synced().await;
                // KUBERNETES_SERVICE_HOST must not be missing after a restart.
                self.ctx.services.wait_synced().await;
                pods.iter().for_each(|pod| self.poke(pod));
                continue;
            }
            for (uid, pod) in touched {
                match pod {
                    Some(pod) => {
                        // A finished pod no longer counts on the node (kube-scheduler's
                        // informer drops Succeeded and Failed pods).
                        if scheduler::is_bound(&pod) && scheduler::is_terminal(&pod) {
                            self.ctx.scheduler.release(&uid);
                        }
                        self.poke(&pod)
                    }
                    None => self.wake(&uid),
                }
            }
        }
    }

    /// Takes one delta into the pod manager; returns the pods it touched (None: gone).
    async fn apply(&self, source: Source, delta: Delta) -> Vec<(String, Option<Pod>)> {
        let pods = &self.ctx.pods;
        match delta {
            Delta::Changed(object) => decode(object)
                .filter(|pod| pods.update(pod.clone()))
                .map(|pod| vec![(uid_of(&pod), Some(pod))])
                .unwrap_or_default(),
            // A pod leaving the scheduler's selection was bound: the node's source has it.
            Delta::Deleted(object) => match decode(object) {
                Some(pod) if source == Source::Unscheduled && scheduler::is_bound(&pod) => {
                    Vec::new()
                }
                Some(pod) => {
                    pods.remove(&uid_of(&pod));
                    vec![(uid_of(&pod), None)]
                }
                None => Vec::new(),
            },
            Delta::Listed(objects) => self.apply_list(source, objects).await,
        }
    }

    /// A (re)list: every pod listed is taken; one held from this source but not listed any
    /// more is read again, as it may have moved to the other source rather than gone.
    async fn apply_list(
        &self,
        source: Source,
        objects: Vec<serde_json::Value>,
    ) -> Vec<(String, Option<Pod>)> {
        let pods = &self.ctx.pods;
        let listed: Vec<Pod> = objects.into_iter().filter_map(decode).collect();
        let missing: Vec<Pod> = pods
            .pods()
            .into_iter()
            .filter(|held| source.holds(held))
            .filter(|held| !listed.iter().any(|p| p.metadata.uid == held.metadata.uid))
            .collect();
        let mut touched: Vec<(String, Option<Pod>)> = listed
            .into_iter()
            .filter(|pod| pods.update(pod.clone()))
            .map(|pod| (uid_of(&pod), Some(pod)))
            .collect();
        for held in missing {
            let uid = uid_of(&held);
            let path = status_manager::pod_path(&held);
            let now = self.ctx.client.get(&path).await.ok().and_then(decode);
            match now.filter(|pod| pod.metadata.uid == held.metadata.uid) {
                Some(pod) if pods.update(pod.clone()) => touched.push((uid, Some(pod))),
                Some(_) => {}
                None => {
                    pods.remove(&uid);
                    touched.push((uid, None));
                }
            }
        }
        touched
    }

    /// Wakes the pod's worker, starting one if it has none.
    fn poke(self: &Arc<Self>, pod: &Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let mut workers = self.workers.lock().expect("worker map lock");
        if let Some(tx) = workers.get(&uid) {
            if tx.send(()).is_ok() {
                return;
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        workers.insert(uid.clone(), tx);
        let worker = worker::Worker::new(self.ctx.clone(), pod, rx);
        let kubelet = self.clone();
        tokio::spawn(async move {
            worker.run().await;
            kubelet.ctx.scheduler.release(&uid);
            kubelet
                .workers
                .lock()
                .expect("worker map lock")
                .remove(&uid);
        });
    }

    /// Sandboxes, network, directories, logs and cgroups of pods the API no longer has.
    async fn remove_orphans(&self, pods: &[Pod]) {
        let live: Vec<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        let mut uids: Vec<String> = Vec::new();
        for root in [
            self.ctx.paths.pods_run_root(),
            self.ctx.paths.data_dir().join("pods"),
        ] {
            if let Ok(entries) = std::fs::read_dir(root) {
                uids.extend(
                    entries
                        .flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned()),
                );
            }
        }
        if let Ok(entries) = std::fs::read_dir(self.ctx.paths.pod_logs_root()) {
            uids.extend(entries.flatten().filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .rsplit('_')
                    .next()
                    .map(str::to_string)
            }));
        }
        uids.sort();
        uids.dedup();
        for uid in uids.iter().filter(|u| !live.contains(&u.as_str())) {
            tracing::info!(uid, "removing leftovers of a deleted pod");
            sandbox::stop_shim(&self.ctx, uid).await;
            sandbox::remove_files(&self.ctx.paths, uid);
        }
        let live: std::collections::HashSet<String> =
            live.iter().map(|uid| uid.to_string()).collect();
        if let Err(err) = self.ctx.network.remove_stale(&live).await {
            tracing::warn!(%err, "releasing the network of deleted pods");
        }
    }
}

/// Feeds the scheduler this node's Node object as the API shows it (labels, taints, cordon,
/// allocatable), as kubelet's and kube-scheduler's node informers do.
async fn watch_node(ctx: Arc<Context>) {
    let selector = format!("metadata.name={}", ctx.node_name);
    let mut reflector = Reflector::new(ctx.client.clone(), NODES, &selector);
    let decode_node = |object| serde_json::from_value::<Node>(object).ok();
    loop {
        let node = match reflector.next().await {
            Delta::Listed(objects) => objects.into_iter().find_map(decode_node),
            Delta::Changed(object) => decode_node(object),
            Delta::Deleted(_) => None,
        };
        ctx.scheduler.set_node(node);
    }
}

/// Feeds the scheduler the namespaces' labels, which pod affinity terms may select by
/// (kube-scheduler's namespace informer).
async fn watch_namespaces(ctx: Arc<Context>) {
    let mut reflector = Reflector::new(ctx.client.clone(), NAMESPACES, "");
    let labels_of = |object: &serde_json::Value| {
        let name = object.pointer("/metadata/name")?.as_str()?.to_owned();
        let labels = object.pointer("/metadata/labels").cloned();
        let labels = labels.and_then(|l| serde_json::from_value(l).ok());
        Some((name, labels.unwrap_or_default()))
    };
    loop {
        match reflector.next().await {
            Delta::Listed(objects) => {
                for (name, labels) in objects.iter().filter_map(labels_of) {
                    ctx.scheduler.set_namespace(&name, Some(labels));
                }
            }
            Delta::Changed(object) => {
                if let Some((name, labels)) = labels_of(&object) {
                    ctx.scheduler.set_namespace(&name, Some(labels));
                }
            }
            Delta::Deleted(object) => {
                if let Some((name, _)) = labels_of(&object) {
                    ctx.scheduler.set_namespace(&name, None);
                }
            }
        }
    }
}

/// One of the kubelet's two pod sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Node = 0,
    Unscheduled = 1,
}

impl Source {
    /// Whether a pod held belongs to this source's selection.
    fn holds(self, pod: &Pod) -> bool {
        scheduler::is_bound(pod) == (self == Source::Node)
    }
}

/// Every pod, as the API lists them (for image GC).
pub async fn list_pods(
    client: &LocalClient,
) -> Result<Vec<Pod>, peapod_apiserver::status::ApiError> {
    Ok(client
        .list(PODS)
        .await?
        .into_iter()
        .filter_map(decode)
        .collect())
}

fn decode(object: serde_json::Value) -> Option<Pod> {
    serde_json::from_value(object)
        .map_err(|err| tracing::warn!(%err, "decoding a pod from the API"))
        .ok()
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

pub use peapod_api::qos::qos_class;

/// Go's `time.Duration.String()` of `d` truncated to milliseconds, as kubelet's messages print
/// it: "523ms", "1.234s", "1m20s", "5m0s".
pub fn format_go_duration(d: Duration) -> String {
    peapod_printers::go_duration(Duration::from_millis(d.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(format_go_duration(Duration::from_secs(10)), "10s");
        assert_eq!(format_go_duration(Duration::from_secs(80)), "1m20s");
        assert_eq!(format_go_duration(Duration::from_secs(300)), "5m0s");
        let ms = Duration::from_millis;
        assert_eq!(format_go_duration(ms(0)), "0s");
        assert_eq!(format_go_duration(Duration::from_micros(1500)), "1ms");
        assert_eq!(format_go_duration(ms(523)), "523ms");
        assert_eq!(format_go_duration(ms(1000)), "1s");
        assert_eq!(format_go_duration(ms(1234)), "1.234s");
        assert_eq!(format_go_duration(ms(1230)), "1.23s");
        assert_eq!(format_go_duration(ms(62_500)), "1m2.5s");
        assert_eq!(format_go_duration(ms(120_000)), "2m0s");
        assert_eq!(format_go_duration(ms(3_723_000)), "1h2m3s");
    }
}
