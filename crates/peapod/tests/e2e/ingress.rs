//! S21 (issue 16, item 6) as a user lives it with the real kubectl and curl: two busybox
//! httpd Deployments behind Services, reached through the agent's ingress controller by path
//! (fan-out, Exact against Prefix), by name-based virtual host and by a default backend;
//! TLS from a `kubectl create secret tls` Secret checked with curl against the test's CA, a
//! replaced Secret served at once, a bad one reported on its Ingress (the host falling back
//! to the fake certificate), HTTP redirected to HTTPS; the ADDRESS column filled; the
//! routes gone with their Ingresses (404); then nothing of it left.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::kubectl::{free_port, Kubectl};
use crate::common::*;

const WAIT: Duration = Duration::from_secs(30);

/// Deployment and Service `name`: busybox httpd answering its name at /, /<name>/ and
/// /exact, ready once it serves.
fn app(name: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}, role: ingress-test}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: busybox
        command: [sh, -c, 'mkdir -p /www/{name} && echo {name} > /www/index.html && echo {name} > /www/{name}/index.html && echo {name} > /www/exact && exec httpd -f -p 8080 -h /www']
        ports:
        - {{name: http, containerPort: 8080}}
        readinessProbe:
          httpGet: {{path: /, port: http}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  selector: {{app: {name}}}
  ports:
  - {{name: http, port: 80, targetPort: http}}
"
    )
}

const FANOUT: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: fanout
spec:
  rules:
  - host: fanout.example.com
    http:
      paths:
      - {path: /apple, pathType: Prefix, backend: {service: {name: apple, port: {name: http}}}}
      - {path: /banana, pathType: Prefix, backend: {service: {name: banana, port: {number: 80}}}}
      - {path: /exact, pathType: Exact, backend: {service: {name: apple, port: {number: 80}}}}
";

const VHOSTS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: vhosts
spec:
  ingressClassName: peapod
  rules:
  - host: apple.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: apple, port: {number: 80}}}}
  - host: banana.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: banana, port: {number: 80}}}}
";

const DEFAULT: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: fallback
spec:
  defaultBackend: {service: {name: banana, port: {number: 80}}}
";

const SECURE: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: secure
spec:
  tls:
  - {hosts: [secure.example.com], secretName: secure-tls}
  rules:
  - host: secure.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: apple, port: {number: 80}}}}
";

/// A TLS Secret holding no certificate, and an Ingress serving its host with it.
const BROKEN: &str = "apiVersion: v1
kind: Secret
metadata:
  name: broken-tls
type: kubernetes.io/tls
stringData: {tls.crt: not a certificate, tls.key: not a key}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: broken
spec:
  tls:
  - {hosts: [broken.example.com], secretName: broken-tls}
  rules:
  - host: broken.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: apple, port: {number: 80}}}}
";

/// The ingress controller's ports, and the files of the test's CA.
struct Ingress {
    http: u16,
    https: u16,
    certs: tempfile::TempDir,
}

impl Ingress {
    /// curl of `path` on `host` over plain HTTP: (status code, body).
    fn get(&self, host: &str, path: &str) -> (String, String) {
        self.curl(
            &format!("http://{host}:{}{path}", self.http),
            host,
            self.http,
        )
    }

    /// curl of `path` on `host` over HTTPS, the certificate checked against the test's CA.
    fn get_tls(&self, host: &str, path: &str) -> (String, String) {
        self.curl(
            &format!("https://{host}:{}{path}", self.https),
            host,
            self.https,
        )
    }

    fn curl(&self, url: &str, host: &str, port: u16) -> (String, String) {
        let resolve = format!("{host}:{port}:127.0.0.1");
        let ca = self.certs.path().join("ca.pem");
        let out = Command::new("curl")
            .args(["-s", "--max-time", "3", "--resolve", &resolve, "--cacert"])
            .arg(&ca)
            .args(["-w", "\n%{http_code}", url])
            .output()
            .expect("curl");
        let all = text(&out.stdout);
        let (body, code) = all.rsplit_once('\n').unwrap_or(("", &all));
        (code.trim().to_owned(), body.trim().to_owned())
    }

