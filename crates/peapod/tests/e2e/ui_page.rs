//! The topology page (issue 17) in a real headless Chromium (Debian's chromium and
//! chromium-driver, driven through fantoccini): logged in through `peapod ui`'s link or a
//! service account token, it draws the S1 pod, follows a Deployment's rollout, shows a
//! container's restart within a second of the API, streams a huge log without keeping it all,
//! shows a token without rights nothing it may not list, and catches up after its streams
//! are lost (a network change makes Chromium drop them). The login page, the pods, a
//! Deployment, a container's panel and the notes of what may not be listed pass axe-core's
//! WCAG 2.1 A and AA rules at a laptop's and a phone's width without sideways scrolling, and
//! a screen reader hears the S1 pod's IP, containers and shared volume. Each test saves
//! screenshots (target/ui-screenshots/<test>-<width>x<height>.png) and ends with the leak
//! checks, its chromedriver and chromium gone too. The browser trusts the agent's serving
//! certificate alone (its key pinned), nothing else.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use sha2::Digest;

use crate::common::kubectl::{free_port, start_with_kubectl, Kubectl};
use crate::common::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The sizes every test's screenshots are taken at: a laptop and a phone.
const SCREENS: [(u32, u32); 2] = [(1280, 800), (390, 844)];
/// axe-core, which scripts/install-deps.sh fetches from the npm registry.
const AXE: &str = "/opt/peapod/axe-core-4.10.3/axe.min.js";
/// Runs axe-core's WCAG 2.0/2.1 A and AA rules on the page (an async WebDriver script): the
/// violations, each with the elements it found, or the error that stopped the run.
const AXE_RUN: &str = "const done = arguments[arguments.length - 1];
axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
  .then((result) => done(result.violations.map((v) => ({
    rule: v.id, impact: v.impact, help: v.help,
    elements: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
  }))))
  .catch((err) => done(`axe-core failed: ${err}`));";
/// How long the page gets to show what the API already says.
const SHOWN_WITHIN: Duration = Duration::from_secs(20);
/// How often a navigation lost to a network change is tried.
const NAVIGATION_TRIES: usize = 5;
/// How long the page's scripts get to start after a load before it is loaded again.
const SCRIPTS_RUN_WITHIN: Duration = Duration::from_secs(5);
/// How long the page may take to answer (a script run through WebDriver) while a huge log
/// streams into it: it never freezes, even on a busy test machine.
const ANSWERS_WITHIN: Duration = Duration::from_secs(2);
/// How long 200000 log lines get to stream through the page on a busy test machine.
const STREAMED_WITHIN: Duration = Duration::from_secs(90);

/// Chromium under its own chromedriver, for one test; `close` ends both and checks that no
/// process of its profile is left.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    profile: tempfile::TempDir,
    origin: String,
}

/// The base64 SHA-256 of the agent's serving certificate's public key, as Chromium's
/// `--ignore-certificate-errors-spki-list` takes it: this certificate is trusted, no other.
fn serving_key_pin(agent: &Agent) -> String {
    let path = agent
        .path()
        .join("var/lib/peapod/tls/serving-kube-apiserver.crt");
    let pem = std::fs::read(&path).expect("the agent's serving certificate");
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).expect("a PEM certificate");
    let cert = pem.parse_x509().expect("an X.509 certificate");
    let digest = sha2::Sha256::digest(cert.public_key().raw);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// `https://host:port` of the agent's HTTPS listener, from its kubeconfig.
fn api_origin(agent: &Agent) -> String {
    let kubeconfig = std::fs::read_to_string(agent.path().join("var/lib/peapod/kubeconfig.yaml"))
        .expect("the admin kubeconfig");
    let server = kubeconfig
        .lines()
        .find_map(|line| line.trim().strip_prefix("server: "))
        .expect("a server in the kubeconfig");
    server.trim_end_matches('/').to_owned()
}

