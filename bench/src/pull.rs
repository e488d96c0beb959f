//! Pull benchmark: a local docker-registry holding a busybox-based image with several layers of
//! incompressible data (over 100 MiB in all), pulled `--pull-runs` times by `peapod pull` into
//! a fresh agent each time (nothing cached), and by `podman pull` after `podman rmi -f` of the
//! image; reports p50 seconds and MB/s (10^6 bytes of compressed blobs) for both, and the ratio.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::registry::{big_layout, Registry};
use crate::{percentile, which, Agent, Options};

const LAYERS: usize = 4;
const LAYER_MIB: usize = 30;
const REPO_TAG: &str = "big:1";

/// Starts the registry, pushes the image, then times both pullers and prints the comparison.
pub(crate) fn run(options: &Options) -> Result<()> {
    if std::env::var_os("PEAPOD_TEST_IMAGES").is_none() {
        // The fixture finds the busybox layout it builds on through this variable.
        std::env::set_var("PEAPOD_TEST_IMAGES", &options.images);
    }
    let registry = Registry::start();
    let (_layout_dir, layout) = big_layout(LAYERS, LAYER_MIB);
    registry.push(&layout, "latest", REPO_TAG, &[]);
    let reference = format!("{}/{REPO_TAG}", registry.addr());
    let (layers, bytes) = image_size(&reference)?;
    println!(
        "pull: {reference}, {layers} layers, {:.1} MB, {} runs each",
        bytes as f64 / 1e6,
        options.pull_runs
    );

    let with_podman = which("podman");
    let mut peapod_secs = Vec::new();
    let mut podman_secs = Vec::new();
    let mut peapod_failure = None;
    for _ in 0..options.pull_runs {
        if peapod_failure.is_none() {
            match peapod_pull(&options.peapod, &reference) {
                Ok(secs) => peapod_secs.push(secs),
                Err(e) => peapod_failure = Some(e),
            }
        }
        if with_podman {
            podman_secs.push(podman_pull(&reference)?);
        }
    }
    if with_podman {
        let _ = podman(&["rmi", "-f", &reference]);
    }

    let peapod_p50 = report(
        "peapod pull (fresh agent and store)",
        &mut peapod_secs,
        bytes,
    );
    let podman_p50 = report("podman pull (after rmi -f)", &mut podman_secs, bytes);
    if let (Some(peapod), Some(podman)) = (peapod_p50, podman_p50) {
        println!("  p50 ratio podman / peapod: {:.2}x", podman / peapod);
    }
    if !with_podman {
        println!("podman: not installed; no comparison");
    }
    match peapod_failure {
        Some(e) => Err(e.context("peapod pull failed")),
        None => Ok(()),
    }
}

/// Prints p50/min/max seconds and the p50 throughput; returns the p50 (None without samples).
fn report(what: &str, samples: &mut [f64], bytes: u64) -> Option<f64> {
    if samples.is_empty() {
        println!("  {what}: no successful run");
        return None;
    }
    let p50 = percentile(samples, 50.0);
    println!(
        "  {what}: p50 {p50:.2} s ({:.1} MB/s), min {:.2} s, max {:.2} s",
        bytes as f64 / 1e6 / p50,
        samples.iter().cloned().fold(f64::INFINITY, f64::min),
        samples.iter().cloned().fold(0.0, f64::max),
    );
    Some(p50)
}

/// The number of layers and the bytes a pull transfers (config plus compressed layers), from
/// the manifest the registry serves.
fn image_size(reference: &str) -> Result<(usize, u64)> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .context("running skopeo inspect")?;
    if !out.status.success() {
        bail!(
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let manifest: Value = serde_json::from_slice(&out.stdout)?;
    let layers = manifest["layers"]
        .as_array()
        .context("the manifest has no layers")?;
    let size = |d: &Value| d["size"].as_u64().unwrap_or(0);
    let bytes = size(&manifest["config"]) + layers.iter().map(size).sum::<u64>();
    Ok((layers.len(), bytes))
}

/// Seconds `peapod pull` takes against a new agent on an empty root.
fn peapod_pull(peapod: &Path, reference: &str) -> Result<f64> {
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-pull-")
        .tempdir()?;
    let mut agent = Agent::spawn(peapod, root.path())?;
    let started = Instant::now();
    let out = Command::new(peapod)
        .args(["pull", reference])
        .env("PEAPOD_ROOT", root.path())
        .stdin(Stdio::null())
        .output();
    let secs = started.elapsed().as_secs_f64();
    agent.stop();
    let out = out.with_context(|| format!("running {} pull", peapod.display()))?;
    if !out.status.success() {
        bail!(
            "peapod pull {reference}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(secs)
}

/// Seconds `podman pull` takes once the image (and the layers only it uses) is removed.
fn podman_pull(reference: &str) -> Result<f64> {
    let _ = podman(&["rmi", "-f", reference]);
    let started = Instant::now();
    let out = podman(&["pull", "--quiet", "--tls-verify=false", reference])?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "podman pull {reference}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(secs)
}

fn podman(args: &[&str]) -> Result<std::process::Output> {
    Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running podman")
}
