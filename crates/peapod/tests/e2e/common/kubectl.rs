//! The real kubectl against a test agent: the agent started with HTTPS on a free port, and
//! kubectl driven with nothing but the kubeconfig the agent wrote.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{text, wait_until, Agent};

/// kubectl with the agent's admin kubeconfig and a private discovery cache.
pub struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
    /// Extra environment of every run (`set_env`).
    env: Vec<(String, String)>,
}

impl Kubectl {
    /// The kubectl on the PATH.
    pub fn for_agent(agent: &Agent) -> Kubectl {
        Kubectl::with_binary(agent, PathBuf::from("kubectl"))
    }

    /// The kubectl at `binary` (another version than the PATH's).
    pub fn with_binary(agent: &Agent, binary: PathBuf) -> Kubectl {
        let kubeconfig = agent.path().join("var/lib/peapod/kubeconfig.yaml");
        wait_until(Duration::from_secs(10), "the kubeconfig", || {
            kubeconfig.exists()
        });
        Kubectl {
            binary,
            kubeconfig,
            cache: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable of every later run (e.g.
    /// `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` for the SPDY transport).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// kubectl with `args`, ready to run: environment and redirections are the caller's.
    /// The cache is given both ways: kubectl before 1.27 reads no KUBECACHEDIR.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .env("KUBECACHEDIR", self.cache.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs kubectl with `input` (any bytes, any size) on stdin, written from another thread
    /// while the output is read (a command echoing its input cannot deadlock), and closed at
    /// its end. A kubectl still running after `timeout` is killed and fails the test.
    pub fn run_input(&self, args: &[&str], input: &[u8], timeout: Duration) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            // kubectl may stop reading (it failed): the test judges by its output and status.
            let _ = stdin.write_all(&input);
        });
        let pid = child.id() as i32;
        let (done, finished) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if finished.recv_timeout(timeout).is_err() {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                return true;
            }
            false
        });
        let out = child.wait_with_output().expect("running kubectl");
        let _ = done.send(());
        let _ = writer.join();
        assert!(
            !watchdog.join().unwrap(),
            "kubectl {} did not finish within {timeout:?}; stdout: {}\nstderr: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout[..out.stdout.len().min(2000)]),
            text(&out.stderr)
        );
        out
    }

    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(args);
        command
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
    start_with_binary(PathBuf::from("kubectl"))
}

/// An agent serving HTTPS on a free loopback port, and the kubectl at `binary` for it.
pub fn start_with_binary(binary: PathBuf) -> (Agent, Kubectl) {
    let listen = format!("127.0.0.1:{}", free_port());
    let agent = Agent::start_with_env(&[("PEAPOD_API_LISTEN", &listen)]);
    let kubectl = Kubectl::with_binary(&agent, binary);
    (agent, kubectl)
}

/// Where scripts/install-deps.sh extracts Debian 12's kubectl 1.20.
pub const DEFAULT_KUBECTL_1_20: &str = "/opt/peapod/kubectl-1.20/usr/bin/kubectl";

/// Debian's kubectl 1.20, at `$PEAPOD_KUBECTL_1_20` or [`DEFAULT_KUBECTL_1_20`], if it is there.
pub fn kubectl_1_20() -> Option<PathBuf> {
    let binary = std::env::var_os("PEAPOD_KUBECTL_1_20")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_KUBECTL_1_20));
    binary.is_file().then_some(binary)
}

/// Who drives a streaming verb (exec, attach, cp, port-forward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    /// kubectl 1.32 as it is: WebSockets (port-forward tunnels SPDY in one).
    Default,
    /// kubectl 1.32 with `KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` and
    /// `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`: SPDY.
    Spdy,
    /// Debian's kubectl 1.20: SPDY only.
    Kubectl120,
}

/// An agent serving HTTPS and kubectl for `client`; `None` (the test skips) when the client is
/// kubectl 1.20 and it is not installed.
pub fn start_for(client: Client) -> Option<(Agent, Kubectl)> {
    let binary = match client {
        Client::Kubectl120 => match kubectl_1_20() {
            Some(binary) => binary,
            None => {
                eprintln!("skipped: kubectl 1.20 is not installed (scripts/install-deps.sh)");
                return None;
            }
        },
        _ => PathBuf::from("kubectl"),
    };
    let (agent, mut kubectl) = start_with_binary(binary);
    if client == Client::Spdy {
        kubectl.set_env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
        kubectl.set_env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
    }
    Some((agent, kubectl))
}