fn chromium_args(profile: &std::path::Path, pin: &str) -> Vec<String> {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--disable-gpu".to_owned(),
        "--disable-dev-shm-usage".to_owned(),
        "--no-first-run".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--ignore-certificate-errors-spki-list={pin}"),
        format!("--window-size={},{}", SCREENS[0].0, SCREENS[0].1),
    ];
    if nix::unistd::geteuid().is_root() {
        args.push("--no-sandbox".to_owned());
    }
    args
}

impl Browser {
    /// A browser for `agent`'s page. The suite installs chromium (scripts/install-deps.sh):
    /// without it the test fails rather than pass having checked nothing.
    fn open(agent: &Agent) -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(binary).exists(),
                "{binary} is missing: scripts/install-deps.sh installs chromium and chromium-driver"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        wait_until(Duration::from_secs(10), "chromedriver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let profile = tempfile::Builder::new()
            .prefix("peapod-ui-chromium-")
            .tempdir()
            .unwrap();
        let options = json!({ "binary": CHROMIUM, "args": chromium_args(profile.path(), &serving_key_pin(agent)) });
        let capabilities = [("goog:chromeOptions".to_owned(), options)]
            .into_iter()
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a chromium session");
        Browser {
            runtime,
            client: Some(client),
            driver,
            profile,
            origin: api_origin(agent),
        }
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the session is open")
    }

    /// Whether the last navigation ended on Chromium's error page: it drops every
    /// connection when the host's addresses change (ERR_NETWORK_CHANGED), and the agents of
    /// other tests add and remove bridges all the time.
    fn lost_navigation(&self) -> bool {
        self.eval("location.protocol") == json!("chrome-error:")
    }