    /// Polls until `host` `path` answers `code` and `body`.
    fn wait(&self, tls: bool, host: &str, path: &str, code: &str, body: &str) {
        let last = poll(
            WAIT,
            Duration::from_millis(200),
            || {
                if tls {
                    self.get_tls(host, path)
                } else {
                    self.get(host, path)
                }
            },
            |(c, b)| c == code && (body.is_empty() || b == body),
        );
        assert!(
            last.0 == code && (body.is_empty() || last.1 == body),
            "{host}{path} (tls: {tls}) should answer {code} {body:?}; last: {last:?}"
        );
    }

    /// The subject of the certificate served for `host`, spaces removed (`CN=first`).
    fn served_subject(&self, host: &str) -> String {
        let script = format!(
            "openssl s_client -connect 127.0.0.1:{} -servername {host} </dev/null 2>/dev/null \
             | openssl x509 -noout -subject",
            self.https
        );
        let out = Command::new("sh").args(["-c", &script]).output().unwrap();
        text(&out.stdout).replace(' ', "")
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// A CA, and a certificate `name` for secure.example.com signed by it.
fn make_certificate(dir: &Path, name: &str) {
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=peapod-test-ca",
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:secure.example.com\n",
        )
        .unwrap();
    }
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let cert = format!("{name}.pem");
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
}

/// The Secret `secure-tls` holding certificate `name`, created or replaced.
fn apply_secret(kubectl: &Kubectl, dir: &Path, name: &str) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}.key"));
    let manifest = kubectl.ok(&[
        "create",
        "secret",
        "tls",
        "secure-tls",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--dry-run=client",
        "-o",
        "yaml",
    ]);
    kubectl.apply(&manifest);
}

