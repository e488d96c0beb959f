//! `peapod play -f FILE`: an agent in the foreground that applies the file, streams every
//! container's log prefixed with `[pod/container]` and, on stderr, the events that tell what
//! holds a pod back, and on Ctrl-C deletes what it applied.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use k8s_openapi::api::core::v1::Pod;
use peapod_api::object::{parse_object, Object};
use peapod_cli::pod_events;

use crate::agent::api::NodeApi;
use crate::agent::{Agent, AgentConfig};

#[derive(Parser)]
struct Verb {
    #[command(subcommand)]
    command: peapod_cli::ClientCommand,
}

fn client_command(args: &[&str]) -> peapod_cli::ClientCommand {
    let mut argv = vec!["peapod"];
    argv.extend_from_slice(args);
    Verb::parse_from(argv).command
}

/// Runs until Ctrl-C or SIGTERM; returns the process exit code: apply's or delete's when they
/// fail, else 1 when a played pod was held back (failed, or a container could not start).
pub async fn play(config: AgentConfig, file: PathBuf) -> anyhow::Result<i32> {
    let pods = pods_in(&file)?;
    let socket = config.paths.socket();
    let agent = Agent::open(config).await?;
    let ctx = agent.node_api().clone();
    let (stop_agent, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(agent.serve(async {
        let _ = stopped.await;
    }));
    let file_arg = file.to_string_lossy().to_string();
    let mut code =
        peapod_cli::run(socket.clone(), client_command(&["apply", "-f", &file_arg])).await;
    if code == 0 {
        code = follow_until_interrupt(&ctx, &socket, &pods, &file).await;
    }
    let _ = stop_agent.send(());
    serving.await??;
    Ok(code)
}

/// Streams the pods' logs and what holds them back until Ctrl-C, then deletes what `file`
/// applied.
async fn follow_until_interrupt(
    ctx: &Arc<NodeApi>,
    socket: &Path,
    pods: &[(String, String)],
    file: &Path,
) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    let streamers: Vec<_> = pods
        .iter()
        .map(|(ns, name)| {
            let (ctx, stop, ns, name) = (ctx.clone(), stop.clone(), ns.clone(), name.clone());
            std::thread::spawn(move || stream_pod_logs(&ctx, &ns, &name, stop))
        })
        .collect();
    let event_followers = follow_events(socket, pods);
    wait_for_interrupt().await;
    let held_back = report_held_back(socket, pods).await;
    stop.store(true, Ordering::SeqCst);
    eprintln!("deleting what {} applied...", file.display());
    let file_arg = file.to_string_lossy().to_string();
    let code = peapod_cli::run(
        socket.to_path_buf(),
        client_command(&["delete", "-f", &file_arg]),
    )
    .await;
    for follower in event_followers {
        follower.abort();
    }
    for streamer in streamers {
        let _ = streamer.join();
    }
    if code == 0 && held_back {
        1
    } else {
        code
    }
}

/// Prints the events that tell why a pod does not run (pulls, back-offs, warnings) on
/// stderr as the kubelet records them, one task per pod.
fn follow_events(socket: &Path, pods: &[(String, String)]) -> Vec<tokio::task::JoinHandle<()>> {
    pods.iter()
        .map(|(ns, name)| {
            let client = peapod_cli::Client::new(socket.to_path_buf());
            let (ns, name) = (ns.clone(), name.clone());
            tokio::spawn(async move {
                let followed =
                    pod_events::follow(&client, &ns, &name, |line| eprintln!("{line}")).await;
                if let Err(err) = followed {
                    tracing::debug!(pod = %name, %err, "no longer following the pod's events");
                }
            })
        })
        .collect()
}

/// Prints why each pod that is not running is held back; true when one is.
async fn report_held_back(socket: &Path, pods: &[(String, String)]) -> bool {
    let client = peapod_cli::Client::new(socket.to_path_buf());
    let mut any = false;
    for (ns, name) in pods {
        if let Ok(Some(why)) = pod_events::held_back(&client, ns, name).await {
            eprintln!("pod/{name} did not run: {why}");
            any = true;
        }
    }
    any
}

fn pods_in(file: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let bytes =
        std::fs::read(file).map_err(|e| anyhow::anyhow!("reading {}: {e}", file.display()))?;
    let documents = peapod_api::decode::decode_documents(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let mut pods = Vec::new();
    for document in &documents {
        let decoded =
            parse_object(document).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let Object::Pod(pod) = decoded.object;
        let ns = pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        pods.push((ns, pod.metadata.name.clone().unwrap_or_default()));
    }
    Ok(pods)
}

async fn wait_for_interrupt() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// Follows each container of the pod, attempt after attempt, until `stop`.
fn stream_pod_logs(ctx: &NodeApi, ns: &str, name: &str, stop: Arc<AtomicBool>) {
    let mut followers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut followed: Vec<String> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let Ok(Some(pod)) = ctx.store.get::<Pod>(ns, name) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let status = pod.status.clone().unwrap_or_default();
        let statuses = status
            .init_container_statuses
            .into_iter()
            .flatten()
            .chain(status.container_statuses.into_iter().flatten());
        for container in statuses {
            let Some(id) = container.container_id.clone() else {
                continue;
            };
            if followed.contains(&id) {
                continue;
            }
            followed.push(id);
            let path =
                ctx.paths
                    .container_log(ns, name, &uid, &container.name, container.restart_count);
            let prefix = format!("[{name}/{}] ", container.name);
            let stop = stop.clone();
            followers.push(std::thread::spawn(move || follow(&path, &prefix, &stop)));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for follower in followers {
        let _ = follower.join();
    }
}

fn follow(path: &std::path::Path, prefix: &str, stop: &AtomicBool) {
    for _ in 0..50 {
        if path.exists() || stop.load(Ordering::SeqCst) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let options = peapod_logs::ReadOptions {
        follow: true,
        ..Default::default()
    };
    let mut out = Prefixed {
        prefix: prefix.to_string(),
        pending: Vec::new(),
    };
    let _ = peapod_logs::read_log(path, &options, &mut out, &|| stop.load(Ordering::SeqCst));
}

struct Prefixed {
    prefix: String,
    pending: Vec<u8>,
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(self.prefix.as_bytes())?;
            stdout.write_all(&line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}