    /// Opens the page at `path`, again when the navigation was lost to a network change.
    fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.origin);
        for _ in 0..NAVIGATION_TRIES {
            self.runtime
                .block_on(self.client().goto(&url))
                .unwrap_or_else(|err| panic!("opening {url}: {err}"));
            if !self.lost_navigation() {
                return;
            }
        }
        panic!("opening {url} failed {NAVIGATION_TRIES} times");
    }

    /// Logs in as the admin through the one-time link `peapod ui --json` prints (a new link
    /// when a network change lost the navigation: the code may have been used).
    fn login_with_link(&self, agent: &Agent) {
        self.log_in("the login link", || {
            let printed: Value = serde_json::from_str(&agent.ok(&["ui", "--json"])).unwrap();
            let link = printed["url"].as_str().expect("a url").to_owned();
            assert!(
                link.starts_with(&format!("{}/ui/login?code=", self.origin)),
                "{link}"
            );
            self.runtime.block_on(self.client().goto(&link)).unwrap();
        });
    }

    /// Logs in through the login form with a service account token.
    fn login_with_token(&self, token: &str) {
        self.log_in("the token login", || {
            self.goto("/ui/login");
            self.runtime.block_on(async {
                let field = self.client().find(Locator::Id("token")).await.unwrap();
                field.send_keys(token.trim()).await.unwrap();
                field.send_keys(&Key::Enter).await.unwrap();
            });
            let settled = |path: &Value| path != "/ui/login" || self.lost_navigation();
            let start = Instant::now();
            while !settled(&self.eval("location.pathname")) && start.elapsed() < SHOWN_WITHIN {
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }

    /// Runs the login `attempt` again while a network change loses its navigation, then waits
    /// for the page and its scripts.
    fn log_in(&self, what: &str, attempt: impl Fn()) {
        for _ in 0..NAVIGATION_TRIES {
            attempt();
            if !self.lost_navigation() {
                break;
            }
        }
        let after = format!("the page after {what}");
        self.wait_for(&after, "location.pathname", json!("/ui/"));
        self.scripts_started();
    }

    /// The value of a JavaScript expression in the page.
    fn eval(&self, expression: &str) -> Value {
        let script = format!("return ({expression});");
        self.runtime
            .block_on(self.client().execute(&script, vec![]))
            .unwrap_or_else(|err| panic!("evaluating {expression}: {err}"))
    }

    /// Waits until `expression` evaluates to `expected`; fails with the last value otherwise.
    fn wait_for(&self, what: &str, expression: &str, expected: Value) -> Duration {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < SHOWN_WITHIN {
            last = self.eval(expression);
            if last == expected {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let page = self.eval("[location.href, document.body.innerText.slice(0, 600)]");
        panic!("{what}: expected {expected}, last {last}; the page: {page}");
    }

    /// Loads the page again (its watches that were refused start over).
    fn reload(&self) {
        self.refresh();
        self.scripts_started();
    }

    fn refresh(&self) {
        for _ in 0..NAVIGATION_TRIES {
            self.runtime.block_on(self.client().refresh()).unwrap();
            if !self.lost_navigation() {
                return;
            }
        }
        panic!("reloading the page failed {NAVIGATION_TRIES} times");
    }

    /// Waits for the page's scripts to run (main.js says "Loading…" or draws at once), and
    /// loads it again when a network change lost the script itself: a module whose fetch
    /// failed never runs, and nothing in the page is left to retry it.
    fn scripts_started(&self) {
        let started = "document.querySelector('#status')?.textContent !== '' || document.querySelector('#topology')?.childElementCount > 0";
        for _ in 0..NAVIGATION_TRIES {
            let deadline = Instant::now() + SCRIPTS_RUN_WITHIN;
            while Instant::now() < deadline {
                if self.eval(started) == json!(true) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            self.refresh();
        }
        panic!("the page's scripts never ran in {NAVIGATION_TRIES} loads");
    }

    /// Presses `key` on the element `css` finds.
    fn press(&self, css: &str, key: Key) {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.unwrap();
            element.send_keys(&key).await.unwrap();
        });
    }

    fn click(&self, css: &str) {
        self.runtime.block_on(async {
            let element = self.client().find(Locator::Css(css)).await.unwrap();
            element.click().await.unwrap();
        });
    }

    /// Gives the page a `width`×`height` viewport, as a phone's or a laptop's (a window
    /// cannot be narrower than about 500 px).
    fn set_viewport(&self, width: u32, height: u32) {
        let metrics = json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            "mobile": width < 500,
        });
        let command = DevTools {
            command: "Emulation.setDeviceMetricsOverride",
            params: metrics,
        };
        self.runtime
            .block_on(self.client().issue_cmd(command))
            .expect("sizing the page");
    }

    /// Screenshots of the page at every size of [`SCREENS`], under target/ui-screenshots/.
    fn screenshots(&self, test: &str) {
        let dir = repo_root().join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        self.at_every_screen(|width, height| {
            let png = self.runtime.block_on(self.client().screenshot()).unwrap();
            assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
            std::fs::write(dir.join(format!("{test}-{width}x{height}.png")), png).unwrap();
        });
    }

    /// Runs `look` with the page sized as each of [`SCREENS`] in turn, then gives it the
    /// first size again.
    fn at_every_screen(&self, look: impl Fn(u32, u32)) {
        for (width, height) in SCREENS {
            self.set_viewport(width, height);
            std::thread::sleep(Duration::from_millis(300));
            look(width, height);
        }
        let (width, height) = SCREENS[0];
        self.set_viewport(width, height);
    }

    /// Checks the page as it is now with axe-core's WCAG 2.1 A and AA rules at every size of
    /// [`SCREENS`], and that nothing makes the page wider than the screen (a phone would
    /// scroll sideways). `view` names what is open, for the failure message.
    fn assert_accessible(&self, view: &str) {
        let axe = std::fs::read_to_string(AXE).unwrap_or_else(|err| {
            panic!("{AXE}: {err}: scripts/install-deps.sh installs axe-core")
        });
        self.at_every_screen(|width, height| {
            if self.eval("typeof window.axe") != json!("object") {
                self.runtime
                    .block_on(self.client().execute(&axe, vec![]))
                    .expect("loading axe-core into the page");
            }
            let violations = self
                .runtime
                .block_on(self.client().execute_async(AXE_RUN, vec![]))
                .expect("running axe-core");
            assert_eq!(
                violations,
                json!([]),
                "{view} at {width}x{height}: WCAG violations"
            );
            let widths = self.eval("[document.documentElement.scrollWidth, window.innerWidth]");
            assert!(
                widths[0].as_u64() <= widths[1].as_u64(),
                "{view} at {width}x{height}: the page is wider than the screen: {widths}"
            );
        });
    }

    /// The names a screen reader announces for the elements of `role` (Chromium's
    /// accessibility tree), in page order.
    fn accessible_names(&self, role: &str) -> Vec<String> {
        let command = DevTools {
            command: "Accessibility.getFullAXTree",
            params: json!({}),
        };
        let tree = self
            .runtime
            .block_on(self.client().issue_cmd(command))
            .expect("the accessibility tree");
        let nodes = tree["nodes"].as_array().cloned().unwrap_or_default();
        nodes
            .iter()
            .filter(|node| node["ignored"] != json!(true) && node["role"]["value"] == role)
            .filter_map(|node| node["name"]["value"].as_str().map(str::to_owned))
            .collect()
    }

    /// Ends the session and chromedriver, and checks no process of the profile is left.
    fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let profile = self.profile.path().to_string_lossy().into_owned();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = processes_naming(&profile);
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                for pid in &left {
                    unsafe { libc::kill(*pid, libc::SIGKILL) };
                }
                panic!("chromium processes {left:?} outlived their session");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for pid in processes_naming(&self.profile.path().to_string_lossy()) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A DevTools command to Chromium through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct DevTools {
    command: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for DevTools {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({ "cmd": self.command, "params": self.params });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// The processes whose command line names `text` (the browser's own profile directory).
fn processes_naming(text: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(text))
        })
        .collect()
}

/// A JavaScript expression: what the page shows of pod `name` (IP, containers with their
/// ready marks, volumes with who mounts them, the lines between them), or null while it shows
/// no such pod.
fn pod_picture(name: &str) -> String {
    format!(
        r#"(() => {{
  const pod = document.querySelector('[data-pod="{name}"]');
  if (!pod) return null;
  return {{
    ip: pod.dataset.podIp,
    containers: [...pod.querySelectorAll('[data-container]')].map((c) => `${{c.dataset.container}} ready=${{c.dataset.ready}}`),
    volumes: [...pod.querySelectorAll('[data-volume]')].map((v) => `${{v.dataset.volume}} by ${{v.dataset.mountedBy}}`),
    mountLines: pod.querySelectorAll('svg.mounts path').length,
  }};
}})()"#
    )
}

