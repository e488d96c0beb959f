//! ConfigMaps and Secrets in pods (issue 14):
//! - update latency: one pod mounts ConfigMap `live`; each round changes its value and times
//!   until the file under the pod's volume directory (what the container's bind mount shows)
//!   holds the new value: from `kubectl apply -f` as a whole command when kubectl is installed,
//!   and from a PUT over the agent's socket;
//! - at rest: N pods, each mounting 3 ConfigMaps and 3 Secrets, Running; the agent's CPU over
//!   the window must not differ from idle pods' (watch-driven, nothing polls the volumes).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::api::call;
use crate::{report, which, Agent, Options};

const NAMESPACE: &str = "/api/v1/namespaces/default";
const ROUNDS: usize = 50;
/// How long one update may take to reach the file before the run fails.
const REACH_TIMEOUT: Duration = Duration::from_secs(30);
/// The ConfigMaps and the Secrets each pod of the at-rest case mounts.
pub(crate) const MOUNTED_PER_KIND: usize = 3;

/// Runs the update-latency benchmark with its own agent and prints the figures.
pub(crate) fn run(options: &Options) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-config-")
        .tempdir()?;
    let agent = Agent::start(options, root.path())?;
    put(&agent, "configmaps", &config_map("live", "0"))?;
    let pod = reader_pod();
    agent.apply(&pod)?;
    let file = mounted_file(&agent, root.path())?;
    wait_for_content(&file, "0")?;

    println!("peapod: a ConfigMap update reaching the file mounted in a running pod");
    let mut over_socket = Vec::new();
    for round in 1..=ROUNDS {
        let value = format!("socket-{round}");
        let started = Instant::now();
        put(&agent, "configmaps/live", &config_map("live", &value))?;
        wait_for_content(&file, &value)?;
        over_socket.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    report(
        "PUT over the socket -> new content in the file",
        &mut over_socket,
    );
    if which("kubectl") {
        let mut whole = kubectl_rounds(root.path(), &file)?;
        report(
            "kubectl apply -f (whole command) -> new content in the file",
            &mut whole,
        );
    } else {
        println!("  kubectl not installed: `kubectl apply` not timed");
    }
    // Pods outlive their agent: the reader goes before the agent stops.
    agent.delete_all(&["reader".to_owned()], 1, root.path())?;
    Ok(())
}

/// `kubectl apply -f` of a changed ConfigMap, timed from the command's start.
fn kubectl_rounds(root: &Path, file: &Path) -> Result<Vec<f64>> {
    let kubeconfig = root.join("var/lib/peapod/kubeconfig.yaml");
    let cache = tempfile::tempdir()?;
    let manifest = cache.path().join("live.json");
    let mut samples = Vec::new();
    for round in 1..=ROUNDS {
        let value = format!("kubectl-{round}");
        std::fs::write(&manifest, config_map("live", &value).to_string())?;
        let started = Instant::now();
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("apply")
            .arg("-f")
            .arg(&manifest)
            .env("KUBECACHEDIR", cache.path())
            .stdout(Stdio::null())
            .output()?;
        if !out.status.success() {
            bail!("kubectl apply: {}", String::from_utf8_lossy(&out.stderr));
        }
        wait_for_content(file, &value)?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(samples)
}

/// Creates (or, for a path naming one object, replaces) an object in the default namespace.
fn put(agent: &Agent, path: &str, object: &Value) -> Result<()> {
    let method = if path.contains('/') { "PUT" } else { "POST" };
    let url = format!("{NAMESPACE}/{path}");
    let (code, body) = call(
        &agent.socket,
        method,
        &url,
        "application/json",
        &object.to_string(),
    )?;
    if !(200..300).contains(&code) {
        bail!("{method} {url}: {code} {body}");
    }
    Ok(())
}

pub(crate) fn config_map(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
           "data": {"value": value}})
}

pub(crate) fn secret(name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
           "stringData": {"value": value}})
}

/// Creates the ConfigMaps `config-0..` and Secrets `secret-0..` the at-rest pods mount.
pub(crate) fn create_mounted_objects(agent: &Agent) -> Result<()> {
    for i in 0..MOUNTED_PER_KIND {
        put(
            agent,
            "configmaps",
            &config_map(&format!("config-{i}"), "v"),
        )?;
        put(agent, "secrets", &secret(&format!("secret-{i}"), "v"))?;
    }
    Ok(())
}

/// The volumes and mounts of an at-rest pod: every ConfigMap and Secret of
/// `create_mounted_objects`.
pub(crate) fn mounted_volumes() -> (Vec<Value>, Vec<Value>) {
    let mut volumes = Vec::new();
    let mut mounts = Vec::new();
    for i in 0..MOUNTED_PER_KIND {
        volumes.push(
            json!({"name": format!("config-{i}"), "configMap": {"name": format!("config-{i}")}}),
        );
        volumes.push(
            json!({"name": format!("secret-{i}"), "secret": {"secretName": format!("secret-{i}")}}),
        );
        mounts.push(json!({"name": format!("config-{i}"), "mountPath": format!("/config/{i}")}));
        mounts.push(json!({"name": format!("secret-{i}"), "mountPath": format!("/secret/{i}")}));
    }
    (volumes, mounts)
}

fn reader_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "reader", "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "sleep",
                "image": "busybox",
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
                "volumeMounts": [{"name": "live", "mountPath": "/config"}],
            }],
            "volumes": [{"name": "live", "configMap": {"name": "live"}}],
        },
    })
}

/// The `value` file of the reader pod's volume on the host, once the pod has a uid.
fn mounted_file(agent: &Agent, root: &Path) -> Result<PathBuf> {
    let deadline = Instant::now() + REACH_TIMEOUT;
    loop {
        let pods = agent.pods()?;
        let uid = pods
            .iter()
            .find(|p| p["metadata"]["name"] == "reader")
            .and_then(|p| p["metadata"]["uid"].as_str().map(str::to_owned));
        if let Some(uid) = uid {
            let dir = root.join("var/lib/peapod/pods").join(&uid);
            if let Some(file) = find_value_file(&dir) {
                return Ok(file);
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the reader pod's ConfigMap volume never appeared under {}",
                root.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `volumes/kubernetes.io~configmap/live/value` below a pod's data directory.
fn find_value_file(pod_dir: &Path) -> Option<PathBuf> {
    let file = pod_dir.join("volumes/kubernetes.io~configmap/live/value");
    file.exists().then_some(file)
}

fn wait_for_content(file: &Path, value: &str) -> Result<()> {
    let deadline = Instant::now() + REACH_TIMEOUT;
    loop {
        if std::fs::read_to_string(file).is_ok_and(|text| text == value) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(anyhow::anyhow!("{value:?} never reached the file"))
                .with_context(|| file.display().to_string());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}
