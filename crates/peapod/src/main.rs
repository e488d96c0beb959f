use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "peapod", version, about = "Kubernetes pods on one Linux host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The per-pod sandbox process (started by the agent).
    #[command(hide = true)]
    Shim {
        #[arg(long)]
        pod_uid: String,
        #[arg(long)]
        hostname: String,
        #[arg(long)]
        run_dir: PathBuf,
        #[arg(long)]
        ready_fd: Option<i32>,
    },
    #[command(hide = true)]
    Smoke { rootfs: PathBuf },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Shim { pod_uid, hostname, run_dir, ready_fd } => {
            peapod::shim::run(peapod::shim::ShimOptions { pod_uid, hostname, run_dir, ready_fd })?;
            Ok(())
        }
        Command::Smoke { rootfs } => smoke(rootfs),
    }
}

fn smoke(rootfs: PathBuf) -> anyhow::Result<()> {
    use peapod::shim::{client::ShimClient, launch, protocol::*};
    use peapod::runtime::spec::*;
    let rt = tokio::runtime::Runtime::new()?;
    let run_dir = PathBuf::from("/tmp/smoke/run");
    let t0 = std::time::Instant::now();
    let pid = launch::launch(&launch::LaunchSpec { pod_uid: "u1".into(), hostname: "smokepod".into(), run_dir: run_dir.clone(), share_pid: false })?;
    println!("shim pid {pid} in {:?}", t0.elapsed());
    let bundle = run_dir.join("bundle-c1");
    std::fs::create_dir_all(&bundle)?;
    let spec = ContainerSpec { args: vec!["sh".into(), "-c".into(), "echo hello from $(hostname); id; ls /; cat /proc/self/cgroup | head -3; echo err >&2; sleep 1; exit 3".into()], env: vec!["PATH=/bin".into()], cwd: "/".into(), uid: 0, gid: 0, additional_gids: vec![], no_new_privileges: false, rootfs: PathBuf::from("/tmp/smoke/merged"), share_pid: false, cgroups_path: "/peapod/u1/c1".into(), binds: vec![BindMount{ source: run_dir.join("shm"), destination: "/dev/shm".into(), read_only: false }] };
    std::fs::write(bundle.join("config.json"), serde_json::to_vec(&spec.to_oci()?)?)?;
    rt.block_on(async {
        let c = ShimClient::new(&run_dir);
        let mut w = c.watch().await?;
        let t1 = std::time::Instant::now();
        let cpid = c.create(CreateRequest { id: "c1".into(), name: "main".into(), bundle: bundle.clone(), rootfs: Overlay { lower: vec![rootfs.clone()], upper: "/tmp/smoke/upper".into(), work: "/tmp/smoke/work".into(), target: "/tmp/smoke/merged".into() }, log_path: "/tmp/smoke/log/0.log".into(), stdin: false }).await?;
        println!("created pid {cpid} in {:?}", t1.elapsed());
        c.start("c1").await?;
        println!("started in {:?}", t1.elapsed());
        let ev = w.next().await;
        println!("exit {:?}", ev);
        println!("state {:?}", c.state().await?);
        c.remove("c1").await?;
        c.shutdown().await?;
        anyhow::Ok(())
    })?;
    println!("{}", std::fs::read_to_string("/tmp/smoke/log/0.log")?);
    Ok(())
}