/// The values of hook attribute `attribute` on the page that start with `prefix`, in page
/// order.
fn shown(attribute: &str, prefix: &str) -> String {
    format!(
        "[...document.querySelectorAll('[{attribute}]')].map((e) => e.getAttribute('{attribute}')).filter((v) => v.startsWith('{prefix}'))"
    )
}

#[test]
fn the_s1_pod_shows_two_containers_sharing_one_volume_and_one_ip() {
    let (agent, _kubectl) = start_with_kubectl();
    let browser = Browser::open(&agent);
    let pod = agent.run_example("s1-web-content-sidecar.yaml", "example-pod");
    let ip = pod["status"]["podIP"]
        .as_str()
        .expect("a pod IP")
        .to_owned();
    let volumes: Vec<String> = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{} by backend frontend", v["name"].as_str().unwrap()))
        .collect();
    assert!(volumes.contains(&"content-volume by backend frontend".to_owned()));
    browser.login_with_link(&agent);
    browser.wait_for(
        "the S1 pod: one IP, two ready containers, the volumes both mount",
        &pod_picture("example-pod"),
        json!({
            "ip": ip,
            "containers": ["backend ready=true", "frontend ready=true"],
            "volumes": volumes,
            "mountLines": 2 * volumes.len(),
        }),
    );
    assert_eq!(
        browser.eval("document.querySelector('[data-pod=\"example-pod\"] .facts').textContent.includes('network, IPC, UTS')"),
        json!(true)
    );
    browser.screenshots("s1-pod");
    browser.assert_accessible("the S1 pod");
    assert_eq!(
        browser.accessible_names("article"),
        [format!("Pod example-pod, Running, IP {ip}, 2 containers")],
        "what a screen reader announces for the pod"
    );
    let announced = browser.accessible_names("listitem");
    for container in ["backend", "frontend"] {
        let expected = format!("container {container}: running, ready, 0 restarts, image busybox");
        assert!(announced.contains(&expected), "{expected} in {announced:?}");
    }
    assert!(
        announced
            .contains(&"Volume content-volume (emptyDir), mounted by backend, frontend".to_owned()),
        "the shared volume in {announced:?}"
    );

    browser.press("[data-pod=\"example-pod\"]", Key::Enter);
    browser.wait_for(
        "the pod's panel: its YAML and conditions",
        "[location.hash, document.querySelector('#panel .yaml')?.textContent.includes('name: example-pod'), document.querySelector('#panel .conditions')?.textContent.includes('Ready')]",
        json!(["#/ns/default/pod/example-pod", true, true]),
    );
    browser.click("[data-container=\"backend\"]");
    browser.wait_for(
        "the container's panel with its events",
        "[location.hash, document.querySelector('#panel .events')?.textContent.includes('Started')]",
        json!(["#/ns/default/pod/example-pod/container/backend", true]),
    );
    browser.screenshots("s1-container-panel");
    browser.assert_accessible("a container's panel");
    browser.press("#panel .log", Key::Escape);
    browser.wait_for(
        "Escape closes the panel and gives focus back",
        "[location.hash, document.querySelector('#panel').hidden, document.activeElement?.dataset.container]",
        json!(["#/ns/default", true, "backend"]),
    );

    agent.delete_and_check("example-pod", "1");
    browser.wait_for(
        "the deleted pod gone from the page",
        &pod_picture("example-pod"),
        Value::Null,
    );
    browser.close();
}

