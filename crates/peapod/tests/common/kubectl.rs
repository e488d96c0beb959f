//! The real kubectl against a test agent: the agent started with HTTPS on a free port, and
//! kubectl driven with nothing but the kubeconfig the agent wrote.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{text, wait_until, Agent};

/// kubectl with the agent's admin kubeconfig and a private discovery cache.
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    pub fn for_agent(agent: &Agent) -> Kubectl {
        let kubeconfig = agent.path().join("var/lib/peapod/kubeconfig.yaml");
        wait_until(Duration::from_secs(10), "the kubeconfig", || {
            kubeconfig.exists()
        });
        Kubectl {
            kubeconfig,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new("kubectl");
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("KUBECACHEDIR", self.cache.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .expect("kubectl must be installed (scripts/install-deps.sh installs it)");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().expect("running kubectl")
    }

    /// Runs kubectl and returns its stdout; fails the test on a non-zero exit.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    pub fn apply(&self, manifest: &str) -> String {
        let out = self.run(&["apply", "-f", "-"], Some(manifest));
        assert!(out.status.success(), "kubectl apply: {}", text(&out.stderr));
        text(&out.stdout)
    }

    /// `kubectl <args> -f -` with `manifest`; stdout, failing the test on a non-zero exit.
    pub fn with_manifest(&self, args: &[&str], manifest: &str) -> String {
        let mut all = args.to_vec();
        all.extend(["-f", "-"]);
        let out = self.run(&all, Some(manifest));
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            all.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert!(
            !out.status.success(),
            "kubectl {} should fail: {}",
            args.join(" "),
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).expect("kubectl -o json")
    }
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// An agent serving HTTPS on a free loopback port, and kubectl for it.
pub fn start_with_kubectl() -> (Agent, Kubectl) {
    let listen = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start_with_env(&[("PEAPOD_API_LISTEN", &listen)]);
    let kubectl = Kubectl::for_agent(&agent);
    (agent, kubectl)
}
