//! The topology page's cost (issue 17): N idle busybox pods in one namespace, the agent's CPU
//! at rest over a window without the page, then with the page open in headless Chromium
//! (Debian's chromium and chromedriver, logged in through a one-time link of
//! `POST /ui/login-links` on the socket), measured as the steady-state figures are. Beside
//! them the page's load time (navigation start to every pod box drawn, in the page) and its
//! size: the embedded assets' bytes and what the browser reports it transferred.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

use crate::steady::measure;
use crate::{pod_names, shim_pids, skip_headers, wait_for, Agent, Options};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const NAMESPACE: &str = "default";
const RUNNING_TIMEOUT: Duration = Duration::from_secs(180);
const SETTLE: Duration = Duration::from_secs(5);
/// How long the page may take to draw every pod (under WebDriver's 30 s script timeout).
const DRAWN_TIMEOUT_MS: u64 = 25_000;
const DELETE_GRACE_SECS: u64 = 1;

/// Runs the page's benchmark with its own agent and prints the figures.
pub(crate) fn run(options: &Options) -> Result<()> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        println!("ui: skipped: chromium and chromium-driver are not installed");
        return Ok(());
    }
    let root = tempfile::Builder::new()
        .prefix("peapod-bench-ui-")
        .tempdir()?;
    let mut agent = Agent::start(options, root.path())?;
    let count = options.ui_pods;
    let pods: Vec<Value> = (0..count).map(sleep_pod).collect();
    let mut watch = agent.watch()?;
    let started = Instant::now();
    agent.apply_all(&pods)?;
    wait_for(&mut watch, count, RUNNING_TIMEOUT, crate::all_running)?;
    println!(
        "peapod: topology page, {count} idle pods in namespace {NAMESPACE} (all Running after {:.0} ms)",
        started.elapsed().as_secs_f64() * 1000.0
    );
    drop(watch);
    std::thread::sleep(SETTLE);
    let helpers = || shim_pids(root.path());
    println!(
        "  without the page, over {:.0} s:",
        options.window.as_secs_f64()
    );
    measure(agent.child.id(), options.window, helpers).print();

    let browser = Browser::open()?;
    let result = with_page(&browser, &agent, count, options.window, &helpers);
    browser.close();
    result?;

    let delete_ms = agent.delete_all(&pod_names(&pods), DELETE_GRACE_SECS, root.path())?;
    println!("  delete all (grace {DELETE_GRACE_SECS} s) -> all gone: {delete_ms:.0} ms");
    agent.stop_cleanly()
}

/// The page's load, its size, and the agent at rest while it stays open.
fn with_page(
    browser: &Browser,
    agent: &Agent,
    count: usize,
    window: Duration,
    helpers: &dyn Fn() -> Vec<u32>,
) -> Result<()> {
    browser.goto(&login_link(agent)?)?;
    let first = browser.drawn_ms(count)?;
    let sizes = browser.eval(TRANSFER_SIZES)?;
    browser.refresh()?;
    let reload = browser.drawn_ms(count)?;
    println!("  page load (navigation start -> {count} pod boxes drawn): first {first:.0} ms (login link and redirect included), reload {reload:.0} ms");
    println!("  page size: embedded assets {} bytes", assets_bytes()?);
    println!(
        "  browser (first load): document and assets {} requests, transferred {} bytes, bodies {} bytes; API calls {} (finished ones: {} bytes)",
        sizes["assets"], sizes["assetsTransfer"], sizes["assetsBody"], sizes["api"], sizes["apiTransfer"]
    );
    std::thread::sleep(SETTLE);
    println!("  with the page open, over {:.0} s:", window.as_secs_f64());
    measure(agent.child.id(), window, helpers).print();
    let shown = browser.eval("document.querySelectorAll('[data-pod]').length")?;
    println!("  pod boxes shown after the window: {shown}");
    Ok(())
}

fn sleep_pod(index: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": format!("ui-{index}"), "namespace": NAMESPACE },
        "spec": {
            "terminationGracePeriodSeconds": DELETE_GRACE_SECS,
            "containers": [{
                "name": "sleep",
                "image": "busybox",
                "command": ["sleep", "100000"],
            }],
        },
    })
}