/// A Deployment `web` of three busybox pods that stop within a second.
const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: busybox
        command: [sleep, '3600']
";

/// The names of the ReplicaSets labelled app=web whose spec wants pods.
fn live_replica_sets(kubectl: &Kubectl) -> Vec<String> {
    let sets = kubectl.json(&["get", "rs", "-l", "app=web"]);
    sets["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|rs| rs["spec"]["replicas"].as_i64().unwrap_or_default() > 0)
        .map(|rs| rs["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn pod_uids(kubectl: &Kubectl) -> Vec<String> {
    let pods = kubectl.json(&["get", "pods", "-l", "app=web"]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pod| pod["metadata"]["uid"].as_str().unwrap().to_owned())
        .collect()
}

/// What the page shows of the Deployment `web`: its ReplicaSets and how many of its pods run
/// under each, by name.
fn deployment_picture() -> String {
    format!(
        "({{ deployment: {}, sets: {}, pods: {}.map((name) => name.split('-').slice(0, 2).join('-')) }})",
        shown("data-owner", "Deployment/web"),
        shown("data-owner", "ReplicaSet/web-"),
        shown("data-pod", "web-"),
    )
}

#[test]
fn a_deployment_shows_its_replica_set_and_pods_and_a_rollout_shows_the_new_replica_set() {
    let (agent, kubectl) = start_with_kubectl();
    let browser = Browser::open(&agent);
    browser.login_with_link(&agent);
    kubectl.apply(DEPLOYMENT);
    wait_until(Duration::from_secs(60), "a ReplicaSet", || {
        live_replica_sets(&kubectl).len() == 1
    });
    let first = live_replica_sets(&kubectl).remove(0);
    browser.wait_for(
        "the Deployment, its ReplicaSet and three pods",
        &deployment_picture(),
        json!({
            "deployment": ["Deployment/web"],
            "sets": [format!("ReplicaSet/{first}")],
            "pods": [&first, &first, &first],
        }),
    );
    browser.wait_for(
        "lines from the Deployment to its ReplicaSet and from it to its pods",
        "document.querySelectorAll('svg.edges path.owns').length >= 4",
        json!(true),
    );
    browser.screenshots("deployment");
    browser.assert_accessible("a Deployment");
    let mut seen = pod_uids(&kubectl);

    kubectl.ok(&["set", "image", "deploy/web", "app=busybox:latest"]);
    wait_until(Duration::from_secs(60), "the new ReplicaSet", || {
        live_replica_sets(&kubectl).iter().any(|rs| rs != &first)
    });
    let second = live_replica_sets(&kubectl)
        .into_iter()
        .find(|rs| rs != &first)
        .unwrap();
    browser.wait_for(
        "the new ReplicaSet beside the old one",
        &format!(
            "{}.includes('ReplicaSet/{second}')",
            shown("data-owner", "ReplicaSet/web-")
        ),
        json!(true),
    );
    wait_until(Duration::from_secs(60), "the rollout", || {
        seen.extend(pod_uids(&kubectl));
        let status = kubectl.run(&["rollout", "status", "deploy/web", "--timeout=1s"], None);
        text(&status.stdout).contains("successfully rolled out")
    });
    browser.wait_for(
        "only the new ReplicaSet and its three pods once the rollout is done",
        &deployment_picture(),
        json!({
            "deployment": ["Deployment/web"],
            "sets": [format!("ReplicaSet/{second}")],
            "pods": [&second, &second, &second],
        }),
    );
    browser.screenshots("deployment-rolled-out");

    seen.extend(pod_uids(&kubectl));
    seen.sort();
    seen.dedup();
    kubectl.ok(&["delete", "deploy", "web"]);
    wait_until(Duration::from_secs(60), "the pods to go", || {
        pod_uids(&kubectl).is_empty()
    });
    browser.wait_for("an empty page", &shown("data-pod", "web-"), json!([]));
    for uid in &seen {
        agent.leak_check(uid);
    }
    browser.close();
}

/// A pod whose `app` sleeps (and is killed) and whose `chatty` writes 200000 lines at once
/// when /tmp/go appears.
const RESTARTING: &str = "apiVersion: v1
kind: Pod
metadata:
  name: restarting
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: busybox
    command: [sleep, '3600']
  - name: chatty
    image: busybox
    command: [sh, -c, 'echo waiting; until [ -e /tmp/go ]; do sleep 0.1; done; seq 1 200000; sleep 3600']
";

/// Milliseconds since the epoch, as the page's `Date.now()` counts them.
fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// When the API first said container `app` of pod `restarting` restarted: a watch of the pod
/// through the agent's socket, each event stamped as it arrived.
fn api_restart_time(agent: &Agent) -> impl FnOnce() -> u64 {
    let mut curl = Command::new("curl")
        .args(["-sN", "--unix-socket"])
        .arg(agent.socket())
        .arg("http://localhost/api/v1/namespaces/default/pods?watch=true&fieldSelector=metadata.name=restarting")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("running curl");
    let stdout = curl.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let event: Value = serde_json::from_str(&line).unwrap_or_default();
            let statuses = event["object"]["status"]["containerStatuses"]
                .as_array()
                .cloned();
            let restarted = statuses
                .unwrap_or_default()
                .iter()
                .any(|s| s["name"] == "app" && s["restartCount"].as_i64() >= Some(1));
            if restarted {
                return Some(epoch_millis(SystemTime::now()));
            }
        }
        None
    });
    move || {
        let seen = reader.join().unwrap();
        let _ = curl.kill();
        let _ = curl.wait();
        seen.expect("the API reported the restart")
    }
}

