//! The cluster DNS under dnsperf: the A records of 1000 Services asked of peapod's DNS at the
//! bridge's gateway for 30 s, then of dnsmasq serving the same names from a hosts file on
//! 127.0.0.1, with the same query file and load.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{create_service, fresh_agent, gateway, log_of, missing, service, Peer, TIMEOUT};
use crate::{Agent, Options};

const NAMES: usize = 1000;
const SECONDS: u32 = 30;
const DNSMASQ_PORT: u16 = 15353;
/// dnsperf's load: clients (source ports), threads and queries in flight, the same for both.
const DNSPERF_LOAD: [&str; 6] = ["-c", "8", "-T", "2", "-q", "500"];

pub(super) fn run(options: &Options) -> Result<()> {
    println!(
        "  DNS: dnsperf, A records of {NAMES} Services for {SECONDS} s ({})",
        DNSPERF_LOAD.join(" ")
    );
    if let Some(skipped) = missing("dnsperf") {
        println!("{skipped}");
        return Ok(());
    }
    let work = tempfile::Builder::new()
        .prefix("peapod-bench-dns-")
        .tempdir()?;
    // dnsmasq reads its hosts file as the unprivileged user it becomes.
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755))?;
    let queries = work.path().join("queries");
    let hosts = work.path().join("hosts");
    fresh_agent(options, |agent| {
        let last = write_names(agent, &queries, &hosts)?;
        let server = SocketAddr::from((gateway(), 53));
        wait_answer(server, &last)?;
        print_figures("peapod DNS at the gateway", &dnsperf(server, &queries)?);
        Ok(())
    })?;
    if let Some(skipped) = missing("dnsmasq") {
        println!("{skipped}");
        return Ok(());
    }
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, DNSMASQ_PORT));
    let _dnsmasq = dnsmasq(work.path(), &hosts)?;
    let last = format!("svc-{}.default.svc.cluster.local", NAMES - 1);
    wait_answer(server, &last)?;
    print_figures(
        "dnsmasq (same names, --addn-hosts)",
        &dnsperf(server, &queries)?,
    );
    Ok(())
}

/// Creates the Services and writes dnsperf's query file and dnsmasq's hosts file of their
/// names; returns the last name.
fn write_names(agent: &Agent, queries: &Path, hosts: &Path) -> Result<String> {
    let mut query_lines = String::new();
    let mut host_lines = String::new();
    let mut last = String::new();
    for i in 0..NAMES {
        let name = format!("svc-{i}");
        let ip = create_service(agent, &service(&name, None))?;
        last = format!("{name}.default.svc.cluster.local");
        query_lines.push_str(&format!("{last} A\n"));
        host_lines.push_str(&format!("{ip} {last}\n"));
    }
    std::fs::write(queries, query_lines)?;
    std::fs::write(hosts, host_lines)?;
    Ok(last)
}

fn dnsmasq(dir: &Path, hosts: &Path) -> Result<Peer> {
    let log = dir.join("dnsmasq.log");
    let child = Command::new("dnsmasq")
        .arg("--keep-in-foreground")
        .arg("--conf-file=/dev/null")
        .args(["--no-resolv", "--no-hosts", "--bind-interfaces"])
        .arg(format!("--addn-hosts={}", hosts.display()))
        .arg("--listen-address=127.0.0.1")
        .arg(format!("--port={DNSMASQ_PORT}"))
        .arg("--cache-size=10000")
        .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting dnsmasq")?;
    let mut peer = Peer { child };
    std::thread::sleep(Duration::from_millis(200));
    if let Ok(Some(status)) = peer.child.try_wait() {
        bail!("dnsmasq exited ({status}): {}", log_of(&log));
    }
    Ok(peer)
}

/// dnsperf's summary lines for `server`.
fn dnsperf(server: SocketAddr, queries: &Path) -> Result<String> {
    let output = Command::new("dnsperf")
        .args([
            "-s",
            &server.ip().to_string(),
            "-p",
            &server.port().to_string(),
        ])
        .arg("-d")
        .arg(queries)
        .args(["-l", &SECONDS.to_string()])
        .args(DNSPERF_LOAD)
        .stderr(Stdio::inherit())
        .output()
        .context("running dnsperf")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("dnsperf against {server} failed: {text}");
    }
    Ok(text)
}

/// Queries per second, lost queries and the average latency from dnsperf's summary.
fn print_figures(label: &str, summary: &str) {
    let field = |name: &str| {
        summary
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    println!(
        "    {label}: {} q/s, completed {}, lost {}, average latency {} s",
        field("Queries per second:"),
        field("Queries completed:"),
        field("Queries lost:"),
        field("Average Latency (s):")
    );
}

/// Waits until `server` answers `name` with an address.
fn wait_answer(server: SocketAddr, name: &str) -> Result<()> {
    let started = Instant::now();
    while !answers(server, name) {
        if started.elapsed() > TIMEOUT {
            bail!("{server} does not answer {name}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Whether `server` answers an A query for `name` with NOERROR and at least one record.
fn answers(server: SocketAddr, name: &str) -> bool {
    let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
        return false;
    };
    let _ = socket.set_read_timeout(Some(Duration::from_millis(500)));
    // ID, flags (recursion desired), one question.
    let mut query = vec![0x50, 0x50, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        query.push(label.len() as u8);
        query.extend_from_slice(label.as_bytes());
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    let mut response = [0u8; 512];
    match socket
        .send_to(&query, server)
        .and_then(|_| socket.recv(&mut response))
    {
        Ok(read) if read >= 12 => {
            response[3] & 0x0f == 0 && u16::from_be_bytes([response[6], response[7]]) > 0
        }
        _ => false,
    }
}
