//! Workloads (issue 15), each on a fresh agent:
//! - a Deployment of `--replicas` (100) `sleep` pods: from the POST to
//!   status.availableReplicas = replicas, then deleted (cascading) until no pod or shim is left;
//! - a rolling update of 20 replicas (25 % surge and unavailability): from the PATCH of the
//!   image's command to a complete rollout (observedGeneration, updated = available = replicas,
//!   the old ReplicaSet at 0);
//! - a Job of 200 completions, parallelism 20: from the POST to the Complete condition;
//! - the agent at rest with 50 single-replica Deployments against 50 bare pods, over the
//!   window: what the controllers cost while nothing changes;
//! - with podman installed, `podman kube play` of a one-replica Deployment (podman forces
//!   replicas to 1) beside peapod's one-replica Deployment.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use crate::api::call;
use crate::{podman_play, report, shim_pids, which, Agent, Options};

const APPS: &str = "/apis/apps/v1/namespaces/default/deployments";
const JOBS: &str = "/apis/batch/v1/namespaces/default/jobs";
const ROLLING_REPLICAS: i32 = 20;
const JOB_COMPLETIONS: i32 = 200;
const JOB_PARALLELISM: i32 = 20;
const AT_REST: usize = 50;
/// How often the object is read while waiting: well under the figures measured.
const POLL: Duration = Duration::from_millis(20);
const TIMEOUT: Duration = Duration::from_secs(300);

/// Runs the workload benchmarks and prints the figures.
pub(crate) fn run(options: &Options) -> Result<()> {
    println!("peapod: workloads (Deployment, rolling update, Job, controllers at rest)");
    fresh_agent(options, |agent, root| {
        let replicas = i32::try_from(options.burst)?;
        let available = deployment_available(agent, "wide", replicas)?;
        println!("  Deployment of {replicas}: {available:.0} ms from POST to {replicas} available");
        delete_all(agent, root, APPS)
    })?;
    fresh_agent(options, |agent, root| {
        let rolled = rolling_update(agent)?;
        println!("  rolling update of {ROLLING_REPLICAS} replicas: {rolled:.0} ms from PATCH to complete");
        delete_all(agent, root, APPS)
    })?;
    fresh_agent(options, |agent, root| {
        let completed = job_complete(agent)?;
        println!(
            "  Job of {JOB_COMPLETIONS} completions, parallelism {JOB_PARALLELISM}: \
             {completed:.0} ms from POST to Complete"
        );
        delete_all(agent, root, JOBS)
    })?;
    at_rest(options)?;
    single_replica(options)
}

/// Runs `body` on an agent of its own, stopped (and required to stop cleanly) afterwards.
fn fresh_agent(options: &Options, body: impl FnOnce(&Agent, &Path) -> Result<()>) -> Result<()> {
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-workloads-")
        .tempdir()?;
    let mut agent = Agent::start(options, root.path())?;
    body(&agent, root.path())?;
    agent.stop_cleanly()
}

fn deployment(name: &str, replicas: i32, command: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "app", "image": "busybox",
                                    "command": ["sh", "-c", command]}],
                },
            },
        },
    })
}

/// Milliseconds from the Deployment's POST to all its replicas available.
fn deployment_available(agent: &Agent, name: &str, replicas: i32) -> Result<f64> {
    let started = Instant::now();
    send(
        agent,
        "POST",
        APPS,
        &deployment(name, replicas, "sleep 3600"),
    )?;
    wait_until(agent, &format!("{APPS}/{name}"), |d| {
        d["status"]["availableReplicas"].as_i64() == Some(i64::from(replicas))
    })?;
    Ok(ms(started))
}

/// Milliseconds from a template change to the rollout's completion, as `kubectl rollout
/// status` judges it (and the old ReplicaSet emptied).
fn rolling_update(agent: &Agent) -> Result<f64> {
    deployment_available(agent, "rolling", ROLLING_REPLICAS)?;
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "busybox", "command": ["sh", "-c", "sleep 3601"]},
    ]}}}});
    let started = Instant::now();
    let path = format!("{APPS}/rolling");
    let (code, body) = call(
        &agent.socket,
        "PATCH",
        &path,
        "application/json",
        &patch.to_string(),
    )?;
    if code != 200 {
        bail!("PATCH {path}: {code} {body}");
    }
    let generation: Value = serde_json::from_str(&body)?;
    let generation = generation["metadata"]["generation"].as_i64();
    wait_until(agent, &path, |d| {
        let status = &d["status"];
        let replicas = Some(i64::from(ROLLING_REPLICAS));
        status["observedGeneration"].as_i64() >= generation
            && status["updatedReplicas"].as_i64() == replicas
            && status["availableReplicas"].as_i64() == replicas
            && status["replicas"].as_i64() == replicas
    })?;
    Ok(ms(started))
}

/// Milliseconds from the Job's POST to its Complete condition.
fn job_complete(agent: &Agent) -> Result<f64> {
    let job = json!({
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "many"},
        "spec": {
            "completions": JOB_COMPLETIONS,
            "parallelism": JOB_PARALLELISM,
            "template": {"spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "work", "image": "busybox", "command": ["true"]}],
            }},
        },
    });
    let started = Instant::now();
    send(agent, "POST", JOBS, &job)?;
    wait_until(agent, &format!("{JOBS}/many"), |j| {
        let conditions = j["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        conditions
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True")
    })?;
    Ok(ms(started))
}