#[test]
fn a_killed_container_shows_its_restart_within_a_second_and_a_huge_log_stays_bounded() {
    let (agent, kubectl) = start_with_kubectl();
    let browser = Browser::open(&agent);
    kubectl.apply(RESTARTING);
    let pod = agent.wait_running("restarting");
    browser.login_with_link(&agent);
    let app = "[data-pod=\"restarting\"] [data-container=\"app\"]";
    browser.wait_for(
        "the running container",
        &format!("document.querySelector('{app}')?.dataset.restarts"),
        json!("0"),
    );
    browser.eval(&format!(
        "(() => {{ window.restartShownAt = null; new MutationObserver(() => {{
            if (!window.restartShownAt && document.querySelector('{app}')?.dataset.restarts === '1') window.restartShownAt = Date.now();
        }}).observe(document.querySelector('#topology'), {{ subtree: true, childList: true, attributes: true }}); return true; }})()"
    ));

    let restart_seen = api_restart_time(&agent);
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();
    for pid in container_pids(&uid, &container_id_of(&pod, "app")) {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let api_said = restart_seen();
    browser.wait_for(
        "the restart on the page",
        &format!("document.querySelector('{app}')?.dataset.restarts"),
        json!("1"),
    );
    let page_said = browser
        .eval("window.restartShownAt")
        .as_u64()
        .expect("the page's time");
    eprintln!(
        "the page showed the restart {} ms after the API's watch did",
        page_said as i64 - api_said as i64
    );
    assert!(
        page_said < api_said + 1000,
        "the page showed the restart {} ms after the API said it",
        page_said as i64 - api_said as i64
    );

    browser.click("[data-pod=\"restarting\"] [data-container=\"chatty\"]");
    let lines = "(() => { const log = document.querySelector('#panel .log'); return log && [log.childElementCount, log.lastElementChild?.textContent]; })()";
    browser.wait_for("the log so far", lines, json!([1, "waiting"]));
    let (code, _, err) = agent.exec("restarting", "chatty", &["touch", "/tmp/go"]);
    assert_eq!(code, 0, "{err}");
    let mut slowest = Duration::ZERO;
    let streamed = Instant::now();
    while browser.eval(lines) != json!([5000, "200000"]) {
        assert!(
            streamed.elapsed() < STREAMED_WITHIN,
            "the log's last 5000 lines: {}",
            browser.eval(lines)
        );
        let asked = Instant::now();
        browser.eval("document.querySelectorAll('[data-container]').length");
        slowest = slowest.max(asked.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "200000 log lines streamed in {:?}; the page answered within {slowest:?}",
        streamed.elapsed()
    );
    assert!(
        slowest < ANSWERS_WITHIN,
        "the page took {slowest:?} to answer while the log streamed"
    );
    browser.screenshots("restart-and-log");

    agent.delete_and_check("restarting", "1");
    browser.close();
}

#[test]
fn a_token_without_rights_sees_nothing_it_may_not_list() {
    let (agent, kubectl) = start_with_kubectl();
    let browser = Browser::open(&agent);
    kubectl.apply(CLIENT_POD);
    agent.wait_running("client");
    kubectl.ok(&["create", "service", "clusterip", "hidden", "--tcp=80:8080"]);
    kubectl.ok(&["create", "serviceaccount", "viewer"]);
    let token = kubectl.ok(&["create", "token", "viewer"]);

    browser.goto("/ui/login");
    browser.assert_accessible("the login page");
    browser.login_with_token(&token);
    browser.wait_for(
        "nothing shown, and a quiet note on what may not be listed",
        "[document.querySelector('#user').textContent, document.querySelectorAll('[data-pod], [data-service]').length, document.querySelector('#notes').textContent.includes('pods, replicasets')]",
        json!(["system:serviceaccount:default:viewer", 0, true]),
    );
    browser.screenshots("token-without-rights");
    browser.assert_accessible("the notes of what may not be listed");

    kubectl.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
    ]);
    kubectl.ok(&[
        "create",
        "rolebinding",
        "viewer-pods",
        "--role=pod-reader",
        "--serviceaccount=default:viewer",
    ]);
    browser.reload();
    browser.wait_for(
        "the pods it may list, still no Service",
        &format!("[{}, {}]", shown("data-pod", ""), shown("data-service", "")),
        json!([["client"], []]),
    );
    browser.screenshots("token-with-pods-only");

    let service = kubectl.json(&["get", "service", "hidden"]);
    kubectl.ok(&["delete", "service", "hidden"]);
    agent.service_leak_check(service["spec"]["clusterIP"].as_str().unwrap(), &[]);
    agent.delete_and_check("client", "1");
    browser.close();
}