/// One test per [`Client`] of a scenario `fn(Client)`, named as given.
#[macro_export]
macro_rules! per_client {
    ($scenario:ident: $default:ident, $spdy:ident, $kubectl_1_20:ident) => {
        #[test]
        fn $default() {
            $scenario(Client::Default);
        }

        #[test]
        fn $spdy() {
            $scenario(Client::Spdy);
        }

        #[test]
        fn $kubectl_1_20() {
            $scenario(Client::Kubectl120);
        }
    };
}

impl Kubectl {
    /// Starts kubectl with `args` and leaves it running (`get -w`, `logs -f`, `wait`), its
    /// output collected as it comes.
    pub fn start(&self, args: &[&str]) -> Running {
        self.start_with(args, Stdio::null())
    }

    /// `start` with kubectl's stdin a pipe the caller writes (and closes by dropping).
    pub fn start_with_stdin(&self, args: &[&str]) -> (Running, std::process::ChildStdin) {
        let mut running = self.start_with(args, Stdio::piped());
        let stdin = running.child.stdin.take().unwrap();
        (running, stdin)
    }

    fn start_with(&self, args: &[&str], stdin: Stdio) -> Running {
        let mut child = self
            .command(args)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        let collect = |stream: Box<dyn std::io::Read + Send>| {
            let sink = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let seen = sink.clone();
            let reader = std::thread::spawn(move || {
                use std::io::Read;
                let mut stream = stream;
                let mut buffer = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buffer) {
                    seen.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            });
            (sink, reader)
        };
        let (stdout, out_reader) = collect(Box::new(child.stdout.take().unwrap()));
        let (stderr, err_reader) = collect(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            stdout,
            stderr,
            readers: vec![out_reader, err_reader],
        }
    }
}

/// `kubectl get <kind> -w --output-watch-events -o json`: every change, kept as it comes.
pub struct Watch(Running);

impl Watch {
    /// Watches what `kubectl get <what>` lists, e.g. `["pods", "-l", "app=web"]`.
    pub fn start(kubectl: &Kubectl, what: &[&str]) -> Watch {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend(["-w", "--output-watch-events", "-o", "json"]);
        Watch(kubectl.start(&args))
    }

    /// Watches the pods labelled `app=<app>`.
    pub fn pods(kubectl: &Kubectl, app: &str) -> Watch {
        Watch::start(kubectl, &["pods", "-l", &format!("app={app}")])
    }

    /// The objects seen so far, one a change, in order.
    pub fn objects(&self) -> Vec<(String, Value)> {
        let out = self.0.stdout();
        serde_json::Deserializer::from_str(&out)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .map(|e| {
                (
                    e["type"].as_str().unwrap_or_default().to_owned(),
                    e["object"].clone(),
                )
            })
            .collect()
    }

    /// The uids of every object seen.
    pub fn uids(&self) -> BTreeSet<String> {
        self.objects()
            .iter()
            .map(|(_, o)| o["metadata"]["uid"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// A kubectl left running: what it printed so far, and how it ended.
pub struct Running {
    child: std::process::Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Running {
    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `check` holds for the output so far; returns that output.
    pub fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let seen = |out: &String| check(out);
        let out = super::poll(
            Duration::from_secs(60),
            Duration::from_millis(100),
            || self.stdout(),
            seen,
        );
        assert!(
            check(&out),
            "kubectl never printed {what}; it printed:\n{out}\nand on stderr:\n{}",
            self.stderr()
        );
        out
    }

    /// `wait_for` on what kubectl printed to stderr.
    pub fn wait_for_stderr(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let seen = |err: &String| check(err);
        let err = super::poll(
            Duration::from_secs(60),
            Duration::from_millis(100),
            || self.stderr(),
            seen,
        );
        assert!(
            check(&err),
            "kubectl never printed {what} on stderr; it printed:\n{err}\nand on stdout:\n{}",
            self.stdout()
        );
        err
    }

    /// kubectl's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kubectl's exit status if it has exited, without waiting.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for kubectl to exit by itself (`timeout` at most): its status, stdout, stderr.
    pub fn finish(mut self, timeout: Duration) -> (std::process::ExitStatus, String, String) {
        let mut status = None;
        super::wait_until(timeout, "kubectl to exit", || {
            status = self.child.try_wait().unwrap();
            status.is_some()
        });
        self.join();
        (status.unwrap(), self.stdout(), self.stderr())
    }

    /// Kills kubectl; what it printed.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.join();
        self.stdout()
    }

    fn join(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