/// The agent's CPU over the window with `AT_REST` one-replica Deployments, then with as many
/// bare pods: the difference is what the controllers cost while nothing changes.
fn at_rest(options: &Options) -> Result<()> {
    let window = options.window;
    let mut deployments = 0.0;
    fresh_agent(options, |agent, root| {
        for i in 0..AT_REST {
            send(
                agent,
                "POST",
                APPS,
                &deployment(&format!("rest-{i}"), 1, "sleep 3600"),
            )?;
        }
        for i in 0..AT_REST {
            wait_until(agent, &format!("{APPS}/rest-{i}"), |d| {
                d["status"]["availableReplicas"].as_i64() == Some(1)
            })?;
        }
        deployments = cpu_percent(agent, window);
        delete_all(agent, root, APPS)
    })?;
    let mut pods = 0.0;
    fresh_agent(options, |agent, root| {
        for i in 0..AT_REST {
            let mut pod =
                deployment(&format!("bare-{i}"), 1, "sleep 3600")["spec"]["template"].clone();
            pod["apiVersion"] = json!("v1");
            pod["kind"] = json!("Pod");
            pod["metadata"]["name"] = json!(format!("bare-{i}"));
            send(agent, "POST", "/api/v1/namespaces/default/pods", &pod)?;
        }
        wait_until_running(agent, AT_REST)?;
        pods = cpu_percent(agent, window);
        delete_all(agent, root, "/api/v1/namespaces/default/pods")
    })?;
    println!(
        "  at rest over {} s: {AT_REST} Deployments {deployments:.2} % of a core, \
         {AT_REST} bare pods {pods:.2} %",
        window.as_secs()
    );
    Ok(())
}

/// peapod's one-replica Deployment from POST to available, beside `podman kube play` of the
/// same Deployment (which returns once its container started).
fn single_replica(options: &Options) -> Result<()> {
    let runs = options.runs.min(10);
    let mut peapod = Vec::new();
    fresh_agent(options, |agent, root| {
        for run in 0..runs {
            peapod.push(deployment_available(agent, &format!("one-{run}"), 1)?);
        }
        delete_all(agent, root, APPS)
    })?;
    report(
        "peapod: one-replica Deployment, POST -> available",
        &mut peapod,
    );
    if !which("podman") {
        println!("  podman not installed: no peer figure");
        return Ok(());
    }
    let file = tempfile::Builder::new().suffix(".yaml").tempfile()?;
    let manifest = deployment("one", 1, "sleep 3600").to_string();
    std::fs::write(
        file.path(),
        manifest.replace("\"busybox\"", "\"localhost/busybox:latest\""),
    )?;
    let mut podman = (0..runs)
        .map(|_| podman_play(file.path()))
        .collect::<Result<Vec<f64>>>()?;
    report(
        "podman kube play: one-replica Deployment (returns once started)",
        &mut podman,
    );
    Ok(())
}

pub(crate) fn send(agent: &Agent, method: &str, path: &str, object: &Value) -> Result<()> {
    let (code, body) = call(
        &agent.socket,
        method,
        path,
        "application/json",
        &object.to_string(),
    )?;
    if !(200..300).contains(&code) {
        bail!("{method} {path}: {code} {body}");
    }
    Ok(())
}

/// Reads `path` every `POLL` until `done` holds; fails after `TIMEOUT`.
pub(crate) fn wait_until(agent: &Agent, path: &str, done: impl Fn(&Value) -> bool) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (code, body) = call(&agent.socket, "GET", path, "application/json", "")?;
        if code == 200 && done(&serde_json::from_str(&body)?) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{path} not done after {} s: {body}", TIMEOUT.as_secs());
        }
        std::thread::sleep(POLL);
    }
}

fn wait_until_running(agent: &Agent, count: usize) -> Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while agent
        .pods()?
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .count()
        < count
    {
        if Instant::now() > deadline {
            bail!("{count} pods not running after {} s", TIMEOUT.as_secs());
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

/// The agent's CPU over `window`, in percent of one core.
fn cpu_percent(agent: &Agent, window: Duration) -> f64 {
    let before = agent.cpu_ms();
    std::thread::sleep(window);
    (agent.cpu_ms() - before) / window.as_secs_f64() / 10.0
}

/// Deletes every object of the collection (cascading in the background, as kubectl does) and
/// waits until no pod or shim of this agent is left.
pub(crate) fn delete_all(agent: &Agent, root: &Path, collection: &str) -> Result<()> {
    let path = format!("{collection}?propagationPolicy=Background");
    let (code, body) = call(&agent.socket, "DELETE", &path, "application/json", "")?;
    if !(200..300).contains(&code) {
        bail!("DELETE {collection}: {code} {body}");
    }
    let deadline = Instant::now() + TIMEOUT;
    while !shim_pids(root).is_empty() || agent.pod_count()? > 0 {
        if Instant::now() > deadline {
            bail!(
                "pods still there {} s after deleting {collection}",
                TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

pub(crate) fn ms(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}