/// The admin's GETs of the collection of pods in `default` so far (the page's lists and
/// watches: the test itself reads pods by name only), from the audit log.
fn pod_collection_reads(agent: &Agent) -> usize {
    let log = without_colours(&agent.agent_log());
    log.lines()
        .filter(|line| {
            line.contains("peapod::audit")
                && line.contains("user=\"system:admin\"")
                && line.contains("method=GET")
                && line.contains("path=\"/api/v1/namespaces/default/pods\"")
        })
        .count()
}

/// A bridge of the test's own with a TEST-NET-2 address: Chromium drops every connection
/// when the host's addresses change (ERR_NETWORK_CHANGED), as when an agent's bridge comes or
/// goes. (This kernel has no dummy links.)
struct AddedLink(String);

impl AddedLink {
    fn add() -> AddedLink {
        let link = AddedLink(format!("pdm{}", std::process::id() % 1_000_000));
        let address = format!("198.51.100.{}/32", std::process::id() % 250 + 1);
        for args in [
            vec!["link", "add", &link.0, "type", "bridge"],
            vec!["link", "set", &link.0, "up"],
            vec!["addr", "add", &address, "dev", &link.0],
        ] {
            let status = Command::new("ip").args(&args).status().expect("running ip");
            assert!(status.success(), "ip {args:?}");
        }
        link
    }
}