fn pod_uids(kubectl: &Kubectl) -> BTreeSet<String> {
    let pods = kubectl.json(&["get", "pods", "-l", "role=ingress-test"]);
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    items
        .iter()
        .filter_map(|pod| pod["metadata"]["uid"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn s21_ingresses_route_by_path_and_host_and_serve_tls() {
    let listen = format!("127.0.0.1:{}", free_port());
    let http = free_port().to_string();
    let https = free_port().to_string();
    let agent = Agent::start_with_env(&[
        ("PEAPOD_API_LISTEN", &listen),
        ("PEAPOD_INGRESS_HTTP_PORT", &http),
        ("PEAPOD_INGRESS_HTTPS_PORT", &https),
    ]);
    let kubectl = Kubectl::for_agent(&agent);
    let ingress = Ingress {
        http: http.parse().unwrap(),
        https: https.parse().unwrap(),
        certs: tempfile::tempdir().unwrap(),
    };
    let classes = kubectl.ok(&["get", "ingressclass"]);
    assert!(
        classes.contains("peapod.io/ingress-controller"),
        "{classes}"
    );
    kubectl.apply(&app("apple"));
    kubectl.apply(&app("banana"));
    for name in ["apple", "banana"] {
        kubectl.ok(&[
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "--timeout=60s",
        ]);
    }

    let relative = FANOUT.replace("path: /exact", "path: exact");
    let refused = kubectl.run(&["apply", "-f", "-"], Some(&relative));
    let message = text(&refused.stderr);
    assert!(
        message.contains(
            "The Ingress \"fanout\" is invalid: spec.rules[0].http.paths[2].path: \
             Invalid value: \"exact\": must be an absolute path"
        ),
        "{message}"
    );
    kubectl.apply(FANOUT);
    let class = kubectl.ok(&[
        "get",
        "ingress",
        "fanout",
        "-o",
        "jsonpath={.spec.ingressClassName}",
    ]);
    assert_eq!(class.trim(), "peapod", "the default class is given");
    ingress.wait(false, "fanout.example.com", "/apple/", "200", "apple");
    ingress.wait(false, "fanout.example.com", "/banana/", "200", "banana");
    ingress.wait(false, "fanout.example.com", "/exact", "200", "apple");
    assert_eq!(ingress.get("fanout.example.com", "/exact/more").0, "404");
    assert_eq!(ingress.get("fanout.example.com", "/applepie").0, "404");
    assert_eq!(ingress.get("nobody.example.com", "/").0, "404");

    kubectl.apply(VHOSTS);
    ingress.wait(false, "apple.example.com", "/", "200", "apple");
    ingress.wait(false, "banana.example.com", "/", "200", "banana");
    kubectl.apply(DEFAULT);
    ingress.wait(false, "nobody.example.com", "/", "200", "banana");

    let address = poll(
        WAIT,
        Duration::from_millis(200),
        || {
            kubectl.ok(&[
                "get",
                "ingress",
                "fanout",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].ip}",
            ])
        },
        |ip| !ip.trim().is_empty(),
    );
    let table = kubectl.ok(&["get", "ingress", "fanout"]);
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..5],
        [
            "fanout",
            "peapod",
            "fanout.example.com",
            address.trim(),
            "80"
        ],
        "{table}"
    );

    make_certificate(ingress.certs.path(), "first");
    apply_secret(&kubectl, ingress.certs.path(), "first");
    kubectl.apply(SECURE);
    ingress.wait(true, "secure.example.com", "/", "200", "apple");
    assert!(ingress
        .served_subject("secure.example.com")
        .contains("CN=first"));
    assert_eq!(
        ingress.get("secure.example.com", "/x").0,
        "308",
        "HTTP goes to HTTPS"
    );
    let table = kubectl.ok(&["get", "ingress", "secure"]);
    assert!(table.contains("80, 443"), "{table}");
    let fake = ingress.served_subject("other.example.com");
    assert!(
        fake.contains("KubernetesIngressControllerFakeCertificate"),
        "{fake}"
    );

    make_certificate(ingress.certs.path(), "second");
    apply_secret(&kubectl, ingress.certs.path(), "second");
    wait_until(WAIT, "the replaced certificate", || {
        ingress
            .served_subject("secure.example.com")
            .contains("CN=second")
    });
    ingress.wait(true, "secure.example.com", "/", "200", "apple");

    kubectl.apply(BROKEN);
    wait_until(WAIT, "the bad Secret's event", || {
        let events = kubectl.ok(&["get", "events", "-o", "json"]);
        events.contains("InvalidTLSSecret") && events.contains("default/broken-tls")
    });
    let fake = ingress.served_subject("broken.example.com");
    assert!(
        fake.contains("KubernetesIngressControllerFakeCertificate"),
        "{fake}"
    );

    kubectl.ok(&["delete", "ingress", "fanout"]);
    ingress.wait(false, "fanout.example.com", "/", "200", "banana");
    kubectl.ok(&[
        "delete", "ingress", "fallback", "vhosts", "secure", "broken",
    ]);
    ingress.wait(false, "fanout.example.com", "/apple/", "404", "");
    ingress.wait(false, "apple.example.com", "/", "404", "");

    let uids = pod_uids(&kubectl);
    kubectl.ok(&["delete", "deployment", "apple", "banana"]);
    kubectl.ok(&["delete", "service", "apple", "banana"]);
    kubectl.ok(&["delete", "secret", "secure-tls", "broken-tls"]);
    wait_until(Duration::from_secs(30), "the pods to go", || {
        pod_uids(&kubectl).is_empty()
    });
    for uid in &uids {
        agent.leak_check(uid);
    }
}

#[test]
fn a_taken_or_bad_ingress_port_leaves_the_agent_running() {
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let agent = Agent::start_with_env(&[
        ("PEAPOD_INGRESS_HTTP_PORT", &port),
        ("PEAPOD_INGRESS_HTTPS_PORT", "https"),
    ]);
    wait_until(WAIT, "both listeners' errors in the log", || {
        let log = agent.agent_log();
        log.contains("the ingress controller cannot listen for http")
            && log.contains("PEAPOD_INGRESS_HTTPS_PORT=\"https\" is neither a port number")
    });
    let pods = agent.cli(&["get", "pods"]);
    assert!(
        pods.status.success(),
        "the agent still serves: {}",
        text(&pods.stderr)
    );
    drop(taken);
}
