//! The CLI contract and bad input, end to end: refusals at apply (nothing half-created),
//! refusals reported on the container, the subPath escape, forbidden changes, the `get`
//! formats, describe/events, the delete forms and the image verbs.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// A one-container pod that sleeps, with a 1 s grace period.
fn sleeper(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{{labels}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sleep, \"3600\"]
"
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

fn stderr(out: &Output) -> String {
    text(&out.stderr)
}

/// `expected` is on the CLI's stderr.
fn assert_stderr_has(out: &Output, expected: &str) {
    assert!(
        stderr(out).contains(expected),
        "stderr should contain {expected:?}: {}",
        stderr(out)
    );
}

/// The CLI refused: non-zero exit, `expected` on stderr, nothing on stdout.
fn assert_refused(out: &Output, expected: &str) {
    assert!(
        !out.status.success(),
        "should be refused; stdout: {}",
        text(&out.stdout)
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code; stderr: {}",
        stderr(out)
    );
    assert_stderr_has(out, expected);
    assert_eq!(text(&out.stdout), "", "nothing printed as done");
}

/// No pod in any namespace, and no pod directory under PEAPOD_ROOT.
fn assert_nothing_created(agent: &Agent) {
    let out = agent.cli(&["get", "pods", "-A"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "", "no pod should exist");
    assert_stderr_has(&out, "No resources found");
    for dir in ["run/peapod/pods", "var/lib/peapod/pods"] {
        let entries: Vec<_> = std::fs::read_dir(agent.path().join(dir))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(
            entries.is_empty(),
            "pod directories left in {dir}: {entries:?}"
        );
    }
}

/// `peapod events` (default namespace) as text.
fn events(agent: &Agent) -> String {
    agent.ok(&["events"])
}

fn wait_event(agent: &Agent, what: &str, check: impl Fn(&str) -> bool) -> String {
    let seen = |events: &String| check(events);
    let last = poll(WAIT, Duration::from_millis(100), || events(agent), seen);
    assert!(
        check(&last),
        "timed out waiting for event {what}; events:\n{last}\nagent log:\n{}",
        agent.agent_log()
    );
    last
}

fn waiting(c: &Value) -> (&str, &str) {
    let w = &c["state"]["waiting"];
    (
        w["reason"].as_str().unwrap_or(""),
        w["message"].as_str().unwrap_or(""),
    )
}

#[test]
fn bad_input_is_refused_whole_with_one_clear_error() {
    let agent = Agent::start();
    let apply = |manifest: &str| agent.cli_stdin(&["apply", "-f", "-"], manifest);

    // Malformed YAML: the message names the problem and its line.
    let out = apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: web\n    image: busybox\n   command: [x]\n");
    assert_refused(&out, "line 9");
    assert!(
        stderr(&out).starts_with("error: error parsing STDIN"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out).lines().count(),
        1,
        "one error: {}",
        stderr(&out)
    );
    assert_nothing_created(&agent);

    // Unknown kind.
    let out = apply("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: d\nspec: {}\n");
    assert_refused(
        &out,
        r#"no matches for kind "Widget" in version "example.com/v1""#,
    );
    assert_nothing_created(&agent);

    // Invalid fields, with Kubernetes' field paths.
    let cases = [
        (
            "  - name: web\n    image: busybox\n  - name: web\n    image: busybox\n",
            r#"spec.containers[1].name: Duplicate value: "web""#,
        ),
        (
            "  - name: web\n    image: busybox\n    volumeMounts:\n    - name: nope\n      mountPath: /x\n",
            r#"spec.containers[0].volumeMounts[0].name: Not found: "nope""#,
        ),
        (
            "  - name: web\n    image: busybox\n    ports:\n    - containerPort: 70000\n",
            "spec.containers[0].ports[0].containerPort: Invalid value: 70000",
        ),
        ("  - name: web\n", "spec.containers[0].image: Required value"),
    ];
    for (containers, expected) in cases {
        let manifest = format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n{containers}"
        );
        let out = apply(&manifest);
        assert_refused(&out, expected);
        assert_stderr_has(&out, r#"Pod "bad" is invalid"#);
        assert_nothing_created(&agent);
    }

    // A multi-document file whose second document is invalid: the first is not created either.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("two.yaml");
    std::fs::write(
        &file,
        format!(
            "{}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: second\nspec:\n  containers:\n  - name: web\n",
            sleeper("first", "app: a")
        ),
    )
    .unwrap();
    let out = agent.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert_refused(
        &out,
        r#"Pod "second" is invalid: spec.containers[0].image: Required value"#,
    );
    assert!(!stderr(&out).contains("first"), "{}", stderr(&out));
    assert_nothing_created(&agent);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        agent.pod("first").is_none(),
        "the valid first document must not be created"
    );
    assert_nothing_created(&agent);
}

/// POST of `body` to the agent's pods in `default`: the status code and the `Status` message.
fn post_pod_json(agent: &Agent, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(agent.socket()).unwrap();
    write!(
        stream,
        "POST /api/v1/namespaces/default/pods?fieldValidation=Strict HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let status: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (
        code,
        status["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn what_strict_validation_or_the_runtime_would_refuse_is_refused_at_apply_naming_the_field() {
    let agent = Agent::start();
    let apply = |args: &[&str], manifest: &str| agent.cli_stdin(args, manifest);
    let pod = |container: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  terminationGracePeriodSeconds: 1\n  volumes: [{{name: v, emptyDir: {{}}}}]\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, \"3600\"]\n{container}")
    };

    // kubectl's default --validate=strict: unknown fields and keys given twice.
    let out = apply(&["apply", "-f", "-"], &pod("    comand: [sh]\n"));
    assert_refused(
        &out,
        r#"Error from server (BadRequest): error when creating "STDIN": Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.containers[0].comand""#,
    );
    let out = apply(&["apply", "-f", "-"], &pod("    image: nginx\n"));
    assert_refused(
        &out,
        "strict decoding error: yaml: unmarshal errors:\n  line 12: key \"image\" already set in map",
    );
    assert_nothing_created(&agent);

    // Values no runtime can use, refused before a container fails to start on them.
    let cases = [
        (
            "    volumeMounts: [{name: v, mountPath: /proc, subPath: x}]\n",
            r#"spec.containers[0].volumeMounts[0].mountPath: Invalid value: "/proc": must not be /proc or below it: the container runtime mounts procfs there"#,
        ),
        (
            "    env: [{name: X, value: \"a\\0b\"}]\n",
            r#"spec.containers[0].env[0].value: Invalid value: "a\x00b": must not contain a NUL byte"#,
        ),
    ];
    for (container, expected) in cases {
        let out = apply(&["apply", "-f", "-"], &pod(container));
        assert_refused(&out, expected);
        assert_stderr_has(&out, r#"The Pod "bad" is invalid"#);
        assert_nothing_created(&agent);
    }

    // The agent refuses a JSON body with a key given twice, naming its path.
    let (code, message) = post_pod_json(
        &agent,
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "name": "other"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}"#,
    );
    assert_eq!(code, 400, "{message}");
    assert_eq!(
        message,
        r#"Pod in version "v1" cannot be handled as a Pod: strict decoding error: duplicate field "metadata.name""#
    );
    assert_nothing_created(&agent);

    // --validate=warn creates the pod and says what strict validation would refuse.
    let out = apply(
        &["apply", "--validate=warn", "-f", "-"],
        &pod("    comand: [sh]\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text(&out.stdout), "pod/bad created\n");
    assert_stderr_has(
        &out,
        r#"Warning: unknown field "spec.containers[0].comand""#,
    );
    agent.wait_running("bad");
    agent.delete_and_check("bad", "1");
}

#[test]
fn image_not_in_the_store_is_err_image_pull_then_image_pull_back_off() {
    let agent = Agent::start();
    let out = agent.apply(
        "apiVersion: v1
kind: Pod
metadata: {name: noimg}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: example.com/nope:1}
",
    );
    assert_eq!(out.trim(), "pod/noimg created");
    let pod = agent.wait_pod("noimg", "ErrImagePull", WAIT, |p| {
        waiting(container(p, "c")).0 == "ErrImagePull"
    });
    let (_, message) = waiting(container(&pod, "c"));
    assert!(
        message.contains("example.com/nope:1"),
        "ErrImagePull names the image: {message}"
    );
    let pod = agent.wait_pod("noimg", "ImagePullBackOff", WAIT, |p| {
        waiting(container(p, "c")).0 == "ImagePullBackOff"
    });
    let c = container(&pod, "c");
    let (_, message) = waiting(c);
    assert!(
        message.starts_with(r#"Back-off pulling image "example.com/nope:1""#),
        "ImagePullBackOff names the image: {message}"
    );
    assert_eq!(pod["status"]["phase"], "Pending");
    assert_eq!(c["restartCount"], 0);
    assert_eq!(c["ready"], false);
    let table = agent.ok(&["get", "pod", "noimg"]);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains("0/1") && row.contains("ImagePullBackOff"),
        "{table}"
    );
    let ev = wait_event(&agent, "BackOff pulling", |e| {
        e.contains(r#"Back-off pulling image "example.com/nope:1""#)
    });
    assert!(
        ev.lines()
            .any(|l| l.contains("Failed") && l.contains("ErrImagePull")),
        "{ev}"
    );
    agent.delete_and_check("noimg", "1");
}

#[test]
fn command_not_in_the_image_is_a_start_error_naming_the_executable() {
    let agent = Agent::start();
    agent.apply(
        "apiVersion: v1
kind: Pod
metadata: {name: nocmd}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox, command: [\"/no/such/binary\"]}
",
    );
    let pod = agent.wait_pod("nocmd", "StartError then CrashLoopBackOff", WAIT, |p| {
        let c = container(p, "c");
        waiting(c).0 == "CrashLoopBackOff" && c["lastState"]["terminated"]["reason"] == "StartError"
    });
    let c = container(&pod, "c");
    let terminated = &c["lastState"]["terminated"];
    let message = terminated["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/no/such/binary"),
        "the message names the executable: {terminated}"
    );
    assert_eq!(terminated["exitCode"], 128);
    // As the kubelet counts it: the status comes from the latest dead attempt, whose own
    // restart count is 0 on the first back-off.
    assert!(c["restartCount"].as_i64().is_some(), "{c}");
    assert_eq!(c["started"], false);
    // getPhase: with restartPolicy Always a container that failed and waits to restart
    // counts as "restarting", so the pod is Running (as a crash-looping pod on a cluster).
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(c["ready"], false);
    let (_, back_off) = waiting(c);
    assert!(
        back_off.starts_with("back-off ")
            && back_off.contains("restarting failed container=c pod=nocmd_default("),
        "{back_off}"
    );
    let ev = events(&agent);
    assert!(
        ev.lines().any(|l| l.contains("Warning")
            && l.contains("Failed")
            && l.contains("/no/such/binary")),
        "a Failed event names the executable:\n{ev}"
    );
    agent.delete_and_check("nocmd", "1");
}

#[test]
fn host_path_of_the_wrong_type_keeps_the_pod_pending_with_failed_mount() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let host = dir.path().join("a-directory");
    std::fs::create_dir(&host).unwrap();
    agent.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: hp}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: v
    hostPath: {{path: {}, type: File}}
  containers:
  - name: c
    image: busybox
    command: [sh, -c, \"touch /v/x; sleep 3600\"]
    volumeMounts: [{{name: v, mountPath: /v}}]
",
        host.display()
    ));
    let ev = wait_event(&agent, "FailedMount", |e| e.contains("FailedMount"));
    let line = ev.lines().find(|l| l.contains("FailedMount")).unwrap();
    assert!(
        line.contains("Warning") && line.contains("pod/hp"),
        "{line}"
    );
    assert!(line.contains("hostPath type check failed"), "{line}");
    assert!(
        line.contains(host.to_str().unwrap()),
        "the event names the path: {line}"
    );
    let pod = agent.pod("hp").unwrap();
    assert_eq!(pod["status"]["phase"], "Pending", "{pod:#}");
    assert_eq!(
        waiting(container(&pod, "c")).0,
        "ContainerCreating",
        "{pod:#}"
    );
    // The volume never mounts, so the container never starts: it still waits a moment later.
    std::thread::sleep(Duration::from_millis(1500));
    let pod = agent.pod("hp").unwrap();
    assert_eq!(pod["status"]["phase"], "Pending", "{pod:#}");
    assert_eq!(
        waiting(container(&pod, "c")).0,
        "ContainerCreating",
        "{pod:#}"
    );
    assert!(container(&pod, "c")["containerID"].is_null(), "{pod:#}");
    assert!(!host.join("x").exists());
    let table = agent.ok(&["get", "pod", "hp"]);
    assert!(
        table
            .lines()
            .nth(1)
            .unwrap_or_default()
            .contains("ContainerCreating"),
        "{table}"
    );
    agent.delete_and_check("hp", "1");
    assert!(host.is_dir(), "the host directory is left alone");
}

#[test]
fn sub_path_through_a_symlink_out_of_the_volume_is_refused() {
    let agent = Agent::start();
    let marker = format!("peapod-e2e-escape-{}", std::process::id());
    assert!(!Path::new("/etc").join(&marker).exists());
    agent.apply(&format!(
        "apiVersion: v1
kind: Pod
metadata: {{name: escape}}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: data, emptyDir: {{}}}}
  initContainers:
  - name: link
    image: busybox
    command: [sh, -c, \"ln -s /etc /data/escape\"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  containers:
  - name: app
    image: busybox
    command: [sh, -c, \"echo pwned > /x/{marker}; sleep 3600\"]
    volumeMounts: [{{name: data, mountPath: /x, subPath: escape}}]
"
    ));
    let pod = agent.wait_pod("escape", "CreateContainerConfigError", WAIT, |p| {
        waiting(container(p, "app")).0 == "CreateContainerConfigError"
    });
    let init = container(&pod, "link");
    assert_eq!(
        init["state"]["terminated"]["exitCode"], 0,
        "the init container ran: {init}"
    );
    let (_, message) = waiting(container(&pod, "app"));
    assert!(
        message.contains("escape") && message.contains("outside the volume"),
        "{message}"
    );
    // It stays refused: no crash loop (no container ever ran), never started.
    std::thread::sleep(Duration::from_millis(3000));
    let pod = agent.pod("escape").unwrap();
    let app = container(&pod, "app");
    assert_eq!(waiting(app).0, "CreateContainerConfigError", "{app}");
    assert_eq!(app["restartCount"], 0, "{app}");
    assert!(
        app["containerID"].is_null() && app["lastState"]["terminated"].is_null(),
        "never started: {app}"
    );
    assert_eq!(pod["status"]["phase"], "Pending");
    let ev = events(&agent);
    assert!(
        ev.lines()
            .any(|l| l.contains("Failed") && l.contains("outside the volume")),
        "{ev}"
    );
    assert!(
        !Path::new("/etc").join(&marker).exists(),
        "host /etc was written through the escape"
    );
    agent.delete_and_check("escape", "1");
    assert!(Path::new("/etc/passwd").exists());
}

#[test]
fn changing_a_pods_spec_is_forbidden_labels_may_change() {
    let agent = Agent::start();
    let manifest = sleeper("fc", "app: a");
    assert_eq!(agent.apply(&manifest).trim(), "pod/fc created");
    let pod = agent.wait_running("fc");
    let id = container(&pod, "c")["containerID"].clone();

    assert_eq!(agent.apply(&manifest).trim(), "pod/fc unchanged");

    let out = agent.cli_stdin(
        &["apply", "-f", "-"],
        &manifest.replace("\"3600\"", "\"7200\""),
    );
    assert_refused(
        &out,
        "Forbidden: pod updates may not change fields other than",
    );
    assert_stderr_has(&out, r#"Pod "fc" is invalid"#);
    let pod = agent.pod("fc").unwrap();
    assert_eq!(
        pod["spec"]["containers"][0]["command"][1], "3600",
        "the spec is unchanged"
    );
    assert_eq!(
        container(&pod, "c")["containerID"],
        id,
        "the container was not touched"
    );

    let out = agent.apply(&manifest.replace("app: a", "app: b"));
    assert_eq!(out.trim(), "pod/fc configured");
    assert_eq!(
        agent
            .ok(&["get", "pods", "-l", "app=b", "-o", "name"])
            .trim(),
        "pod/fc"
    );
    let out = agent.cli(&["get", "pods", "-l", "app=a", "-o", "name"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
    let pod = agent.pod("fc").unwrap();
    assert_eq!(
        container(&pod, "c")["containerID"],
        id,
        "a label change restarts nothing"
    );
    assert_eq!(container(&pod, "c")["restartCount"], 0);
    agent.delete_and_check("fc", "1");
}

#[test]
fn get_prints_kubectls_formats() {
    let agent = Agent::start();
    let node = host_name();
    agent.apply(&sleeper("web-a", "app: a"));
    agent.create_namespace("other");
    let out = agent.cli_stdin(
        &["apply", "-n", "other", "-f", "-"],
        &sleeper("web-b", "app: b"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(text(&out.stdout).trim(), "pod/web-b created");
    agent.wait_running("web-a");
    agent.wait_pod("web-a", "Ready", WAIT, |p| {
        p["status"]["conditions"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
    });

    // -o json: a v1 Pod with its status.
    let pod = agent.pod("web-a").unwrap();
    assert_eq!(pod["apiVersion"], "v1");
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"]["namespace"], "default");
    assert_eq!(pod["spec"]["nodeName"], node.as_str());
    let status = &pod["status"];
    assert_eq!(status["phase"], "Running");
    for condition in [
        "PodScheduled",
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
    ] {
        let found = crate::common::condition(&pod, condition);
        assert!(
            !found.is_null(),
            "condition {condition} missing: {status:#}"
        );
        assert_eq!(found["status"], "True", "{condition}: {found}");
        assert!(found["lastTransitionTime"].is_string(), "{found}");
    }
    assert!(
        status["hostIP"].as_str().is_some_and(|s| !s.is_empty()),
        "{status:#}"
    );
    assert!(
        status["startTime"]
            .as_str()
            .is_some_and(|s| s.ends_with('Z')),
        "{status:#}"
    );
    assert_eq!(status["qosClass"], "BestEffort");
    let c = container(&pod, "c");
    assert!(
        c["containerID"]
            .as_str()
            .is_some_and(|s| s.starts_with("peapod://")),
        "{c}"
    );
    assert!(
        c["imageID"]
            .as_str()
            .is_some_and(|s| s.contains("@sha256:")),
        "{c}"
    );
    assert_eq!(c["image"], "docker.io/library/busybox:latest");
    assert_eq!(c["started"], true);
    assert_eq!(c["ready"], true);
    assert_eq!(c["restartCount"], 0);
    assert!(c["state"]["running"]["startedAt"].is_string(), "{c}");

    // -o yaml parses as the same pod.
    let yaml = agent.ok(&["get", "pod", "web-a", "-o", "yaml"]);
    let parsed: Value = serde_yaml_ng::from_str(&yaml).expect("get -o yaml is YAML");
    assert_eq!(parsed["kind"], "Pod");
    assert_eq!(parsed["metadata"]["name"], "web-a");
    assert_eq!(parsed["metadata"]["uid"], pod["metadata"]["uid"]);
    assert_eq!(parsed["status"]["phase"], "Running");

    assert_eq!(
        agent.ok(&["get", "pod", "web-a", "-o", "name"]),
        "pod/web-a\n"
    );
    assert_eq!(
        agent.ok(&["get", "pods", "-o", "name"]),
        "pod/web-a\n",
        "default namespace only"
    );

    // The table.
    let table = agent.ok(&["get", "pods"]);
    assert_eq!(
        columns(&table, 0),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table}"
    );
    assert_eq!(
        &columns(&table, 1)[..4],
        ["web-a", "1/1", "Running", "0"],
        "{table}"
    );
    assert!(table.lines().nth(2).is_none(), "{table}");

    let wide = agent.ok(&["get", "pods", "-o", "wide"]);
    let header = wide.lines().next().unwrap();
    assert!(
        columns(&wide, 0)
            == [
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "IP",
                "NODE",
                "NOMINATED",
                "NODE",
                "READINESS",
                "GATES"
            ],
        "{wide}"
    );
    let row = wide.lines().nth(1).unwrap();
    let node_column = header.find(" NODE ").unwrap() + 1;
    assert_eq!(
        row[node_column..].split_whitespace().next(),
        Some(node.as_str()),
        "NODE is the host name:\n{wide}"
    );

    // Selectors and namespaces.
    assert_eq!(
        agent.ok(&["get", "pods", "-l", "app=a", "-o", "name"]),
        "pod/web-a\n"
    );
    let out = agent.cli(&["get", "pods", "-l", "app=b"]);
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "");
    assert_stderr_has(&out, "No resources found in default namespace.");
    assert_eq!(
        agent.ok(&["get", "pods", "-n", "other", "-o", "name"]),
        "pod/web-b\n"
    );
    let out = agent.cli(&["get", "pod", "web-b"]);
    assert_eq!(out.status.code(), Some(1));
    assert_stderr_has(&out, r#"pods "web-b" not found"#);
    let all = agent.ok(&["get", "pods", "-A"]);
    assert_eq!(
        columns(&all, 0),
        ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{all}"
    );
    let rows: Vec<Vec<&str>> = all
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().take(2).collect())
        .collect();
    assert!(
        rows.contains(&vec!["default", "web-a"]) && rows.contains(&vec!["other", "web-b"]),
        "{all}"
    );
    assert_eq!(rows.len(), 2, "{all}");

    let b_uid = serde_json::from_str::<Value>(
        &agent.ok(&["get", "pod", "web-b", "-n", "other", "-o", "json"]),
    )
    .unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        agent
            .ok(&[
                "delete",
                "pod",
                "web-b",
                "-n",
                "other",
                "--grace-period",
                "1"
            ])
            .trim(),
        r#"pod "web-b" deleted"#
    );
    agent.leak_check(&b_uid);
    agent.delete_and_check("web-a", "1");
}

#[test]
fn describe_and_events_show_the_pod_lifecycle() {
    let agent = Agent::start();
    agent.apply(&sleeper("life", "app: life"));
    agent.wait_running("life");
    let uid = agent.uid("life");
    let describe = agent.ok(&["describe", "pod", "life"]);
    assert!(
        describe.starts_with("Name:") && describe.contains("life"),
        "{describe}"
    );
    assert!(
        describe.contains("Status:") && describe.contains("Running"),
        "{describe}"
    );
    let events_section = describe
        .split("\nEvents:")
        .nth(1)
        .expect("an Events section");
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(
            events_section
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(reason)),
            "describe lacks {reason}:\n{describe}"
        );
    }
    let ev = events(&agent);
    assert_eq!(
        columns(&ev, 0),
        ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{ev}"
    );
    let reasons: Vec<&str> = ev
        .lines()
        .skip(1)
        .filter(|l| l.contains("pod/life"))
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    for reason in ["Scheduled", "Pulled", "Created", "Started"] {
        assert!(reasons.contains(&reason), "events lack {reason}:\n{ev}");
    }
    let pos = |r: &str| reasons.iter().position(|x| *x == r).unwrap();
    assert!(
        pos("Scheduled") < pos("Created") && pos("Created") < pos("Started"),
        "{ev}"
    );
    assert!(!reasons.contains(&"Killing"), "{ev}");

    agent.ok(&["delete", "pod", "life", "--grace-period", "1"]);
    assert!(agent.pod("life").is_none());
    let ev = events(&agent);
    assert!(
        ev.lines().any(|l| l.contains("Killing")
            && l.contains("pod/life")
            && l.contains("Stopping container c")),
        "a Killing event on delete:\n{ev}"
    );
    agent.leak_check(&uid);
}

#[test]
fn delete_by_name_file_all_and_a_missing_pod() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pods.yaml");
    std::fs::write(
        &file,
        format!(
            "{}---\n{}",
            sleeper("from-file-1", "app: f"),
            sleeper("from-file-2", "app: f")
        ),
    )
    .unwrap();
    agent.apply(&sleeper("by-slash", "app: s"));
    agent.apply_file(&file);
    agent.apply(&sleeper("rest-1", "app: r"));
    agent.apply(&sleeper("rest-2", "app: r"));
    let names = ["by-slash", "from-file-1", "from-file-2", "rest-1", "rest-2"];
    for name in names {
        agent.wait_running(name);
    }
    let uids: Vec<String> = names.iter().map(|n| agent.uid(n)).collect();

    // The form `get -o name` prints.
    let out = agent.ok(&["delete", "pod/by-slash", "--grace-period", "1"]);
    assert_eq!(out, "pod \"by-slash\" deleted\n");
    assert!(agent.pod("by-slash").is_none());
    agent.leak_check(&uids[0]);

    let out = agent.ok(&[
        "delete",
        "-f",
        file.to_str().unwrap(),
        "--grace-period",
        "1",
    ]);
    assert_eq!(
        out,
        "pod \"from-file-1\" deleted\npod \"from-file-2\" deleted\n"
    );
    agent.leak_check(&uids[1]);
    agent.leak_check(&uids[2]);
    assert_eq!(
        agent.ok(&["get", "pods", "-o", "name"]),
        "pod/rest-1\npod/rest-2\n"
    );

    let out = agent.ok(&["delete", "pods", "--all", "--grace-period", "1"]);
    assert_eq!(out, "pod \"rest-1\" deleted\npod \"rest-2\" deleted\n");
    agent.leak_check(&uids[3]);
    agent.leak_check(&uids[4]);

    for args in [&["delete", "pod", "x"][..], &["delete", "pod/x"]] {
        let out = agent.cli(args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            "Error from server (NotFound): pods \"x\" not found\n"
        );
        assert_eq!(text(&out.stdout), "");
    }
    assert_nothing_created(&agent);
}

#[test]
fn image_verbs_load_import_and_rmi() {
    let agent = Agent::start();
    // The harness loaded the OCI archive; the docker-save archive keeps its recorded name too.
    let out = agent.ok(&[
        "load",
        "-i",
        images_dir().join("busybox-docker.tar").to_str().unwrap(),
    ]);
    assert!(out.contains("docker.io/library/busybox:latest"), "{out}");
    let images = agent.ok(&["images"]);
    assert_eq!(
        columns(&images, 0),
        ["IMAGE", "TAG", "IMAGE", "ID", "SIZE"],
        "{images}"
    );
    assert!(
        images.lines().any(|l| l
            .split_whitespace()
            .take(2)
            .eq(["docker.io/library/busybox", "latest"])),
        "{images}"
    );

    let rootfs = images_dir().join("busybox-rootfs.tar");
    let out = agent.cli(&[
        "import",
        rootfs.to_str().unwrap(),
        "example.com/bb:1",
        "--change",
        "ENV PATH=/bin",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        text(&out.stdout).trim().starts_with("sha256:"),
        "import prints the image ID: {}",
        text(&out.stdout)
    );
    let images = agent.ok(&["images"]);
    assert!(
        images
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["example.com/bb", "1"])),
        "{images}"
    );

    agent.apply(
        "apiVersion: v1
kind: Pod
metadata: {name: imported}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: example.com/bb:1, command: [sleep, \"3600\"]}
",
    );
    let pod = agent.wait_running("imported");
    assert_eq!(container(&pod, "c")["image"], "example.com/bb:1");
    let (code, path, err) = agent.exec("imported", "c", &["sh", "-c", "echo $PATH"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        path.trim(),
        "/bin",
        "the --change ENV is in the image config"
    );

    let out = agent.cli(&["rmi", "example.com/bb:1"]);
    assert!(
        !out.status.success(),
        "rmi of an image in use must be refused"
    );
    assert_stderr_has(&out, "example.com/bb:1");
    assert!(
        agent.ok(&["images"]).contains("example.com/bb"),
        "still there"
    );

    agent.delete_and_check("imported", "1");
    let out = agent.ok(&["rmi", "example.com/bb:1"]);
    assert!(out.contains("example.com/bb:1"), "{out}");
    let images = agent.ok(&["images"]);
    assert!(!images.contains("example.com/bb"), "{images}");
    assert!(images.contains("docker.io/library/busybox"), "{images}");
}

/// A Namespace, a ConfigMap and a Secret in it, in two files read in name order.
fn config_files(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let namespace = dir.join("0-namespace.yaml");
    std::fs::write(
        &namespace,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: cfg\n  labels: {team: a}\n",
    )
    .unwrap();
    let config = dir.join("1-config.yaml");
    std::fs::write(
        &config,
        "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: cfg}
data:
  mode: fast
  motd: |
    hello
    world
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: cfg}
type: Opaque
stringData: {password: hunter2}
",
    )
    .unwrap();
    (namespace, config)
}

#[test]
fn every_served_kind_through_apply_get_describe_and_delete() {
    let agent = Agent::start();
    let dir = tempfile::tempdir().unwrap();
    let (namespace_file, config_file) = config_files(dir.path());
    let out = agent.ok(&["apply", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(
        out,
        "namespace/cfg created\nconfigmap/settings created\nsecret/creds created\n"
    );
    let out = agent.ok(&["apply", "-f", dir.path().to_str().unwrap()]);
    assert_eq!(
        out,
        "namespace/cfg unchanged\nconfigmap/settings unchanged\nsecret/creds unchanged\n"
    );

    // The server's columns, kubectl's layout.
    wait_until(Duration::from_secs(10), "kube-root-ca.crt in cfg", || {
        agent
            .ok(&["get", "cm", "-n", "cfg"])
            .contains("kube-root-ca.crt")
    });
    let table = agent.ok(&["get", "cm", "-n", "cfg"]);
    assert_eq!(columns(&table, 0), ["NAME", "DATA", "AGE"], "{table}");
    assert_eq!(
        &columns(&table, 1)[..2],
        ["kube-root-ca.crt", "1"],
        "{table}"
    );
    assert_eq!(&columns(&table, 2)[..2], ["settings", "2"], "{table}");
    let all = agent.ok(&["get", "configmaps,secrets", "-n", "cfg"]);
    let (config_maps, secrets) = all.split_once("\n\n").expect("two tables");
    assert!(config_maps.contains("\nconfigmap/settings "), "{all}");
    assert_eq!(
        columns(secrets, 0),
        ["NAME", "TYPE", "DATA", "AGE"],
        "{all}"
    );
    assert_eq!(
        &columns(secrets, 1)[..3],
        ["secret/creds", "Opaque", "1"],
        "{all}"
    );
    let namespaces = agent.ok(&["get", "ns"]);
    assert_eq!(
        columns(&namespaces, 0),
        ["NAME", "STATUS", "AGE"],
        "{namespaces}"
    );
    assert!(
        namespaces
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["cfg", "Active"])),
        "{namespaces}"
    );
    assert_eq!(
        agent.ok(&["get", "namespace/cfg", "-o", "name"]),
        "namespace/cfg\n"
    );
    let out = agent.cli(&["get", "cm", "-n", "default", "-l", "none=here"]);
    assert_stderr_has(&out, "No resources found in default namespace.");

    // -o yaml: the objects with their kind; the secret's value base64 as stored.
    let yaml = agent.ok(&["get", "secrets", "-n", "cfg", "-o", "yaml"]);
    let list: Value = serde_yaml_ng::from_str(&yaml).expect("YAML");
    assert_eq!(list["kind"], "List");
    let secret = &list["items"][0];
    assert_eq!(
        (secret["kind"].as_str(), secret["apiVersion"].as_str()),
        (Some("Secret"), Some("v1"))
    );
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");

    // describe: ConfigMap data, Secret sizes only, Namespace status.
    let describe = agent.ok(&["describe", "cm", "settings", "-n", "cfg"]);
    assert!(
        describe.starts_with("Name:         settings\nNamespace:    cfg\n"),
        "{describe}"
    );
    assert!(
        describe.contains("\nData\n====\nmode:\n----\nfast\n\nmotd:\n----\nhello\nworld\n\n"),
        "{describe}"
    );
    assert!(describe.ends_with("\nEvents:  <none>\n"), "{describe}");
    let describe = agent.ok(&["describe", "secret/creds", "-n", "cfg"]);
    assert!(describe.contains("\nType:  Opaque\n"), "{describe}");
    assert!(describe.contains("password:  7 bytes"), "{describe}");
    assert!(!describe.contains("hunter2"), "{describe}");
    let describe = agent.ok(&["describe", "ns", "cfg"]);
    assert!(
        describe.starts_with("Name:         cfg\nLabels:       "),
        "{describe}"
    );
    assert!(describe.contains("team=a"), "{describe}");
    assert!(describe.contains("\nStatus:       Active\n"), "{describe}");

    // A changed manifest replaces the object; a watch sees it as a row of the server's Table.
    let mut watch = std::process::Command::new(peapod_bin())
        .args(["get", "cm", "-n", "cfg", "-w"])
        .env("PEAPOD_ROOT", agent.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let changed = std::fs::read_to_string(&config_file)
        .unwrap()
        .replace("mode: fast", "mode: slow");
    let out = agent.cli_stdin(&["apply", "-f", "-"], &changed);
    std::thread::sleep(Duration::from_millis(500));
    watch.kill().unwrap();
    let watched = text(&watch.wait_with_output().unwrap().stdout);
    let names: Vec<&str> = watched
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        names,
        ["NAME", "kube-root-ca.crt", "settings", "settings"],
        "{watched}"
    );
    assert_eq!(
        text(&out.stdout),
        "configmap/settings configured\nsecret/creds unchanged\n",
        "{}",
        stderr(&out)
    );
    let live = agent.ok(&["get", "cm", "settings", "-n", "cfg", "-o", "json"]);
    let live: Value = serde_json::from_str(&live).unwrap();
    assert_eq!(live["data"]["mode"], "slow");

    // delete -f waits for each object to be gone; the namespace last.
    let out = agent.ok(&[
        "delete",
        "-f",
        config_file.to_str().unwrap(),
        "-f",
        namespace_file.to_str().unwrap(),
    ]);
    assert_eq!(
        out,
        "configmap \"settings\" deleted\nsecret \"creds\" deleted\nnamespace \"cfg\" deleted\n"
    );
    assert!(
        agent.api_try_get("/api/v1/namespaces/cfg").is_none(),
        "the namespace is gone"
    );
    let out = agent.cli(&["get", "cm", "settings", "-n", "cfg"]);
    assert_eq!(
        stderr(&out),
        "Error from server (NotFound): configmaps \"settings\" not found\n"
    );
}