impl Drop for AddedLink {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).status();
    }
}

#[test]
fn a_lost_watch_reconnects_and_catches_up_with_what_changed_meanwhile() {
    let (agent, kubectl) = start_with_kubectl();
    let browser = Browser::open(&agent);
    kubectl.apply(CLIENT_POD);
    let first = agent.wait_running("client");
    browser.login_with_link(&agent);
    let shown = "[!!document.querySelector('[data-pod=\"client\"]'), !!document.querySelector('[data-pod=\"second\"]')]";
    browser.wait_for("the first pod", shown, json!([true, false]));
    let reads = pod_collection_reads(&agent);

    let link = AddedLink::add();
    kubectl.apply(&CLIENT_POD.replace("name: client", "name: second"));
    kubectl.ok(&["delete", "pod", "client", "--wait=false"]);
    browser.wait_for(
        "the page caught up with the changes made while its streams were lost",
        shown,
        json!([false, true]),
    );
    wait_until(SHOWN_WITHIN, "the page to watch its pods again", || {
        pod_collection_reads(&agent) > reads
    });
    drop(link);
    browser.screenshots("reconnected");

    wait_until(SHOWN_WITHIN, "client to go", || {
        agent.pod("client").is_none()
    });
    agent.leak_check(first["metadata"]["uid"].as_str().unwrap());
    agent.delete_and_check("second", "1");
    browser.close();
}