/// A one-time login link, as `peapod ui` asks for it.
fn login_link(agent: &Agent) -> Result<String> {
    let stream = agent.request("POST", "/ui/login-links", Some(""))?;
    let mut reader = std::io::BufReader::new(stream);
    skip_headers(&mut reader)?;
    let mut body = String::new();
    reader.read_to_string(&mut body)?;
    let start = body
        .find('{')
        .context("no JSON in the login link's answer")?;
    let end = body
        .rfind('}')
        .context("no JSON in the login link's answer")?;
    let link: Value = serde_json::from_str(&body[start..=end])?;
    match link["url"].as_str() {
        Some(url) => Ok(url.to_owned()),
        None => bail!("no login link: {body}"),
    }
}

/// The size of every file the page embeds (assets/ beside this crate).
fn assets_bytes() -> Result<u64> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/peapod/src/agent/ui/assets");
    let mut total = 0;
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// What the browser reports for the document and its assets, and for the API calls apart.
const TRANSFER_SIZES: &str = "(() => {
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  const isApi = (e) => e.initiatorType === 'fetch' || e.initiatorType === 'xmlhttprequest';
  const sum = (list, field) => list.reduce((total, e) => total + (e[field] || 0), 0);
  const assets = entries.filter((e) => !isApi(e));
  const api = entries.filter(isApi);
  return { assets: assets.length, assetsTransfer: sum(assets, 'transferSize'),
           assetsBody: sum(assets, 'encodedBodySize'), api: api.length, apiTransfer: sum(api, 'transferSize') };
})()";

/// Headless Chromium under its own chromedriver.
struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open() -> Result<Browser> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                let _ = driver.kill();
                bail!("chromedriver did not listen");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::Builder::new()
            .prefix("peapod-bench-chromium-")
            .tempdir()?;
        let mut args = vec![
            "--headless=new".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            // The bench agent's own self-signed certificate, on loopback.
            "--ignore-certificate-errors".to_owned(),
            "--window-size=1280,800".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            args.push("--no-sandbox".to_owned());
        }
        let options = json!({ "binary": CHROMIUM, "args": args });
        let capabilities = [("goog:chromeOptions".to_owned(), options)]
            .into_iter()
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = runtime.block_on(
            ClientBuilder::new(connector)
                .capabilities(capabilities)
                .connect(&format!("http://127.0.0.1:{port}")),
        );
        match client {
            Ok(client) => Ok(Browser {
                runtime,
                client,
                driver,
                _profile: profile,
            }),
            Err(err) => {
                let _ = driver.kill();
                let _ = driver.wait();
                bail!("no chromium session: {err}")
            }
        }
    }

    fn goto(&self, url: &str) -> Result<()> {
        Ok(self.runtime.block_on(self.client.goto(url))?)
    }

    fn refresh(&self) -> Result<()> {
        Ok(self.runtime.block_on(self.client.refresh())?)
    }

    fn eval(&self, expression: &str) -> Result<Value> {
        let script = format!("return ({expression});");
        Ok(self
            .runtime
            .block_on(self.client.execute(&script, vec![]))?)
    }

    /// Milliseconds from the navigation's start to `count` pod boxes drawn, timed in the page.
    fn drawn_ms(&self, count: usize) -> Result<f64> {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             const check = () => {{
               if (document.querySelectorAll('[data-pod]').length >= {count}) done(performance.now());
               else if (performance.now() > {DRAWN_TIMEOUT_MS}) done(-1);
               else requestAnimationFrame(check);
             }};
             check();"
        );
        let ms = self
            .runtime
            .block_on(self.client.execute_async(&script, vec![]))?;
        match ms.as_f64() {
            Some(ms) if ms >= 0.0 => Ok(ms),
            _ => bail!("the page did not draw {count} pods within {DRAWN_TIMEOUT_MS} ms"),
        }
    }

    /// Ends the session and chromedriver.
    fn close(mut self) {
        let _ = self.runtime.block_on(self.client.clone().close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
