//! Registry pulls end to end: a real agent pulling from a real `docker-registry` on 127.0.0.1
//! (the fixture in peapod-image/tests/support/registry.rs), through `peapod pull` and through
//! pods with each imagePullPolicy; image pull secrets named by pods and service accounts; bad
//! input (missing tag, unknown host, credentials, platform, corrupt blob, full disk),
//! single-flight pulls, a pull killed midway, prune and image GC.
//! Each test has its own registry and agent and ends with a leak check.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::registry::{big_layout, busybox_layout, multi_arch_layout, Registry};
use crate::common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// Every manifest type the puller accepts, for asking the registry what a tag points at.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

// ----- helpers ---------------------------------------------------------------------------

/// A one-container pod (`main`, sleeping) with `image` and, when given, `imagePullPolicy`.
fn pod_yaml(name: &str, image: &str, policy: Option<&str>) -> String {
    let policy = policy
        .map(|p| format!("    imagePullPolicy: {p}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {image}\n\
         {policy}    command: [\"sleep\", \"3600\"]\n"
    )
}

/// A one-container pod (`main`, sleeping) of `image` with imagePullPolicy Always, so each pod
/// pulls with its own credentials, and `spec` (indented YAML) added to its spec.
fn private_pod_yaml(name: &str, image: &str, spec: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  \
         terminationGracePeriodSeconds: 1\n  automountServiceAccountToken: false\n{spec}  \
         containers:\n  - name: main\n    image: {image}\n    imagePullPolicy: Always\n    \
         command: [\"sleep\", \"3600\"]\n"
    )
}

/// Waits until pod `name`'s container waits on a failed pull; its waiting message.
fn wait_pull_error(agent: &Agent, name: &str) -> String {
    let pod = agent.wait_pod(name, "a pull error", WAIT, |p| {
        matches!(waiting(p).0.as_str(), "ErrImagePull" | "ImagePullBackOff")
    });
    waiting(&pod).1
}

fn kubectl_apply(kubectl: &Kubectl, manifest: &str, expected: &str) {
    assert_eq!(kubectl.apply(manifest).trim(), expected);
}

fn run_pod(agent: &Agent, name: &str, image: &str, policy: Option<&str>) -> Value {
    assert_eq!(
        agent.apply(&pod_yaml(name, image, policy)).trim(),
        format!("pod/{name} created")
    );
    agent.wait_running(name)
}

/// The `main` container's waiting state: (reason, message).
fn waiting(pod: &Value) -> (String, String) {
    let w = &container(pod, "main")["state"]["waiting"];
    (
        w["reason"].as_str().unwrap_or_default().to_string(),
        w["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// GET on the agent's API (curl over its Unix socket), as JSON.
fn api(agent: &Agent, path: &str) -> Value {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "--unix-socket"])
        .arg(agent.socket())
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("running curl");
    assert!(out.status.success(), "GET {path}: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("API JSON")
}

/// The events about pod `pod` (default namespace), as the API returns them.
fn pod_events(agent: &Agent, pod: &str) -> Vec<Value> {
    api(agent, "/api/v1/namespaces/default/events")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .collect()
}

fn describe_events(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} x{} {}",
                e["type"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default(),
                e["count"],
                e["message"].as_str().unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for an event about `pod` with `reason` whose message satisfies `check`.
fn wait_event(agent: &Agent, pod: &str, reason: &str, check: impl Fn(&str) -> bool) -> Value {
    let find = |events: &Vec<Value>| {
        events
            .iter()
            .find(|e| e["reason"] == reason && check(e["message"].as_str().unwrap_or_default()))
            .cloned()
    };
    let last = poll(
        WAIT,
        Duration::from_millis(100),
        || pod_events(agent, pod),
        |events| find(events).is_some(),
    );
    find(&last).unwrap_or_else(|| {
        panic!(
            "pod {pod}: no {reason} event as expected; events:\n{}\nagent log:\n{}",
            describe_events(&last),
            agent.agent_log()
        )
    })
}

/// The agent's images as the API lists them.
fn images_json(agent: &Agent) -> Vec<Value> {
    api(agent, "/apis/images.peapod.io/v1/images")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The image named `name` (normalized), if the store has it.
fn image_named(agent: &Agent, name: &str) -> Option<Value> {
    images_json(agent).into_iter().find(|i| {
        i["names"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n == name)
    })
}

/// (IMAGE, TAG, IMAGE ID) rows of `peapod images`.
fn image_rows(agent: &Agent) -> Vec<(String, String, String)> {
    let table = agent.ok(&["images"]);
    assert_eq!(
        columns(&table, 0),
        ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"],
        "crictl's columns: {table}"
    );
    table
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[0].to_string(), c[1].to_string(), c[2].to_string())
        })
        .collect()
}

fn has_row(agent: &Agent, repo: &str, tag: &str) -> bool {
    image_rows(agent)
        .iter()
        .any(|(r, t, _)| r == repo && t == tag)
}

fn store(agent: &Agent) -> PathBuf {
    agent.path().join("var/lib/peapod/images")
}

/// The names of the entries of a directory (empty when it does not exist).
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

fn store_blobs(agent: &Agent) -> BTreeSet<String> {
    entries(&store(agent).join("blobs/sha256"))
}

fn store_layers(agent: &Agent) -> BTreeSet<String> {
    entries(&store(agent).join("layers"))
}

/// The store's tmp/ becomes (or is) empty.
fn wait_tmp_empty(agent: &Agent) {
    let tmp = store(agent).join("tmp");
    let left = poll(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || entries(&tmp),
        |e| e.is_empty(),
    );
    assert!(left.is_empty(), "leftovers in {}: {left:?}", tmp.display());
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// What `repo:reference` points at in the registry: (Docker-Content-Digest, manifest JSON).
fn registry_manifest(registry: &Registry, repo: &str, reference: &str) -> (String, Value) {
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-i", "-H"])
        .arg(format!("Accept: {MANIFEST_ACCEPT}"))
        .arg(format!(
            "http://{}/v2/{repo}/manifests/{reference}",
            registry.addr()
        ))
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "GET manifest {repo}:{reference}: {}",
        text(&out.stderr)
    );
    let response = text(&out.stdout);
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let digest = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no Docker-Content-Digest in {head}"));
    (digest, serde_json::from_str(body).expect("manifest JSON"))
}

fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("an image manifest")
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Requests in the registry's access log: lines with `"METHOD PATH ` (the combined log
/// format quotes the request line; the structured lines do not have this form).
fn requests(registry: &Registry, method: &str, path: &str) -> usize {
    let needle = format!("\"{method} {path} ");
    registry
        .log()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// Requests of any method for manifests of `repo`.
fn manifest_requests(registry: &Registry, repo: &str) -> usize {
    let needle = format!(" /v2/{repo}/manifests/");
    registry
        .log()
        .lines()
        .filter(|l| l.contains(&needle) && (l.contains("\"GET ") || l.contains("\"HEAD ")))
        .count()
}

/// `peapod pull REF` that may not hang: (exit code, stdout, stderr).
fn pull(agent: &Agent, reference: &str) -> (i32, String, String) {
    let out = agent.cli_stdin_within(&["pull", reference], "", Duration::from_secs(90));
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

/// `peapod pull` fails: exit 1 and exactly one line on stderr, `error: ...`; returns it.
fn pull_fails(agent: &Agent, reference: &str) -> String {
    let (code, stdout, stderr) = pull(agent, reference);
    assert_eq!(
        code, 1,
        "peapod pull {reference} should fail: stdout {stdout:?} stderr {stderr:?}"
    );
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "one error line from pull {reference}: {stderr:?}"
    );
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    eprintln!("peapod pull {reference}: {}", lines[0]);
    lines[0].to_string()
}

/// A quiet per-layer line of `pull`: `sha256:<12 hex>: done <size>` or `...: already exists`.
fn is_layer_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("sha256:") else {
        return false;
    };
    let (short, what) = rest.split_at(rest.len().min(12));
    short.len() == 12
        && short.chars().all(|c| c.is_ascii_hexdigit())
        && (what == ": already exists" || what.starts_with(": done "))
}

/// The value of the `Image size: N bytes.` part of a Pulled message.
fn pulled_size(message: &str) -> u64 {
    let rest = message
        .split("Image size: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no image size in {message:?}"));
    rest.strip_suffix(" bytes.")
        .unwrap_or_else(|| panic!("no ` bytes.` at the end of {message:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("bad image size in {message:?}: {e}"))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes a docker config.json with `user:password` for `registry`.
fn write_auth_file(path: &Path, registry: &str, user: &str, password: &str) {
    let auth = base64(format!("{user}:{password}").as_bytes());
    let config = serde_json::json!({"auths": {registry: {"auth": auth}}});
    std::fs::write(path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
}

// ----- tests -----------------------------------------------------------------------------

#[test]
fn pull_prints_quiet_lines_and_a_pod_then_finds_the_image_present() {
    let registry = Registry::start();
    let (_dir, layout) = busybox_layout();
    registry.push(&layout, "latest", "busybox:1.0", &[]);
    let agent = Agent::start();
    let reference = format!("{}/busybox:1.0", registry.addr());

    let (code, stdout, stderr) = pull(&agent, &reference);
    assert_eq!(code, 0, "pull failed: {stdout}{stderr}");
    assert!(
        !stdout.contains('\r') && !stdout.contains('\x1b'),
        "no progress bars when stdout is not a TTY: {stdout:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.first(),
        Some(&format!("Pulling {reference}").as_str()),
        "{stdout}"
    );
    let last = lines.last().unwrap();
    let id = last
        .strip_prefix("Image is up to date for sha256:")
        .unwrap_or_else(|| panic!("crictl's final line: {stdout}"));
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{last}"
    );
    let layer_lines = &lines[1..lines.len() - 1];
    assert!(!layer_lines.is_empty(), "a line per layer: {stdout}");
    assert!(
        layer_lines.iter().all(|l| is_layer_line(l)),
        "layer lines `sha256:<12 hex>: done SIZE` or `: already exists`: {stdout}"
    );

    let rows = image_rows(&agent);
    let row = rows
        .iter()
        .find(|(repo, tag, _)| *repo == format!("{}/busybox", registry.addr()) && tag == "1.0")
        .unwrap_or_else(|| panic!("images lists {reference}: {rows:?}"));
    assert!(id.starts_with(&row.2), "IMAGE ID {} of {id}", row.2);
    let image = image_named(&agent, &reference).expect("the API lists the image");
    assert_eq!(image["id"], format!("sha256:{id}"));

    let manifests_before = manifest_requests(&registry, "busybox");
    run_pod(&agent, "present", &reference, Some("IfNotPresent"));
    wait_event(&agent, "present", "Pulled", |m| {
        m == format!("Container image \"{reference}\" already present on machine")
    });
    let events = pod_events(&agent, "present");
    assert!(
        !events.iter().any(|e| e["reason"] == "Pulling"),
        "IfNotPresent with the image present does not pull:\n{}",
        describe_events(&events)
    );
    assert_eq!(
        manifest_requests(&registry, "busybox"),
        manifests_before,
        "IfNotPresent with the image present asks the registry nothing"
    );
    agent.delete_and_check("present", "0");
}

#[test]
fn pod_pulls_an_image_only_in_the_registry() {
    let registry = Registry::start();
    let (_dir, layout) = multi_arch_layout(&[("linux", "amd64")], "1.0");
    // Without --all skopeo pushes the host's image of the index: a plain manifest.
    registry.push(&layout, "1.0", "app:1.0", &[]);
    let (digest, manifest) = registry_manifest(&registry, "app", "1.0");
    assert!(
        manifest["layers"].is_array(),
        "an image manifest: {manifest}"
    );
    let agent = Agent::start();
    let reference = format!("{}/app:1.0", registry.addr());
    assert!(image_named(&agent, &reference).is_none());

    let pod = run_pod(&agent, "pulled", &reference, None);
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent",
        "a tagged image other than :latest defaults to IfNotPresent"
    );
    let pulling = wait_event(&agent, "pulled", "Pulling", |m| {
        m == format!("Pulling image \"{reference}\"")
    });
    let pulled = wait_event(&agent, "pulled", "Pulled", |m| {
        m.starts_with(&format!("Successfully pulled image \"{reference}\" in "))
    });
    let message = pulled["message"].as_str().unwrap();
    assert!(
        message.contains(" including waiting). Image size: "),
        "kubelet's wording: {message}"
    );
    assert_eq!(pulling["type"], "Normal");
    assert_eq!(pulled["type"], "Normal");
    let image = image_named(&agent, &reference).expect("the pulled image is in the store");
    assert_eq!(
        pulled_size(message),
        image["size"].as_u64().unwrap(),
        "the Pulled event's size is the image's size: {message}"
    );
    let (code, out, err) = agent.exec("pulled", "main", &["cat", "/platform"]);
    assert_eq!((code, out.as_str()), (0, "linux/amd64"), "{err}");
    assert!(has_row(&agent, &format!("{}/app", registry.addr()), "1.0"));

    // kubelet (containerd) reports the repo digest of the image it pulled.
    let status = container(&pod, "main");
    assert_eq!(
        status["imageID"],
        format!("{}/app@{digest}", registry.addr()),
        "imageID: {status:#}"
    );
    agent.delete_and_check("pulled", "0");
}

#[test]
fn always_pulls_the_new_content_of_a_moved_tag() {
    let registry = Registry::start();
    let (_old, busybox) = busybox_layout();
    registry.push(&busybox, "latest", "app:latest", &[]);
    let agent = Agent::start();
    // No tag: :latest, whose policy defaults to Always.
    let image = format!("{}/app", registry.addr());

    let first = run_pod(&agent, "first", &image, None);
    assert_eq!(first["spec"]["containers"][0]["imagePullPolicy"], "Always");
    let (code, _, _) = agent.exec("first", "main", &["cat", "/platform"]);
    assert_ne!(code, 0, "the first image has no /platform");

    let (_new, layout) = multi_arch_layout(&[("linux", "amd64")], "latest");
    registry.push(&layout, "latest", "app:latest", &[]);
    let (new_digest, _) = registry_manifest(&registry, "app", "latest");

    let second = run_pod(&agent, "second", &image, None);
    wait_event(&agent, "second", "Pulled", |m| {
        m.starts_with(&format!("Successfully pulled image \"{image}\" in "))
    });
    let (code, out, err) = agent.exec("second", "main", &["cat", "/platform"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "linux/amd64"),
        "Always re-pulls: the new pod runs the tag's new content ({err})"
    );
    let (code, _, _) = agent.exec("first", "main", &["cat", "/platform"]);
    assert_ne!(code, 0, "the running pod keeps its old image");
    assert_eq!(
        container(&second, "main")["imageID"],
        format!("{}/app@{new_digest}", registry.addr())
    );
    agent.delete_and_check("first", "0");
    agent.delete_and_check("second", "0");
}

#[test]
fn never_with_the_image_absent_is_err_image_never_pull() {
    let registry = Registry::start();
    let (_dir, layout) = busybox_layout();
    registry.push(&layout, "latest", "app:1.0", &[]);
    let agent = Agent::start();
    let reference = format!("{}/app:1.0", registry.addr());
    agent.apply(&pod_yaml("never", &reference, Some("Never")));

    let expected =
        format!("Container image \"{reference}\" is not present with pull policy of Never");
    let pod = agent.wait_pod("never", "ErrImageNeverPull", WAIT, |p| {
        waiting(p).0 == "ErrImageNeverPull"
    });
    assert_eq!(waiting(&pod).1, expected);
    assert_eq!(pod["status"]["phase"], "Pending");
    // image_manager.go: a Warning `ErrImageNeverPull` event with the message, then the
    // container manager's Warning `Failed` `Error: ErrImageNeverPull`.
    let never = wait_event(&agent, "never", "ErrImageNeverPull", |m| m == expected);
    assert_eq!(never["type"], "Warning");
    wait_event(&agent, "never", "Failed", |m| {
        m == "Error: ErrImageNeverPull"
    });

    // Retries change nothing and never ask the registry.
    std::thread::sleep(Duration::from_secs(3));
    let pod = agent.pod("never").unwrap();
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(waiting(&pod), ("ErrImageNeverPull".to_string(), expected));
    assert_eq!(agent.get_status("never"), "ErrImageNeverPull");
    assert_eq!(
        manifest_requests(&registry, "app"),
        0,
        "Never pulls nothing"
    );
    assert!(image_named(&agent, &reference).is_none());
    agent.delete_and_check("never", "0");
}

#[test]
fn missing_tag_backs_off_and_starts_once_the_tag_is_pushed() {
    let registry = Registry::start();
    let (_dir, layout) = busybox_layout();
    registry.push(&layout, "latest", "app:1.0", &[]);
    let agent = Agent::start();
    let reference = format!("{}/app:2.0", registry.addr());
    agent.apply(&pod_yaml("missing", &reference, None));

    // Each pull attempt is one more Pulling (count); note when each is first seen.
    let pulls = |agent: &Agent| -> i64 {
        pod_events(agent, "missing")
            .iter()
            .filter(|e| e["reason"] == "Pulling")
            .map(|e| e["count"].as_i64().unwrap_or(1))
            .sum()
    };
    let mut attempts: Vec<Instant> = Vec::new();
    let mut seen_reasons = BTreeSet::new();
    let mut err_message = String::new();
    let deadline = Instant::now() + WAIT;
    while attempts.len() < 4 && Instant::now() < deadline {
        let count = pulls(&agent);
        while (attempts.len() as i64) < count {
            attempts.push(Instant::now());
        }
        if let Some(pod) = agent.pod("missing") {
            let (reason, message) = waiting(&pod);
            if reason == "ErrImagePull" {
                err_message = message;
            }
            assert_eq!(pod["status"]["phase"], "Pending");
            seen_reasons.insert(reason);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let events = pod_events(&agent, "missing");
    assert!(
        attempts.len() >= 4,
        "4 pull attempts within {WAIT:?}; events:\n{}",
        describe_events(&events)
    );
    assert!(
        seen_reasons.contains("ErrImagePull") && seen_reasons.contains("ImagePullBackOff"),
        "waiting reasons seen: {seen_reasons:?}"
    );
    assert!(
        err_message.contains("not found") && err_message.contains("app:2.0"),
        "ErrImagePull's message names the missing tag: {err_message:?}"
    );
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    eprintln!("pull attempts {:?} apart", gaps);
    assert!(
        gaps[2] >= gaps[0] * 2 && gaps[1] + Duration::from_millis(300) >= gaps[0],
        "the back-off between pulls grows: {gaps:?}"
    );
    wait_event(&agent, "missing", "Failed", |m| {
        m.starts_with(&format!("Failed to pull image \"{reference}\": ")) && m.contains("not found")
    });
    wait_event(&agent, "missing", "Failed", |m| m == "Error: ErrImagePull");
    wait_event(&agent, "missing", "Failed", |m| {
        m == "Error: ImagePullBackOff"
    });
    let backoff = wait_event(&agent, "missing", "BackOff", |m| {
        m == format!("Back-off pulling image \"{reference}\"")
    });
    assert_eq!(backoff["type"], "Normal");
    let pod = agent.pod("missing").unwrap();
    let (reason, message) = waiting(&pod);
    if reason == "ImagePullBackOff" {
        assert!(
            message.starts_with(&format!("Back-off pulling image \"{reference}\"")),
            "{message}"
        );
    }

    registry.push(&layout, "latest", "app:2.0", &[]);
    agent.wait_running("missing");
    wait_event(&agent, "missing", "Pulled", |m| {
        m.starts_with(&format!("Successfully pulled image \"{reference}\""))
    });
    agent.delete_and_check("missing", "0");
}

#[test]
fn unknown_registry_host_is_named_in_the_error() {
    let agent = Agent::start();
    let reference = "nosuch.invalid/x:1";
    agent.apply(&pod_yaml("nohost", reference, None));
    let pod = agent.wait_pod("nohost", "a pull error", WAIT, |p| {
        matches!(waiting(p).0.as_str(), "ErrImagePull" | "ImagePullBackOff")
    });
    let (_, message) = waiting(&pod);
    assert!(
        message.contains("nosuch.invalid"),
        "names the host: {message}"
    );
    wait_event(&agent, "nohost", "Failed", |m| m == "Error: ErrImagePull");
    wait_event(&agent, "nohost", "Failed", |m| {
        m.starts_with(&format!("Failed to pull image \"{reference}\": "))
            && m.contains("nosuch.invalid")
    });
    assert_eq!(pod["status"]["phase"], "Pending");

    let started = Instant::now();
    let line = pull_fails(&agent, reference);
    assert!(line.contains("nosuch.invalid"), "{line}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "an unknown host fails fast"
    );
    agent.delete_and_check("nohost", "0");
}

#[test]
fn registry_credentials_come_from_the_agent_auth_file() {
    let registry = Registry::start_with_htpasswd("alice", "s3cret");
    let (_dir, layout) = multi_arch_layout(&[("linux", "amd64")], "1.0");
    registry.push(&layout, "1.0", "private:1.0", &[]);
    let creds = tempfile::tempdir().unwrap();
    let auth_file = creds.path().join("config.json");
    let agent =
        Agent::start_with_env(&[("PEAPOD_REGISTRY_AUTH_FILE", auth_file.to_str().unwrap())]);
    let reference = format!("{}/private:1.0", registry.addr());

    // No credentials (the file does not exist yet).
    let line = pull_fails(&agent, &reference);
    assert!(
        line.to_lowercase().contains("unauthorized"),
        "unauthorized wording: {line}"
    );
    agent.apply(&pod_yaml("private", &reference, None));
    let pod = agent.wait_pod("private", "a pull error", WAIT, |p| {
        matches!(waiting(p).0.as_str(), "ErrImagePull" | "ImagePullBackOff")
    });
    assert!(
        waiting(&pod).1.to_lowercase().contains("unauthorized"),
        "{:?}",
        waiting(&pod)
    );

    // The right credentials: the pod's next retry pulls.
    write_auth_file(&auth_file, registry.addr(), "alice", "s3cret");
    agent.wait_running("private");
    let (code, out, _) = agent.exec("private", "main", &["cat", "/platform"]);
    assert_eq!((code, out.as_str()), (0, "linux/amd64"));

    // A wrong password: a clear error, the image present stays.
    write_auth_file(&auth_file, registry.addr(), "alice", "wrong");
    let line = pull_fails(&agent, &reference);
    assert!(
        line.to_lowercase().contains("unauthorized") && line.contains(registry.addr()),
        "names the registry and says unauthorized: {line}"
    );
    assert!(has_row(
        &agent,
        &format!("{}/private", registry.addr()),
        "1.0"
    ));
    agent.delete_and_check("private", "0");
}

#[test]
fn image_pull_secrets_of_the_pod_and_its_service_account_authenticate_its_pulls() {
    let registry = Registry::start_with_htpasswd("alice", "s3cret");
    let (_dir, layout) = multi_arch_layout(&[("linux", "amd64")], "1.0");
    registry.push(&layout, "1.0", "private:1.0", &[]);
    let (agent, kubectl) = start_with_kubectl();
    let reference = format!("{}/private:1.0", registry.addr());
    let server = format!("--docker-server={}", registry.addr());
    let created = kubectl.ok(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &server,
        "--docker-username=alice",
        "--docker-password=s3cret",
    ]);
    assert_eq!(created.trim(), "secret/regcred created");

    // No secret: the registry's refusal, and the pod waits.
    kubectl_apply(
        &kubectl,
        &private_pod_yaml("anonymous", &reference, ""),
        "pod/anonymous created",
    );
    let message = wait_pull_error(&agent, "anonymous");
    assert!(
        message.to_lowercase().contains("unauthorized"),
        "the registry's refusal: {message}"
    );

    // The pod names the secret: its pull authenticates.
    let with_secret = "  imagePullSecrets:\n  - name: regcred\n";
    kubectl_apply(
        &kubectl,
        &private_pod_yaml("named", &reference, with_secret),
        "pod/named created",
    );
    agent.wait_running("named");
    let (code, out, _) = agent.exec("named", "main", &["cat", "/platform"]);
    assert_eq!((code, out.as_str()), (0, "linux/amd64"));
    wait_event(&agent, "named", "Pulled", |m| {
        m.starts_with(&format!("Successfully pulled image \"{reference}\""))
    });
    // Its success lends nothing to the pod without credentials: its next pull is refused.
    let failed_pulls = || {
        pod_events(&agent, "anonymous")
            .iter()
            .filter(|e| {
                let message = e["message"].as_str().unwrap_or_default();
                e["reason"] == "Failed" && message.starts_with("Failed to pull image")
            })
            .map(|e| e["count"].as_i64().unwrap_or(1))
            .sum::<i64>()
    };
    let before = failed_pulls();
    wait_until(
        WAIT,
        "another refused pull of the pod without credentials",
        || failed_pulls() > before,
    );
    let message = wait_pull_error(&agent, "anonymous");
    assert!(message.to_lowercase().contains("unauthorized"), "{message}");

    // The ServiceAccount lists the secret: admission copies it into the pod.
    kubectl_apply(
        &kubectl,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: puller\n\
         imagePullSecrets:\n- name: regcred\n",
        "serviceaccount/puller created",
    );
    kubectl_apply(
        &kubectl,
        &private_pod_yaml("by-account", &reference, "  serviceAccountName: puller\n"),
        "pod/by-account created",
    );
    let pod = agent.wait_running("by-account");
    assert_eq!(
        pod["spec"]["imagePullSecrets"],
        serde_json::json!([{"name": "regcred"}])
    );
    wait_event(&agent, "by-account", "Pulled", |m| {
        m.starts_with(&format!("Successfully pulled image \"{reference}\""))
    });

    // A secret that does not exist: a Warning on the pod, and the pull goes on without it.
    kubectl_apply(
        &kubectl,
        &private_pod_yaml(
            "missing-secret",
            &reference,
            "  imagePullSecrets:\n  - name: nosuch\n  - name: regcred\n  - name: gone\n",
        ),
        "pod/missing-secret created",
    );
    let event = wait_event(
        &agent,
        "missing-secret",
        "FailedToRetrieveImagePullSecret",
        |m| {
            m == "Unable to retrieve some image pull secrets (nosuch, gone); \
              attempting to pull the image may not succeed."
        },
    );
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["involvedObject"]["fieldPath"], Value::Null);
    agent.wait_running("missing-secret");

    // A secret whose credentials do not decode fails the pull, naming it, not its content.
    let undecodable = serde_json::json!({"auths": {registry.addr(): {"auth": "!!"}}});
    kubectl_apply(
        &kubectl,
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: broken\n\
             type: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
            base64(undecodable.to_string().as_bytes())
        ),
        "secret/broken created",
    );
    kubectl_apply(
        &kubectl,
        &private_pod_yaml(
            "broken-secret",
            &reference,
            "  imagePullSecrets:\n  - name: broken\n  - name: regcred\n",
        ),
        "pod/broken-secret created",
    );
    let message = wait_pull_error(&agent, "broken-secret");
    let expected = format!(
        "invalid image pull secret \"broken\": .dockerconfigjson: entry \"{}\": auth is not base64",
        registry.addr()
    );
    assert!(message.contains(&expected), "{message}");
    assert!(!message.contains("!!"), "{message}");

    for pod in [
        "anonymous",
        "named",
        "by-account",
        "missing-secret",
        "broken-secret",
    ] {
        agent.delete_and_check(pod, "0");
    }
}

#[test]
fn multi_arch_index_resolves_to_the_host_platform() {
    let registry = Registry::start();
    let (_multi, layout) = multi_arch_layout(&[("linux", "arm64"), ("linux", "amd64")], "1.0");
    registry.push(&layout, "1.0", "multi:1.0", &["--all"]);
    let (index_digest, index) = registry_manifest(&registry, "multi", "1.0");
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(2),
        "{index}"
    );
    let (_arm, arm_layout) = multi_arch_layout(&[("linux", "arm64")], "1.0");
    registry.push(&arm_layout, "1.0", "armonly:1.0", &["--all"]);
    let agent = Agent::start();
    let reference = format!("{}/multi:1.0", registry.addr());
    let arm_only = format!("{}/armonly:1.0", registry.addr());

    let pod = run_pod(&agent, "multi", &reference, None);
    let (code, out, err) = agent.exec("multi", "main", &["cat", "/platform"]);
    assert_eq!((code, out.as_str()), (0, "linux/amd64"), "{err}");

    agent.apply(&pod_yaml("armonly", &arm_only, None));
    let arm_pod = agent.wait_pod("armonly", "a pull error", WAIT, |p| {
        matches!(waiting(p).0.as_str(), "ErrImagePull" | "ImagePullBackOff")
    });
    let (_, message) = waiting(&arm_pod);
    assert!(
        message.contains("platform") && message.contains("linux/amd64"),
        "names the platform: {message}"
    );
    let line = pull_fails(&agent, &arm_only);
    assert!(
        line.contains("platform") && line.contains("linux/amd64"),
        "{line}"
    );
    assert!(image_named(&agent, &arm_only).is_none());

    // containerd's image is the index: the repo digest kubelet shows is the index's.
    assert_eq!(
        container(&pod, "main")["imageID"],
        format!("{}/multi@{index_digest}", registry.addr()),
        "imageID of an image pulled through an index"
    );
    agent.delete_and_check("multi", "0");
    agent.delete_and_check("armonly", "0");
}

#[test]
fn zstd_layers_pull_and_run() {
    let registry = Registry::start();
    let (_dir, layout) = multi_arch_layout(&[("linux", "amd64")], "1.0");
    registry.push(
        &layout,
        "1.0",
        "zstd:1.0",
        &["--format", "oci", "--dest-compress-format", "zstd"],
    );
    let (_, manifest) = registry_manifest(&registry, "zstd", "1.0");
    let types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert!(
        types.iter().all(|t| t.ends_with("+zstd")),
        "the registry holds zstd layers: {types:?}"
    );
    let agent = Agent::start();
    let reference = format!("{}/zstd:1.0", registry.addr());
    run_pod(&agent, "zstd", &reference, None);
    let (code, out, err) = agent.exec("zstd", "main", &["cat", "/platform"]);
    assert_eq!((code, out.as_str()), (0, "linux/amd64"), "{err}");
    for digest in layer_digests(&manifest) {
        assert!(
            store_blobs(&agent).contains(hex(&digest)),
            "the zstd blob {digest} is in the store"
        );
    }
    agent.delete_and_check("zstd", "0");
}

#[test]
fn tampered_blob_fails_with_digest_mismatch_and_leaves_the_store_unchanged() {
    let registry = Registry::start();
    let (_dir, layout) = multi_arch_layout(&[("linux", "amd64")], "1.0");
    registry.push(&layout, "1.0", "tamper:1.0", &[]);
    let (_, manifest) = registry_manifest(&registry, "tamper", "1.0");
    let agent = Agent::start();
    let reference = format!("{}/tamper:1.0", registry.addr());
    let blobs_before = store_blobs(&agent);
    let layers_before = store_layers(&agent);
    let images_before = agent.ok(&["images"]);

    // The /platform layer, which the store cannot have.
    let tampered = layer_digests(&manifest).pop().unwrap();
    assert!(!blobs_before.contains(hex(&tampered)));
    let file = registry.blob_file(&tampered);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let line = pull_fails(&agent, &reference);
    assert!(
        line.contains("digest mismatch") && line.contains(&tampered),
        "names the blob and the mismatch: {line}"
    );
    assert_eq!(agent.ok(&["images"]), images_before, "images unchanged");
    assert!(!store_blobs(&agent).contains(hex(&tampered)));
    assert_eq!(
        store_blobs(&agent),
        blobs_before,
        "no blob of the failed pull kept"
    );
    assert_eq!(
        store_layers(&agent),
        layers_before,
        "no layer of the failed pull kept"
    );
    wait_tmp_empty(&agent);

    agent.apply(&pod_yaml("tampered", &reference, None));
    let pod = agent.wait_pod("tampered", "a pull error", WAIT, |p| {
        matches!(waiting(p).0.as_str(), "ErrImagePull" | "ImagePullBackOff")
    });
    assert!(
        waiting(&pod).1.contains("digest mismatch"),
        "{:?}",
        waiting(&pod)
    );
    agent.delete_and_check("tampered", "0");
    assert_eq!(store_blobs(&agent), blobs_before);
    assert_eq!(store_layers(&agent), layers_before);
    wait_tmp_empty(&agent);
}

#[test]
fn pods_needing_one_image_at_once_share_one_pull() {
    let registry = Registry::start();
    let (_dir, layout) = big_layout(2, 4);
    registry.push(&layout, "latest", "big:1.0", &[]);
    let (_, manifest) = registry_manifest(&registry, "big", "1.0");
    let agent = Agent::start();
    let reference = format!("{}/big:1.0", registry.addr());
    let present = store_blobs(&agent);

    let names: Vec<String> = (0..5).map(|i| format!("same{i}")).collect();
    let manifests: Vec<String> = names
        .iter()
        .map(|n| pod_yaml(n, &reference, None))
        .collect();
    let out = agent.apply(&manifests.join("---\n"));
    assert_eq!(out.lines().count(), 5, "{out}");
    for name in &names {
        agent.wait_running(name);
    }

    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut fetched = Vec::new();
    for digest in layer_digests(&manifest).into_iter().chain([config]) {
        let gets = requests(&registry, "GET", &format!("/v2/big/blobs/{digest}"));
        if present.contains(hex(&digest)) {
            assert_eq!(gets, 0, "{digest} is in the store already");
        } else {
            fetched.push((digest, gets));
        }
    }
    // The big layers and the config at least (the busybox layer too when the registry's
    // busybox is another build than the one the agent loaded).
    assert!(fetched.len() >= 3, "new blobs: {fetched:?}");
    assert!(
        fetched.iter().all(|(_, gets)| *gets == 1),
        "each blob fetched exactly once for 5 pods: {fetched:?}"
    );
    for name in &names {
        agent.delete_and_check(name, "0");
    }
}

#[test]
fn agent_killed_midway_through_a_pull_pulls_again_after_restart() {
    let registry = Registry::start();
    let (_dir, layout) = big_layout(4, 25);
    registry.push(&layout, "latest", "big:1.0", &[]);
    let mut agent = Agent::start();
    let reference = format!("{}/big:1.0", registry.addr());
    let blob_gets = |r: &Registry| requests_prefix(r, "GET", "/v2/big/blobs/");

    agent.apply(&pod_yaml("big", &reference, None));
    wait_until(WAIT, "the first blob GET", || blob_gets(&registry) > 0);
    agent.kill_agent();
    let index = std::fs::read_to_string(store(&agent).join("index.json")).unwrap_or_default();
    if index.contains(&reference) {
        eprintln!("note: the pull had completed before the kill");
    }
    agent.restart();

    agent.wait_pod("big", "running", Duration::from_secs(60), all_running);
    let (code, out, err) = agent.exec("big", "main", &["sh", "-c", "wc -c /big0 /big3"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("26214400 /big0") && out.contains("26214400 /big3"),
        "{out}"
    );
    assert!(has_row(&agent, &format!("{}/big", registry.addr()), "1.0"));
    wait_tmp_empty(&agent);
    agent.delete_and_check("big", "0");
}

/// Requests whose path starts with `prefix`.
fn requests_prefix(registry: &Registry, method: &str, prefix: &str) -> usize {
    let needle = format!("\"{method} {prefix}");
    registry
        .log()
        .lines()
        .filter(|l| l.contains(&needle))
        .count()
}

/// A tmpfs mounted for the test's lifetime.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("running mount");
        assert!(status.success(), "mounting a tmpfs");
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn full_disk_fails_the_pull_cleanly() {
    let registry = Registry::start();
    let (_dir, layout) = big_layout(4, 25);
    registry.push(&layout, "latest", "big:1.0", &[]);
    let tmpfs = Tmpfs::mount("40m");
    let agent = Agent::start_in(tmpfs.path(), &[]);
    let reference = format!("{}/big:1.0", registry.addr());
    let blobs_before = store_blobs(&agent);
    let layers_before = store_layers(&agent);

    let line = pull_fails(&agent, &reference);
    assert!(line.contains("no space left on device"), "{line}");
    wait_tmp_empty(&agent);
    assert_eq!(store_blobs(&agent), blobs_before);
    assert_eq!(store_layers(&agent), layers_before);
    assert!(has_row(&agent, "docker.io/library/busybox", "latest"));
    assert!(!has_row(&agent, &format!("{}/big", registry.addr()), "1.0"));

    run_pod(&agent, "after", "busybox", Some("IfNotPresent"));
    let (code, _, err) = agent.exec("after", "main", &["sh", "-c", "echo ok > /tmp/x"]);
    assert_eq!(code, 0, "{err}");
    agent.delete_and_check("after", "0");
    drop(agent);
    drop(tmpfs);
}

#[test]
fn prune_and_image_gc_remove_only_unused_images() {
    let registry = Registry::start();
    let (_gc_dir, gc_layout) = multi_arch_layout(&[("linux", "amd64")], "1.0");
    registry.push(&gc_layout, "1.0", "gc:1.0", &[]);
    let (_prune_dir, prune_layout) = big_layout(1, 1);
    registry.push(&prune_layout, "latest", "prune:1.0", &[]);
    let mut agent = Agent::start();
    let gc_ref = format!("{}/gc:1.0", registry.addr());
    let prune_ref = format!("{}/prune:1.0", registry.addr());

    run_pod(&agent, "user", "busybox", Some("IfNotPresent"));
    let layers_busybox = store_layers(&agent);

    // prune: the pulled image goes, busybox (in use) stays.
    let (code, out, err) = pull(&agent, &prune_ref);
    assert_eq!(code, 0, "{out}{err}");
    assert!(store_layers(&agent).len() > layers_busybox.len());
    let out = agent.ok(&["image", "prune"]);
    let deleted: Vec<&str> = out.lines().filter(|l| l.starts_with("Deleted: ")).collect();
    assert_eq!(deleted, [format!("Deleted: {prune_ref}")], "{out}");
    assert!(
        out.lines()
            .last()
            .unwrap_or_default()
            .starts_with("Total reclaimed space: "),
        "{out}"
    );
    assert!(image_named(&agent, &prune_ref).is_none());
    assert!(has_row(&agent, "docker.io/library/busybox", "latest"));
    assert_eq!(
        store_layers(&agent),
        layers_busybox,
        "the pruned image's layers are gone"
    );

    // GC: thresholds this disk exceeds, every second, no minimum age.
    let (code, out, err) = pull(&agent, &gc_ref);
    assert_eq!(code, 0, "{out}{err}");
    assert!(image_named(&agent, &gc_ref).is_some());
    for (key, value) in [
        ("PEAPOD_IMAGE_GC_HIGH_THRESHOLD", "1"),
        ("PEAPOD_IMAGE_GC_LOW_THRESHOLD", "0"),
        ("PEAPOD_IMAGE_GC_PERIOD", "1"),
        ("PEAPOD_IMAGE_GC_MINIMUM_AGE", "0"),
    ] {
        agent.set_env(key, value);
    }
    agent.kill_and_restart();
    wait_until(
        Duration::from_secs(20),
        "image GC removing the unused image",
        || image_named(&agent, &gc_ref).is_none(),
    );
    // The index changes first; the layers go in the same collection, a moment later.
    let layers = poll(
        Duration::from_secs(5),
        Duration::from_millis(100),
        || store_layers(&agent),
        |l| *l == layers_busybox,
    );
    assert_eq!(
        layers, layers_busybox,
        "the collected image's layers are gone"
    );
    assert!(has_row(&agent, "docker.io/library/busybox", "latest"));
    let pod = agent.pod("user").unwrap();
    assert!(all_running(&pod), "{pod:#}");
    let (code, _, err) = agent.exec("user", "main", &["true"]);
    assert_eq!(code, 0, "{err}");
    agent.delete_and_check("user", "0");
}
