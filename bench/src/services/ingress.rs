//! The ingress under wrk: Host bench.test routed by peapod's ingress to a Service of two
//! backend pods, then nginx started by the bench as the same reverse proxy to the same two pod
//! IPs (an upstream with keepalive); requests per second and p99. The backends are the host's
//! nginx run in busybox pods (the host's /usr mounted read-only), so that they keep connections
//! alive and the proxies, not a process per request, are what is measured.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{
    create_service, fresh_agent, log_of, missing, send, service, start_pods, Peer,
    INGRESS_HTTP_PORT, IO_TIMEOUT, TIMEOUT,
};
use crate::{Agent, Options};

const HOST: &str = "bench.test";
const NGINX_PORT: u16 = 18081;
const INGRESSES: &str = "/apis/networking.k8s.io/v1/namespaces/default/ingresses";
const WRK_ARGS: [&str; 4] = ["-t2", "-c64", "-d15s", "--latency"];

pub(super) fn run(options: &Options) -> Result<()> {
    println!(
        "  Ingress: wrk {} -H 'Host: {HOST}' /index.html, two nginx pods (keep-alive) behind",
        WRK_ARGS.join(" ")
    );
    for tool in ["wrk", "nginx"] {
        if let Some(skipped) = missing(tool) {
            println!("{skipped}");
            return Ok(());
        }
    }
    fresh_agent(options, |agent| {
        let pods = start_pods(agent, &[backend("ing-0"), backend("ing-1")])?;
        route(agent)?;
        let front = SocketAddr::from((Ipv4Addr::LOCALHOST, INGRESS_HTTP_PORT));
        wait_ok(front)?;
        println!("    peapod ingress: {}", wrk(front)?);
        let dir = tempfile::Builder::new()
            .prefix("peapod-bench-nginx-")
            .tempdir()?;
        let _nginx = nginx(dir.path(), &pods)?;
        let front = SocketAddr::from((Ipv4Addr::LOCALHOST, NGINX_PORT));
        wait_ok(front)?;
        println!("    nginx (same pods, upstream keepalive): {}", wrk(front)?);
        Ok(())
    })
}

/// The nginx configuration of a backend pod: /www on 8080, connections kept alive.
const BACKEND_CONFIG: &str = "daemon off; worker_processes 1; pid /tmp/nginx.pid; \
     error_log stderr; events { worker_connections 1024; } \
     http { access_log off; keepalive_requests 1000000; client_body_temp_path /tmp/body; \
     proxy_temp_path /tmp/proxy; fastcgi_temp_path /tmp/fastcgi; uwsgi_temp_path /tmp/uwsgi; \
     scgi_temp_path /tmp/scgi; server { listen 8080; root /www; } }";

/// A backend pod labelled `app: ing`: the host's nginx (its /usr, and the /lib and /lib64
/// that are links into it on Debian) serving /index.html on 8080.
fn backend(name: &str) -> Value {
    let script = format!(
        "mkdir -p /www && echo hello from {name} > /www/index.html && \
         echo '{BACKEND_CONFIG}' > /tmp/nginx.conf && \
         exec /usr/sbin/nginx -e stderr -p /tmp -c /tmp/nginx.conf"
    );
    let host = |path: &str| json!({"name": path.trim_start_matches('/').replace('/', "-"), "hostPath": {"path": path, "type": "Directory"}});
    let mount = |path: &str, at: &str| json!({"name": path.trim_start_matches('/').replace('/', "-"), "mountPath": at, "readOnly": true});
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "ing"}},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "volumes": [host("/usr"), host("/usr/lib"), host("/usr/lib64")],
            "containers": [{
                "name": "web", "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [
                    mount("/usr", "/usr"), mount("/usr/lib", "/lib"), mount("/usr/lib64", "/lib64"),
                ],
            }],
        },
    })
}

/// The Service `ing` and an Ingress of class peapod sending Host bench.test to it.
fn route(agent: &Agent) -> Result<()> {
    create_service(agent, &service("ing", Some("ing")))?;
    let backend = json!({"service": {"name": "ing", "port": {"number": 80}}});
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "bench"},
        "spec": {
            "ingressClassName": "peapod",
            "rules": [{"host": HOST, "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend},
            ]}}],
        },
    });
    send(agent, "POST", INGRESSES, &ingress)
}

/// Waits until a GET of /index.html with Host bench.test at `front` answers 200.
fn wait_ok(front: SocketAddr) -> Result<()> {
    let started = Instant::now();
    loop {
        let status = status_line(front).unwrap_or_default();
        if status.split_whitespace().nth(1) == Some("200") {
            return Ok(());
        }
        if started.elapsed() > TIMEOUT {
            bail!("{front} does not route {HOST}: {status:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn status_line(front: SocketAddr) -> Result<String> {
    let mut stream = TcpStream::connect_timeout(&front, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    write!(
        stream,
        "GET /index.html HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response.lines().next().unwrap_or("").to_string())
}

/// nginx as a reverse proxy on 127.0.0.1:NGINX_PORT to the pods, its prefix, configuration
/// and logs in `dir`.
fn nginx(dir: &Path, pods: &[Ipv4Addr]) -> Result<Peer> {
    let servers: String = pods
        .iter()
        .map(|ip| format!("    server {ip}:8080;\n"))
        .collect();
    let temp = |name: &str| format!("{}_temp_path {}/{name};\n", name, dir.display());
    let config = format!(
        "daemon off;\nworker_processes auto;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  {client}  {proxy}  {fastcgi}  {uwsgi}  {scgi}\
         upstream pods {{\n{servers}    keepalive 320;\n  }}\n\
         server {{\n    listen 127.0.0.1:{NGINX_PORT};\n    server_name {HOST};\n\
         location / {{\n      proxy_pass http://pods;\n      proxy_http_version 1.1;\n\
         proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n    }}\n  }}\n}}\n",
        dir = dir.display(),
        client = temp("client_body"),
        proxy = temp("proxy"),
        fastcgi = temp("fastcgi"),
        uwsgi = temp("uwsgi"),
        scgi = temp("scgi"),
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, config)?;
    let log = dir.join("stderr.log");
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&file)
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting nginx")?;
    let mut peer = Peer { child };
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = peer.child.try_wait() {
        bail!(
            "nginx exited ({status}): {}{}",
            log_of(&log),
            log_of(&dir.join("error.log"))
        );
    }
    Ok(peer)
}

/// wrk's requests per second and p99 at `front`, with its error lines if any.
fn wrk(front: SocketAddr) -> Result<String> {
    let output = Command::new("wrk")
        .args(WRK_ARGS)
        .args(["-H", &format!("Host: {HOST}")])
        .arg(format!("http://{front}/index.html"))
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!("wrk against {front} failed: {text}");
    }
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .map(|v| v.trim().to_string())
    };
    let mut figures = format!(
        "{} requests/s, p99 {}",
        value("Requests/sec:").unwrap_or_else(|| "?".into()),
        value("99%").unwrap_or_else(|| "?".into())
    );
    for errors in ["Non-2xx or 3xx responses:", "Socket errors:"] {
        if let Some(count) = value(errors) {
            figures.push_str(&format!(", {errors} {count}"));
        }
    }
    Ok(figures)
}
