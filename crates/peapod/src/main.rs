use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "peapod", version, about = "Kubernetes pods on one Linux host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Client(peapod_cli::ClientCommand),
    /// Run the agent: the API on the Unix socket and over HTTPS, the kubelet, the image store.
    Serve {
        /// CrashLoopBackOff's first delay (kubelet: 10s); it doubles up to 5 minutes.
        #[arg(long, env = "PEAPOD_CRASHLOOP_BACKOFF", default_value = "10s", value_parser = parse_duration)]
        crashloop_backoff: std::time::Duration,
    },
    /// Run an agent in the foreground: apply FILE, stream its containers' logs and what holds
    /// its pods back, and delete what it applied on Ctrl-C.
    Play {
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
        #[arg(long, env = "PEAPOD_CRASHLOOP_BACKOFF", default_value = "10s", value_parser = parse_duration)]
        crashloop_backoff: std::time::Duration,
    },
    /// Print the admin kubeconfig the agent wrote for its HTTPS API.
    Kubeconfig,
    /// Print a one-time login link to the topology page the agent serves under /ui/ (as root).
    Ui {
        /// Print {"url": …} instead.
        #[arg(long)]
        json: bool,
    },
    /// Stop this PEAPOD_ROOT's agent and its pods and remove all they left on the host (as root).
    ///
    /// As k3s-uninstall.sh: stops the agent, the pods' shims and containers, unmounts what is
    /// mounted beneath the root's directories, deletes the pods' veths, the bridge and nftables
    /// table the agent recorded, its cgroups, and its run, data and pod log directories. Asks
    /// nothing and prints what it removed; a second run finds nothing left. Agents on other
    /// roots are left alone.
    Uninstall,
    /// Output the shell completion code for bash, zsh or fish, e.g.
    /// `source <(peapod completion bash)`.
    Completion(peapod_cli::CompletionArgs),
    /// The per-pod sandbox process (started by the agent).
    #[command(hide = true)]
    Shim {
        #[arg(long)]
        pod_uid: String,
        /// The pod's hostname in its own UTS namespace; absent with hostNetwork, where the
        /// shim shares the node's network and UTS namespaces.
        #[arg(long)]
        hostname: Option<String>,
        #[arg(long)]
        run_dir: PathBuf,
        #[arg(long)]
        ready_fd: Option<i32>,
    },
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        _ => return Err(format!("invalid duration {s:?}: use ms, s or m")),
    };
    Ok(std::time::Duration::from_secs_f64(seconds))
}

fn main() {
    let result = if std::env::args().nth(1).as_deref() == Some("shim") {
        shim_main()
    } else {
        run(Cli::parse())
    };
    if let Err(err) = result {
        // Every error of ours already carries its causes in its message.
        eprintln!("error: {err}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    // The agent logs what kubelet logs at its default level (starts, adoptions, restarts,
    // failed writes); client verbs only what went wrong. RUST_LOG overrides both.
    let default_level = match cli.command {
        Command::Serve { .. } | Command::Play { .. } => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // On a failed write (stderr a file on a full disk) tracing would print to stderr
        // again, and a failed print panics: the task that logged, a pod's worker, would die.
        .log_internal_errors(false)
        .init();
    match cli.command {
        Command::Client(command) => {
            let socket = peapod::paths::Paths::from_env().socket();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let code = runtime.block_on(peapod_cli::run(socket, command));
            std::process::exit(code);
        }
        Command::Serve { crashloop_backoff } => serve(crashloop_backoff),
        Command::Kubeconfig => print_kubeconfig(),
        Command::Ui { json } => ui_link(json),
        Command::Uninstall => uninstall(),
        Command::Completion(args) => {
            let script = peapod_cli::completion::script(args.shell, &mut Cli::command());
            match std::io::Write::write_all(&mut std::io::stdout(), script.as_bytes()) {
                Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                written => Ok(written?),
            }
        }
        Command::Play {
            file,
            crashloop_backoff,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            // A foreground run serves HTTPS only when asked: it must not take `serve`'s port.
            let config = agent_config(crashloop_backoff, "off")?;
            let code = runtime.block_on(peapod::play::play(config, file))?;
            std::process::exit(code);
        }
        command @ Command::Shim { .. } => run_shim(command),
    }
}

fn agent_config(
    backoff_base: std::time::Duration,
    default_api_listen: &str,
) -> anyhow::Result<peapod::agent::AgentConfig> {
    let paths = peapod::paths::Paths::from_env();
    // A bad value stops the start, as a bad flag stops kube-controller-manager's.
    peapod::controllers::podautoscaler::controller::sync_period_from_env()?;
    Ok(peapod::agent::AgentConfig {
        api_listen: peapod::agent::https::listen_from_env(default_api_listen)?,
        cluster: peapod::agent::cluster::ClusterConfig::from_env()?,
        registry: peapod_image::registry::RegistryConfig::from_env(&paths.data_dir())?,
        image_gc: peapod::kubelet::image_gc::ImageGcPolicy::from_env()?,
        policy: peapod::kubelet::policy::KubeletPolicy::from_env()?,
        eviction: peapod::kubelet::eviction::EvictionPolicy::from_env()?,
        paths,
        backoff_base,
        backoff_cap: std::time::Duration::from_secs(300),
        network: peapod_net::NetworkConfig::from_env()?,
    })
}

fn serve(backoff_base: std::time::Duration) -> anyhow::Result<()> {
    let config = agent_config(backoff_base, peapod::agent::https::DEFAULT_LISTEN)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let served = runtime.block_on(async {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("signal handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        };
        peapod::agent::serve(config, shutdown).await
    });
    // Streams cut at shutdown may leave tasks blocked on a file or a socket: never wait
    // for them (kubelet and the API server exit without draining them either).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served?;
    Ok(())
}

fn uninstall() -> anyhow::Result<()> {
    let paths = peapod::paths::Paths::from_env();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(peapod::uninstall::uninstall(&paths, &mut std::io::stdout()))?;
    Ok(())
}

fn ui_link(json: bool) -> anyhow::Result<()> {
    let socket = peapod::paths::Paths::from_env().socket();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut stdout = std::io::stdout();
    runtime.block_on(peapod::agent::ui::command::run(socket, json, &mut stdout))?;
    Ok(())
}

fn print_kubeconfig() -> anyhow::Result<()> {
    let path = peapod::paths::Paths::from_env().kubeconfig();
    match std::fs::read(&path) {
        Ok(text) => {
            std::io::Write::write_all(&mut std::io::stdout(), &text)?;
            Ok(())
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => anyhow::bail!(
            "{} does not exist: `peapod serve` writes it when it serves HTTPS (PEAPOD_API_LISTEN)",
            path.display()
        ),
        Err(err) => anyhow::bail!("reading {}: {err}", path.display()),
    }
}

/// The shim lives as long as its pod: it skips the CLI's parser and log filter so that each
/// pod costs as little memory as possible.
fn shim_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .log_internal_errors(false)
        .without_time()
        .init();
    run_shim(cli.command)
}

fn run_shim(command: Command) -> anyhow::Result<()> {
    let Command::Shim {
        pod_uid,
        hostname,
        run_dir,
        ready_fd,
    } = command
    else {
        unreachable!("run_shim is only called for the shim subcommand")
    };
    peapod::shim::run(peapod::shim::ShimOptions {
        pod_uid,
        hostname,
        run_dir,
        ready_fd,
    })?;
    Ok(())
}
