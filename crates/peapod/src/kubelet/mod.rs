//! The kubelet of peapod: watches the pods in the store, runs one [`worker`] per pod, and on
//! start removes what belongs to pods that no longer exist.

pub mod backoff;
pub mod events;
pub mod eviction;
pub mod flight;
pub mod hooks;
pub mod image_gc;
pub mod images;
pub mod node_status;
pub mod pod_cgroup;
pub mod policy;
pub mod probe_workers;
pub mod prober;
pub mod sandbox;
pub mod scheduler;
pub mod status;
pub mod termination;
pub mod worker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use peapod_image::ImageStore;
use peapod_store::{Store, WatchEventType};
use tokio::sync::mpsc;

use crate::paths::Paths;

/// What every pod worker shares.
pub struct Context {
    pub store: Store,
    /// The image store, for what needs no pull (listing, bundles, removal).
    pub images: ImageStore,
    /// Pulls and EnsureImageExists over the same store.
    pub image_manager: images::ImageManager,
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

    /// Runs until the store's watch ends, with the eviction manager beside it.
    pub async fn run(self: Arc<Self>, eviction: eviction::EvictionPolicy) {
        let kubelet = Arc::downgrade(&self);
        let manager = tokio::spawn(eviction::run(self.ctx.clone(), eviction, move |uid| {
            if let Some(kubelet) = kubelet.upgrade() {
                kubelet.wake(uid);
            }
        }));
        self.watch_pods().await;
        manager.abort();
    }

    /// Wakes the worker of pod `uid`, if it has one.
    fn wake(&self, uid: &str) {
        if let Some(tx) = self.workers.lock().expect("worker map lock").get(uid) {
            let _ = tx.send(());
        }
    }

    async fn watch_pods(self: &Arc<Self>) {
        loop {
            let (pods, _, mut watch) = match self.ctx.store.list_watch::<Pod>(None) {
                Ok(listed) => listed,
                Err(err) => {
                    tracing::error!(%err, "listing pods");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            self.ctx.scheduler.restore(&pods);
            self.remove_orphans(&pods).await;
            for pod in &pods {
                self.poke(pod);
            }
            while let Some(event) = watch.next().await {
                let Ok(event) = event else { break };
                if event.kind == WatchEventType::Deleted {
                    continue;
                }
                if let Ok(pod) = serde_json::from_value::<Pod>(event.object) {
                    self.poke(&pod);
                }
            }
        }
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

    /// Sandboxes, network, directories, logs and cgroups of pods the store no longer has.
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
