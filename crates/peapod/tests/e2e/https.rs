//! The API over HTTPS, end to end: the kubeconfig `peapod serve` writes (and `peapod
//! kubeconfig` prints) reaches it with the admin's client certificate, over HTTP/2 and
//! HTTP/1.1; anonymous clients read only /healthz; a certificate of another CA, a missing or a
//! wrong token are refused; a token added to tokens.csv works at once; every request is
//! audited; kubectl works with the kubeconfig as it is; a taken port is a clear error.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::*;
use base64::Engine;
use serde_json::Value;

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The CA, client certificate and key of a kubeconfig, written as PEM files under `dir`.
struct Credentials {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

fn credentials(kubeconfig: &str, dir: &Path) -> Credentials {
    let config: Value = serde_yaml_ng::from_str(kubeconfig).expect("kubeconfig YAML");
    let write = |name: &str, field: &Value| {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(field.as_str().expect("base64 field"))
            .unwrap();
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let user = &config["users"][0]["user"];
    Credentials {
        ca: write(
            "ca.crt",
            &config["clusters"][0]["cluster"]["certificate-authority-data"],
        ),
        cert: write("admin.crt", &user["client-certificate-data"]),
        key: write("admin.key", &user["client-key-data"]),
    }
}

struct Reply {
    /// curl's exit code: 0 when a response came, whatever its status.
    exit: i32,
    code: u16,
    http_version: String,
    body: String,
}

/// curl against `url`, trusting `ca`, with extra `args`.
fn curl(ca: &Path, url: &str, args: &[&str]) -> Reply {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code} %{http_version}"])
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("running curl");
    let stdout = text(&out.stdout);
    let (body, trailer) = stdout.rsplit_once('\n').unwrap_or(("", &stdout));
    let mut trailer = trailer.split_whitespace();
    Reply {
        exit: out.status.code().unwrap_or(-1),
        code: trailer.next().and_then(|c| c.parse().ok()).unwrap_or(0),
        http_version: trailer.next().unwrap_or_default().to_string(),
        body: body.to_string(),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn the_api_over_https_authenticates_every_request() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut agent = Agent::start_with_env(&[("PEAPOD_API_LISTEN", &listen)]);
    let data = agent.path().join("var/lib/peapod");
    let kubeconfig_path = data.join("kubeconfig.yaml");
    let kubeconfig = std::fs::read_to_string(&kubeconfig_path).expect("the admin kubeconfig");
    assert_eq!(mode(&kubeconfig_path), 0o600);
    assert_eq!(
        agent.ok(&["kubeconfig"]),
        kubeconfig,
        "peapod kubeconfig prints it"
    );
    assert!(
        kubeconfig.contains(&format!("server: https://127.0.0.1:{port}\n")),
        "{kubeconfig}"
    );
    let dir = tempfile::tempdir().unwrap();
    let admin = credentials(&kubeconfig, dir.path());
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    let pods = url("/api/v1/namespaces/default/pods");

    let cert = admin.cert.to_str().unwrap();
    let key = admin.key.to_str().unwrap();
    for version in ["--http2", "--http1.1"] {
        let listed = curl(&admin.ca, &pods, &[version, "--cert", cert, "--key", key]);
        assert_eq!(listed.code, 200, "{version}: {}", listed.body);
        let list: Value = serde_json::from_str(&listed.body).unwrap();
        assert_eq!(list["kind"], "PodList");
        let expected = if version == "--http2" { "2" } else { "1.1" };
        assert_eq!(listed.http_version, expected, "ALPN");
    }

    let anonymous = curl(&admin.ca, &pods, &[]);
    assert_eq!(anonymous.code, 401);
    let status: Value = serde_json::from_str(&anonymous.body).unwrap();
    assert_eq!(
        status,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
    );

    refuses_another_cas_certificate(&admin.ca, &pods);
    accepts_tokens_of_the_token_file(&data.join("tokens.csv"), &admin.ca, &pods);
    kubectl_reads_the_api(&kubeconfig_path);

    let log = without_colours(&agent.agent_log());
    let audited = |user: &str, code: u16| {
        log.lines().any(|line| {
            line.contains("peapod::audit")
                && line.contains(&format!("user=\"{user}\""))
                && line.contains("path=\"/api/v1/namespaces/default/pods\"")
                && line.contains(&format!("code={code}"))
        })
    };
    assert!(
        audited("system:admin", 200),
        "audit of the admin's list:\n{log}"
    );
    assert!(audited("tester", 200), "audit of the token's list:\n{log}");
    assert!(
        audited("system:anonymous", 401),
        "audit of the refusal:\n{log}"
    );

    agent.kill_and_restart();
    let again = std::fs::read_to_string(&kubeconfig_path).unwrap();
    assert_eq!(
        again, kubeconfig,
        "a restart keeps the CA and the certificates"
    );
    let listed = curl(&admin.ca, &pods, &["--cert", cert, "--key", key]);
    assert_eq!(listed.code, 200, "after a restart: {}", listed.body);

    // kube's system:public-info-viewer: anonymous clients may read the health paths.
    for path in ["/healthz", "/livez", "/readyz"] {
        let health = curl(&admin.ca, &url(path), &[]);
        assert_eq!(
            (health.code, health.body.as_str()),
            (200, "ok"),
            "anonymous {path}"
        );
    }
}

/// A client certificate of another CA gets no further than the TLS handshake (or a 401).
fn refuses_another_cas_certificate(ca: &Path, pods: &str) {
    let other = tempfile::tempdir().unwrap();
    let names = peapod::certs::ServingNames {
        node_name: "elsewhere".into(),
        addresses: vec![],
        cluster_domain: "cluster.local".into(),
        service_ip: "10.43.0.1".parse().unwrap(),
    };
    let foreign = peapod::certs::Pki::load_or_create(other.path(), &names).unwrap();
    let cert = other.path().join("foreign.crt");
    let key = other.path().join("foreign.key");
    std::fs::write(&cert, &foreign.admin.cert_pem).unwrap();
    std::fs::write(&key, &foreign.admin.key_pem).unwrap();
    let args = [
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ];
    let refused = curl(ca, pods, &args);
    assert!(
        refused.exit != 0 || refused.code == 401,
        "another CA's certificate was accepted: {} {}",
        refused.code,
        refused.body
    );
}

/// A token appended to tokens.csv authenticates at once; others get 401.
fn accepts_tokens_of_the_token_file(tokens: &Path, ca: &Path, pods: &str) {
    assert_eq!(std::fs::read_to_string(tokens).unwrap(), "", "made empty");
    assert_eq!(mode(tokens), 0o600);
    let bearer = |token: &str| format!("Authorization: Bearer {token}");
    assert_eq!(curl(ca, pods, &["-H", &bearer("s3cret")]).code, 401);
    std::fs::write(tokens, "s3cret,tester,1001,\"system:masters,dev\"\n").unwrap();
    let listed = curl(ca, pods, &["-H", &bearer("s3cret")]);
    assert_eq!(listed.code, 200, "{}", listed.body);
    assert_eq!(curl(ca, pods, &["-H", &bearer("s3cre")]).code, 401);
}

/// kubectl, with nothing but the kubeconfig, reads the API.
fn kubectl_reads_the_api(kubeconfig: &Path) {
    if Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_err()
    {
        eprintln!("kubectl is not installed: skipping its check");
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "--raw", "/healthz"])
        .env("KUBECACHEDIR", cache.path())
        .stdin(Stdio::null())
        .output()
        .expect("running kubectl");
    assert!(out.status.success(), "kubectl: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "ok");
}

#[test]
fn a_taken_port_stops_the_agent_with_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(peapod_bin())
        .arg("serve")
        .env("PEAPOD_ROOT", root.path())
        .env("PEAPOD_BRIDGE", "peh-unused")
        .env("PEAPOD_API_LISTEN", &addr)
        .stdin(Stdio::null())
        .output()
        .expect("running peapod serve");
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("error: listening on {addr}: ")),
        "{stderr}"
    );
    assert!(
        !Path::new("/sys/class/net/peh-unused").exists(),
        "nothing on the host was changed"
    );
}
