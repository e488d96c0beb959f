//! The kubectl verbs people use day to day, driven with the real kubectl against an agent and
//! judged by what kubectl prints and what the objects hold afterwards: `edit` through an
//! EDITOR script, `diff` over server-side dry runs, `apply -k`, `explain`, `top pod` and
//! `top node`, `get -w` in its forms, `wait`, `logs` (follow, all containers, previous,
//! since), secrets from files and the `get` output formats, and `delete` in the foreground,
//! with grace periods, `--all` and namespaces.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;
use serde::Deserialize as _;
use serde_json::{json, Value};

/// A ConfigMap manifest with one data entry.
fn configmap(name: &str, colour: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  colour: {colour}\n"
    )
}

/// A pod of one busybox container running `script`, gone 1 s after SIGTERM at the latest.
fn pod(name: &str, script: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sh, -c, '{script}']\n"
    )
}

/// A pod that ignores SIGTERM, killed `grace` seconds after a delete that names no grace
/// period of its own.
fn stubborn(name: &str, grace: u32) -> String {
    pod(name, "trap \"\" TERM; while :; do sleep 1; done").replace(
        "terminationGracePeriodSeconds: 1",
        &format!("terminationGracePeriodSeconds: {grace}"),
    )
}

/// kubectl with `env` added (EDITOR, TMPDIR): its output.
fn run_with(kubectl: &Kubectl, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = kubectl.command(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running kubectl")
}

/// Writes an executable shell script `name` into `dir`; its path.
fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// `kubectl edit cm/settings` with an editor that runs `sed -i EXPRESSION` on the file;
/// kubectl's temporary files go to `dir`.
fn edit(kubectl: &Kubectl, dir: &Path, expression: &str) -> Output {
    let editor = script(dir, "editor", &format!("sed -i '{expression}' \"$1\""));
    let args = ["edit", "cm/settings"];
    run_with(kubectl, &args, &[("EDITOR", &editor), ("TMPDIR", dir)])
}

/// The file named by kubectl's `A copy of your changes has been stored to "PATH"`.
fn stored_copy(stderr: &str) -> String {
    let path = stderr
        .split("has been stored to \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no stored copy named in: {stderr}"));
    std::fs::read_to_string(path).unwrap()
}

fn resource_version(kubectl: &Kubectl, object: &str) -> String {
    kubectl.ok(&["get", object, "-o", "jsonpath={.metadata.resourceVersion}"])
}

#[test]
fn edit_saves_a_change_and_refuses_an_invalid_one() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    kubectl.apply(&configmap("settings", "blue"));

    let edited = edit(&kubectl, dir.path(), "s/colour: blue/colour: green/");
    assert!(edited.status.success(), "{}", text(&edited.stderr));
    assert_eq!(text(&edited.stdout), "configmap/settings edited\n");
    let cm = kubectl.json(&["get", "cm", "settings"]);
    assert_eq!(cm["data"], json!({"colour": "green"}));

    let before = resource_version(&kubectl, "cm/settings");
    let untouched = edit(&kubectl, dir.path(), "s/nothing/matches/");
    assert!(untouched.status.success());
    assert_eq!(
        text(&untouched.stderr),
        "Edit cancelled, no changes made.\n"
    );

    // A key kube refuses: kubectl reopens the file with the server's causes, and gives up
    // when the second edit changes nothing.
    let invalid = edit(&kubectl, dir.path(), r#"s|colour: green|"no/slash": x|"#);
    assert_eq!(invalid.status.code(), Some(1));
    let stderr = text(&invalid.stderr);
    assert!(
        stderr.starts_with("error: configmaps \"settings\" is invalid\n"),
        "{stderr}"
    );
    assert!(
        stderr.ends_with("error: Edit cancelled, no valid changes were saved.\n"),
        "{stderr}"
    );
    let copy = stored_copy(&stderr);
    for line in [
        "# configmaps \"settings\" was not valid:",
        "# * data[no/slash]: Invalid value: \"no/slash\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
    ] {
        assert!(copy.lines().any(|l| l == line), "no {line:?} in:\n{copy}");
    }

    let renamed = edit(&kubectl, dir.path(), "s/name: settings/name: other/");
    assert_eq!(renamed.status.code(), Some(1));
    assert!(
        text(&renamed.stderr)
            .ends_with("error: At least one of apiVersion, kind and name was changed\n"),
        "{}",
        text(&renamed.stderr)
    );
    assert_eq!(resource_version(&kubectl, "cm/settings"), before);
    assert_eq!(kubectl.json(&["get", "cm", "settings"])["data"], cm["data"]);
    assert!(kubectl.fails(&["get", "cm", "other"]).contains("NotFound"));
    drop(agent);
}

/// `kubectl diff -f FILE` (kubectl's temporary files in `dir`): exit code and stdout.
fn diff(kubectl: &Kubectl, dir: &Path, file: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = diff_output(kubectl, dir, file, extra);
    assert!(out.stderr.is_empty(), "kubectl diff: {}", text(&out.stderr));
    (out.status.code(), text(&out.stdout))
}

fn diff_output(kubectl: &Kubectl, dir: &Path, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["diff", "-f", file.to_str().unwrap()];
    args.extend(extra);
    run_with(kubectl, &args, &[("TMPDIR", dir)])
}

/// The changed lines of a unified diff (`+` and `-` lines without the `+++`/`---` header).
fn changed_lines(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++"))
        .filter(|l| !l.starts_with("---"))
        .collect()
}

#[test]
fn diff_previews_changes_through_server_dry_runs() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.yaml");
    kubectl.ok(&[
        "create",
        "configmap",
        "settings",
        "--from-literal=colour=blue",
    ]);
    let before = resource_version(&kubectl, "cm/settings");

    // Made by `create`, so without a last-applied annotation: client-side apply's patch sets
    // `annotations: {}`, which kube-apiserver's decoding drops.
    std::fs::write(&file, configmap("settings", "red")).unwrap();
    let (code, out) = diff(&kubectl, dir.path(), &file, &[]);
    assert_eq!(code, Some(1), "{out}");
    let header = out.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("diff -u -N ") && header.ends_with("/v1.ConfigMap.default.settings"),
        "{out}"
    );
    assert!(out.contains("/LIVE-") && out.contains("/MERGED-"), "{out}");
    assert_eq!(
        changed_lines(&out),
        ["-  colour: blue", "+  colour: red"],
        "{out}"
    );
    assert_eq!(resource_version(&kubectl, "cm/settings"), before);

    // Server-side: the field `kubectl create` set is another manager's.
    let conflict = diff_output(&kubectl, dir.path(), &file, &["--server-side"]);
    assert_eq!(conflict.status.code(), Some(2));
    assert!(
        text(&conflict.stderr).ends_with("Error from server (Conflict): Apply failed with 1 conflict: conflict with \"kubectl-create\" using v1: .data.colour\n"),
        "{}",
        text(&conflict.stderr)
    );
    let forced = ["--server-side", "--force-conflicts"];
    let (code, out) = diff(&kubectl, dir.path(), &file, &forced);
    assert_eq!(code, Some(1), "{out}");
    assert_eq!(changed_lines(&out), ["-  colour: blue", "+  colour: red"]);

    kubectl.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert_eq!(
        diff(&kubectl, dir.path(), &file, &[]),
        (Some(0), String::new())
    );

    // A new object: its whole dry-run creation is added, and nothing is created.
    let fresh = dir.path().join("fresh.yaml");
    let manifest = format!(
        "{}---\n{}",
        configmap("fresh", "teal"),
        pod("ghost", "sleep 60")
    );
    std::fs::write(&fresh, manifest).unwrap();
    let (code, out) = diff(&kubectl, dir.path(), &fresh, &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("@@ -0,0 +1,"), "{out}");
    for added in [
        "+  colour: teal",
        "+  name: fresh",
        "+  name: ghost",
        "+  uid: ",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(added)),
            "no {added:?} in:\n{out}"
        );
    }
    assert!(kubectl.fails(&["get", "cm", "fresh"]).contains("NotFound"));
    assert!(kubectl.fails(&["get", "pod", "ghost"]).contains("NotFound"));
    assert!(std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().starts_with("LIVE-")));
    drop(agent);
}

/// The name `kubectl kustomize DIR` gives the generated ConfigMap `dev-settings-<hash>`.
fn generated_name(kubectl: &Kubectl, dir: &Path) -> String {
    let built = kubectl.ok(&["kustomize", dir.to_str().unwrap()]);
    let names: Vec<String> = serde_yaml_ng::Deserializer::from_str(&built)
        .map(|doc| Value::deserialize(doc).unwrap())
        .filter_map(|doc| doc["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    names
        .into_iter()
        .find(|name| name.starts_with("dev-settings-"))
        .unwrap_or_else(|| panic!("no generated ConfigMap in:\n{built}"))
}

fn kustomization(colour: &str) -> String {
    format!(
        "namePrefix: dev-\ncommonLabels:\n  app: shop\nresources:\n- plain.yaml\nconfigMapGenerator:\n- name: settings\n  literals:\n  - colour={colour}\n"
    )
}

#[test]
fn apply_k_builds_generated_configmaps_and_reapplies() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    std::fs::write(dir.path().join("plain.yaml"), configmap("plain", "grey")).unwrap();
    std::fs::write(dir.path().join("kustomization.yaml"), kustomization("blue")).unwrap();

    let first = generated_name(&kubectl, dir.path());
    assert_eq!(first.len(), "dev-settings-".len() + 10, "{first}");
    assert_eq!(
        kubectl.ok(&["apply", "-k", path]),
        format!("configmap/dev-plain created\nconfigmap/{first} created\n")
    );
    let generated = kubectl.json(&["get", "cm", &first]);
    assert_eq!(generated["data"], json!({"colour": "blue"}));
    assert_eq!(generated["metadata"]["labels"], json!({"app": "shop"}));
    let labelled = kubectl.ok(&["get", "cm", "-l", "app=shop", "-o", "name"]);
    assert_eq!(
        labelled,
        format!("configmap/dev-plain\nconfigmap/{first}\n")
    );

    std::fs::write(
        dir.path().join("kustomization.yaml"),
        kustomization("green"),
    )
    .unwrap();
    let second = generated_name(&kubectl, dir.path());
    assert_ne!(second, first, "a new hash for new content");
    assert_eq!(
        kubectl.ok(&["apply", "-k", path]),
        format!("configmap/dev-plain unchanged\nconfigmap/{second} created\n")
    );
    let green = kubectl.json(&["get", "cm", &second]);
    assert_eq!(green["data"], json!({"colour": "green"}));
    assert_eq!(
        kubectl.json(&["get", "cm", &first])["data"]["colour"],
        "blue"
    );

    assert_eq!(
        kubectl.ok(&["delete", "-k", path]),
        format!("configmap \"dev-plain\" deleted\nconfigmap \"{second}\" deleted\n")
    );
    assert_eq!(
        kubectl.ok(&["get", "cm", "-l", "app=shop", "-o", "name"]),
        format!("configmap/{first}\n")
    );
    drop(agent);
}

/// The `NAME\t<TYPE>` lines of an explain listing indented by `indent` spaces.
fn fields_at(listing: &str, indent: usize) -> Vec<&str> {
    listing
        .lines()
        .filter(|l| l.len() > indent && l[..indent].trim().is_empty())
        .filter(|l| !l[indent..].starts_with(' ') && l.contains('\t'))
        .map(|l| &l[indent..])
        .collect()
}

#[test]
fn explain_reads_the_openapi_schemas() {
    let (agent, kubectl) = start_with_kubectl();
    let containers = kubectl.ok(&["explain", "pod.spec.containers"]);
    let head: Vec<&str> = containers.lines().take(4).collect();
    assert_eq!(
        head,
        [
            "KIND:       Pod",
            "VERSION:    v1",
            "",
            "FIELD: containers <[]Container>"
        ],
        "{containers}"
    );
    assert!(
        containers.contains("DESCRIPTION:\n    List of containers belonging to the pod."),
        "{containers}"
    );
    let fields = fields_at(&containers, 2);
    for field in [
        "args\t<[]string>",
        "image\t<string>",
        "name\t<string> -required-",
    ] {
        assert!(fields.contains(&field), "no {field:?} in {fields:?}");
    }
    assert!(
        fields.contains(&"resources\t<ResourceRequirements>"),
        "{fields:?}"
    );

    let recursive = kubectl.ok(&["explain", "configmap", "--recursive"]);
    assert!(
        recursive.starts_with("KIND:       ConfigMap\nVERSION:    v1\n"),
        "{recursive}"
    );
    assert_eq!(
        fields_at(&recursive, 2),
        [
            "apiVersion\t<string>",
            "binaryData\t<map[string]string>",
            "data\t<map[string]string>",
            "immutable\t<boolean>",
            "kind\t<string>",
            "metadata\t<ObjectMeta>",
        ],
        "{recursive}"
    );
    let meta = fields_at(&recursive, 4);
    for field in [
        "annotations\t<map[string]string>",
        "labels\t<map[string]string>",
        "ownerReferences\t<[]OwnerReference>",
        "uid\t<string>",
    ] {
        assert!(meta.contains(&field), "no {field:?} in {meta:?}");
    }
    assert!(fields_at(&recursive, 6).contains(&"uid\t<string> -required-"));

    let missing = kubectl.fails(&["explain", "pod.spec.nosuch"]);
    assert_eq!(missing, "error: field \"nosuch\" does not exist\n");
    drop(agent);
}

/// The whitespace-separated cells of each row of a table, header included.
fn table(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// "123m" or "45Mi" without its unit.
fn amount(cell: &str, unit: &str) -> u64 {
    cell.strip_suffix(unit)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{cell:?} is not a {unit} amount"))
}

fn node_name(kubectl: &Kubectl) -> String {
    let name = kubectl.ok(&["get", "nodes", "-o", "name"]);
    name.trim().trim_start_matches("node/").to_owned()
}

#[test]
fn top_pod_and_top_node_through_the_metrics_api() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(&pod("burner", "while :; do :; done"));
    agent.wait_running("burner");
    let uid = agent.uid("burner");
    let busy = |out: &Output| {
        let listed = text(&out.stdout);
        let rows = table(&listed);
        out.status.success() && rows.len() == 2 && amount(rows[1][1], "m") >= 200
    };
    let pods = poll(
        Duration::from_secs(30),
        Duration::from_millis(500),
        || kubectl.run(&["top", "pod"], None),
        busy,
    );
    assert!(busy(&pods), "{}{}", text(&pods.stdout), text(&pods.stderr));
    let listed = text(&pods.stdout);
    let rows = table(&listed);
    assert_eq!(rows[0], ["NAME", "CPU(cores)", "MEMORY(bytes)"]);
    assert_eq!(rows[1][0], "burner");

    let node = node_name(&kubectl);
    let nodes = kubectl.ok(&["top", "node"]);
    let rows = table(&nodes);
    assert_eq!(
        rows[0],
        ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"],
        "{nodes}"
    );
    assert_eq!(rows.len(), 2, "{nodes}");
    assert_eq!(rows[1][0], node);
    assert!(
        amount(rows[1][1], "m") >= 200,
        "the burner runs on it: {nodes}"
    );
    // The percentages are of the node's allocatable cpu and memory.
    let allocatable = |resource: &str| {
        let path = format!("jsonpath={{.status.allocatable.{resource}}}");
        kubectl.ok(&["get", "node", &node, "-o", &path])
    };
    let cpus: u64 = allocatable("cpu").parse().expect("whole cpus");
    let cpu = amount(rows[1][1], "m") * 100 / (cpus * 1000);
    assert!(amount(rows[1][2], "%").abs_diff(cpu) <= 1, "{nodes}");
    let memory = amount(rows[1][3], "Mi");
    let memory_percent = memory * 1024 * 100 / amount(&allocatable("memory"), "Ki");
    assert!(memory > 0, "{nodes}");
    assert!(
        amount(rows[1][4], "%").abs_diff(memory_percent) <= 1,
        "{nodes}"
    );

    let named = kubectl.ok(&["top", "node", &node, "--no-headers"]);
    assert_eq!(table(&named).len(), 1);
    assert_eq!(table(&named)[0][0], node);
    let metrics: Value = serde_json::from_str(&kubectl.ok(&[
        "get",
        "--raw",
        &format!("/apis/metrics.k8s.io/v1beta1/nodes/{node}"),
    ]))
    .unwrap();
    assert_eq!(metrics["kind"], "NodeMetrics");
    assert_eq!(
        metrics["metadata"]["labels"]["kubernetes.io/hostname"],
        node.as_str()
    );
    timestamp(&metrics["timestamp"]);
    assert_eq!(
        kubectl.fails(&["top", "node", "nosuch"]),
        "Error from server (NotFound): node \"nosuch\" not found\n"
    );
    assert_eq!(
        kubectl.fails(&["top", "node", "-l", "no=such"]),
        "error: metrics not available yet\n"
    );

    kubectl.ok(&["delete", "pod", "burner"]);
    agent.leak_check(&uid);
}

/// Parses a stream of concatenated JSON documents (`get -w -o json`).
fn json_stream(text: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .collect()
}

/// The (event, name, status) rows of `get pods -w --output-watch-events`.
fn watch_rows(out: &str) -> Vec<(String, String, String)> {
    table(out)
        .iter()
        .skip(1)
        .filter(|row| row.len() >= 4)
        .map(|row| (row[0].to_owned(), row[1].to_owned(), row[3].to_owned()))
        .collect()
}

#[test]
fn get_watch_streams_rows_and_events() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(&configmap("before", "grey"));
    // kubectl prints nothing for an empty list: its request log (-v=6) tells when it watches.
    let pods = kubectl.start(&["get", "pods", "-w", "-v=6"]);
    let pod_events = kubectl.start(&["get", "pods", "-w", "--output-watch-events", "-v=6"]);
    let pod_json = kubectl.start(&["get", "pods", "-w", "-o", "json", "-v=6"]);
    let cms = kubectl.start(&["get", "cm", "-w"]);
    let cm_json = kubectl.start(&["get", "cm", "-w", "-o", "json", "--output-watch-events"]);
    cms.wait_for("the existing ConfigMap", |out| out.contains("before"));
    cm_json.wait_for("the existing ConfigMap", |out| out.contains("\"before\""));
    for watch in [&pods, &pod_events, &pod_json] {
        wait_until(Duration::from_secs(30), "the pod watches started", || {
            watch.stderr().contains("&watch=true 200 OK")
        });
    }

    kubectl.apply(&configmap("watched", "blue"));
    kubectl.ok(&["label", "cm", "watched", "seen=yes"]);
    kubectl.ok(&["delete", "cm", "watched"]);
    kubectl.apply(&pod(
        "runner",
        "trap \"exit 0\" TERM; while :; do sleep 1; done",
    ));
    agent.wait_running("runner");
    let uid = agent.uid("runner");
    kubectl.ok(&["delete", "pod", "runner"]);

    let events = cm_json.wait_for("the deletion", |out| {
        json_stream(out).iter().any(|e| e["type"] == "DELETED")
    });
    let seen: Vec<Value> = json_stream(&events)
        .iter()
        .map(|e| {
            let meta = &e["object"]["metadata"];
            json!([e["type"], meta["name"], meta["labels"]])
        })
        .collect();
    assert_eq!(
        Value::Array(seen),
        json!([
            ["ADDED", "before", null],
            ["ADDED", "kube-root-ca.crt", null],
            ["ADDED", "watched", null],
            ["MODIFIED", "watched", {"seen": "yes"}],
            ["DELETED", "watched", {"seen": "yes"}],
        ]),
        "{events}"
    );
    cms.wait_for("a row for each event", |out| {
        out.matches("watched").count() == 3
    });
    let rows = cms.stop();
    assert_eq!(columns(&rows, 0), ["NAME", "DATA", "AGE"], "{rows}");
    let names: Vec<&str> = table(&rows).iter().skip(1).map(|r| r[0]).collect();
    assert_eq!(
        names,
        [
            "before",
            "kube-root-ca.crt",
            "watched",
            "watched",
            "watched"
        ],
        "{rows}"
    );

    let last = pod_events.wait_for("the pod's deletion", |out| {
        watch_rows(out)
            .iter()
            .any(|(event, _, _)| event == "DELETED")
    });
    let rows = watch_rows(&last);
    assert_eq!(columns(&last, 0)[..3], ["EVENT", "NAME", "READY"], "{last}");
    assert_eq!(rows.first().map(|r| r.0.as_str()), Some("ADDED"), "{last}");
    assert!(rows.iter().all(|(_, name, _)| name == "runner"), "{last}");
    let statuses: Vec<&str> = rows.iter().map(|(_, _, status)| status.as_str()).collect();
    for status in ["Pending", "Running", "Terminating"] {
        assert!(statuses.contains(&status), "no {status} in {statuses:?}");
    }
    pods.wait_for("the terminating pod", |out| out.contains("Terminating"));
    let table_rows = pods.stop();
    assert_eq!(
        columns(&table_rows, 0),
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        "{table_rows}"
    );
    let running = ["runner", "1/1", "Running"];
    assert!(
        table(&table_rows)
            .iter()
            .any(|r| r.get(..3) == Some(&running[..])),
        "{table_rows}"
    );
    let deleting = |pod: &Value| pod["metadata"]["deletionTimestamp"].is_string();
    pod_json.wait_for("the pod deleting", |out| {
        json_stream(out).last().is_some_and(deleting)
    });
    let objects = json_stream(&pod_json.stop());
    let phases: Vec<&str> = objects
        .iter()
        .filter_map(|pod| pod["status"]["phase"].as_str())
        .collect();
    assert_eq!(phases.first(), Some(&"Pending"), "{phases:?}");
    assert!(phases.contains(&"Running"), "{phases:?}");
    pod_events.stop();
    cm_json.stop();
    agent.leak_check(&uid);
}

/// `kubectl wait --for=CONDITION OBJECT --timeout=TIMEOUT`.
fn wait(kubectl: &Kubectl, condition: &str, object: &str, timeout: &str) -> Output {
    let args = [
        "wait",
        &format!("--for={condition}"),
        object,
        &format!("--timeout={timeout}"),
    ];
    kubectl.run(&args, None)
}

#[test]
fn wait_for_conditions_fields_and_deletion() {
    let (agent, kubectl) = start_with_kubectl();
    // Three seconds to go once deleted, so that a wait for its deletion is well under way.
    kubectl.apply(&stubborn("sleeper", 3));
    kubectl.apply(&configmap("settings", "blue"));
    let met = [
        (
            "condition=Ready",
            "pod/sleeper",
            "pod/sleeper condition met\n",
        ),
        (
            "jsonpath={.status.phase}=Running",
            "pod/sleeper",
            "pod/sleeper condition met\n",
        ),
        (
            "jsonpath={.data.colour}=blue",
            "cm/settings",
            "configmap/settings condition met\n",
        ),
    ];
    for (condition, object, expected) in met {
        let out = wait(&kubectl, condition, object, "60s");
        assert!(out.status.success(), "{condition}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), expected);
    }
    let pod = kubectl.json(&["get", "pod", "sleeper"]);
    assert_eq!(condition(&pod, "Ready")["status"], "True");
    let red = wait(&kubectl, "jsonpath={.data.colour}=red", "cm/settings", "2s");
    assert_eq!(red.status.code(), Some(1));
    assert_eq!(
        text(&red.stderr),
        "error: timed out waiting for the condition on configmaps/settings\n"
    );

    let uid = agent.uid("sleeper");
    let waiting = kubectl.start(&["wait", "--for=delete", "pod/sleeper", "--timeout=60s"]);
    std::thread::sleep(Duration::from_millis(500));
    kubectl.ok(&["delete", "pod", "sleeper", "--wait=false"]);
    let (status, out, err) = waiting.finish(Duration::from_secs(60));
    assert!(status.success(), "{err}");
    assert_eq!(out, "pod/sleeper condition met\n");
    let gone = agent.pod("sleeper").is_none();
    assert!(gone, "the wait ended before the pod was gone");
    assert_eq!(kubectl.ok(&["wait", "--for=delete", "pod/sleeper"]), "");
    agent.leak_check(&uid);
}

/// A pod whose `ticker` prints `tick N` every 300 ms and whose `once` fails once ("first
/// run") and then stays up ("second run"), remembering across restarts in an emptyDir.
const LOGGER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: logger
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: state
    emptyDir: {}
  containers:
  - name: ticker
    image: busybox
    command: [sh, -c, 'i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.3; done']
  - name: once
    image: busybox
    volumeMounts:
    - {name: state, mountPath: /state}
    command: [sh, -c, 'if [ -e /state/ran ]; then echo second run; exec sleep 3600; fi; touch /state/ran; echo first run; exit 3']
"#;

/// The numbers of the `tick N` lines of a log.
fn ticks(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect()
}

#[test]
fn logs_follow_all_containers_previous_and_since() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(LOGGER);
    let pod = agent.wait_pod("logger", "once restarted", Duration::from_secs(60), |p| {
        all_running(p) && container(p, "once")["restartCount"] == 1
    });
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_owned();

    let follow = kubectl.start(&["logs", "-f", "logger", "-c", "ticker"]);
    let first = follow.wait_for("some ticks", |out| ticks(out).len() >= 2);
    let seen = *ticks(&first).last().unwrap();
    let later = follow.wait_for("a tick printed after kubectl started", |out| {
        ticks(out).last().is_some_and(|n| *n >= seen + 3)
    });
    let numbers = ticks(&later);
    assert_eq!(
        numbers,
        (1..=*numbers.last().unwrap()).collect::<Vec<_>>(),
        "{later}"
    );
    follow.stop();

    wait_until(Duration::from_secs(10), "the second run's log", || {
        kubectl.ok(&["logs", "logger", "-c", "once"]) == "second run\n"
    });
    assert_eq!(
        kubectl.ok(&["logs", "logger", "-c", "once", "--previous"]),
        "first run\n"
    );
    let none = kubectl.fails(&["logs", "logger", "-c", "ticker", "--previous"]);
    assert_eq!(
        none,
        "Error from server (BadRequest): previous terminated container \"ticker\" in pod \"logger\" not found\n"
    );

    let all = kubectl.ok(&["logs", "logger", "--all-containers", "--prefix"]);
    let (ticker, once): (Vec<&str>, Vec<&str>) = all
        .lines()
        .partition(|l| l.starts_with("[pod/logger/ticker] tick "));
    assert!(!ticker.is_empty(), "{all}");
    assert_eq!(once, ["[pod/logger/once] second run"], "{all}");

    std::thread::sleep(Duration::from_secs(3));
    let recent = kubectl.ok(&[
        "logs",
        "logger",
        "-c",
        "ticker",
        "--since=1s",
        "--timestamps",
    ]);
    let whole = kubectl.ok(&["logs", "logger", "-c", "ticker"]);
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(3);
    assert!(
        !recent.is_empty() && ticks(&recent).len() < ticks(&whole).len(),
        "{recent}"
    );
    for line in recent.lines() {
        let stamp: jiff::Timestamp = line.split(' ').next().unwrap().parse().unwrap();
        assert!(stamp > since, "{line} is older than --since=1s");
    }

    kubectl.ok(&["delete", "pod", "logger"]);
    agent.leak_check(&uid);
}

/// The decoded value of `key` in secret `name`, through kubectl's go-template.
fn secret_value(kubectl: &Kubectl, name: &str, key: &str) -> String {
    let template = format!("go-template={{{{index .data \"{key}\" | base64decode}}}}");
    kubectl.ok(&["get", "secret", name, "-o", &template])
}

#[test]
fn secrets_from_files_and_get_output_formats() {
    let (agent, kubectl) = start_with_kubectl();
    let dir = tempfile::tempdir().unwrap();
    let password = dir.path().join("password.txt");
    let env = dir.path().join("app.env");
    std::fs::write(&password, "s3cr3t\n").unwrap();
    std::fs::write(&env, "user=admin\n# a comment\n\nTOKEN=abc=def\n").unwrap();
    let from_file = format!("--from-file={}", password.display());
    let renamed = format!("--from-file=renamed={}", env.display());
    let created = kubectl.ok(&["create", "secret", "generic", "files", &from_file, &renamed]);
    assert_eq!(created, "secret/files created\n");
    assert_eq!(secret_value(&kubectl, "files", "password.txt"), "s3cr3t\n");
    assert_eq!(
        secret_value(&kubectl, "files", "renamed"),
        std::fs::read_to_string(&env).unwrap()
    );
    let env_file = format!("--from-env-file={}", env.display());
    kubectl.ok(&["create", "secret", "generic", "env", &env_file]);
    let keys = kubectl.ok(&["get", "secret", "env", "-o", "jsonpath={.data}"]);
    assert_eq!(keys, r#"{"TOKEN":"YWJjPWRlZg==","user":"YWRtaW4="}"#);
    assert_eq!(secret_value(&kubectl, "env", "TOKEN"), "abc=def");
    let secrets = kubectl.ok(&["get", "secrets"]);
    let rows: Vec<Vec<&str>> = table(&secrets)
        .into_iter()
        .map(|r| r[..3].to_vec())
        .collect();
    assert_eq!(
        rows,
        [
            ["NAME", "TYPE", "DATA"],
            ["env", "Opaque", "2"],
            ["files", "Opaque", "2"]
        ],
        "{secrets}"
    );

    for (name, colour, tier) in [
        ("cherry", "red", "front"),
        ("apple", "green", "back"),
        ("plum", "blue", ""),
    ] {
        kubectl.apply(&configmap(name, colour));
        if !tier.is_empty() {
            kubectl.ok(&["label", "cm", name, &format!("tier={tier}")]);
        }
    }
    let columns = kubectl.ok(&[
        "get",
        "cm",
        "-o",
        "custom-columns=NAME:.metadata.name,COLOUR:.data.colour,TIER:.metadata.labels.tier",
    ]);
    assert_eq!(
        table(&columns),
        [
            ["NAME", "COLOUR", "TIER"],
            ["apple", "green", "back"],
            ["cherry", "red", "front"],
            // Every namespace's CA bundle, published as kube-controller-manager does.
            ["kube-root-ca.crt", "<none>", "<none>"],
            ["plum", "blue", "<none>"],
        ]
    );
    let by_colour = kubectl.ok(&["get", "cm", "--sort-by=.data.colour", "-o", "name"]);
    assert_eq!(
        by_colour,
        // kubectl sorts an object without the field first.
        "configmap/kube-root-ca.crt\nconfigmap/plum\nconfigmap/apple\nconfigmap/cherry\n"
    );
    let path = kubectl.ok(&[
        "get",
        "cm",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name}={.data.colour}{"\n"}{end}"#,
    ]);
    assert_eq!(
        path,
        "apple=green\ncherry=red\nkube-root-ca.crt=\nplum=blue\n"
    );
    let labels = kubectl.ok(&["get", "cm", "--show-labels", "-L", "tier"]);
    let rows = table(&labels);
    assert_eq!(
        rows[0],
        ["NAME", "DATA", "AGE", "TIER", "LABELS"],
        "{labels}"
    );
    assert_eq!(
        (rows[1][0], &rows[1][3..]),
        ("apple", &["back", "tier=back"][..])
    );
    assert_eq!(
        (rows[4][0], &rows[4][3..]),
        ("plum", &["<none>"][..]),
        "{labels}"
    );

    // The last label removed leaves no `labels: {}` behind, as kube's decoding drops it.
    kubectl.ok(&["label", "cm", "apple", "tier-"]);
    let apple = kubectl.json(&["get", "cm", "apple"]);
    assert!(apple["metadata"].get("labels").is_none(), "{apple:#}");
    drop(agent);
}

fn gone(kubectl: &Kubectl, object: &str) -> bool {
    !kubectl.run(&["get", object], None).status.success()
}

/// The three cascades' end states are e2e_gc's `kubectl_delete_cascades`; here, what a
/// foreground deletion looks like while a dependent holds it up.
#[test]
fn delete_in_the_foreground_waits_for_a_held_dependent() {
    let (agent, kubectl) = start_with_kubectl();
    kubectl.apply(&configmap("boss", "grey"));
    let uid = kubectl.ok(&["get", "cm", "boss", "-o", "jsonpath={.metadata.uid}"]);
    kubectl.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker\n  finalizers: [example.com/hold]\n  ownerReferences:\n  - {{apiVersion: v1, kind: ConfigMap, name: boss, uid: {uid}, blockOwnerDeletion: true}}\n"
    ));
    let out = kubectl.run(
        &[
            "delete",
            "cm",
            "boss",
            "--cascade=foreground",
            "--timeout=3s",
        ],
        None,
    );
    assert_eq!(text(&out.stdout), "configmap \"boss\" deleted\n");
    assert_eq!(
        text(&out.stderr),
        "error: timed out waiting for the condition on configmaps/boss\n"
    );
    let boss = kubectl.json(&["get", "cm", "boss"]);
    assert_eq!(
        boss["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(
        boss["metadata"]["deletionTimestamp"].is_string(),
        "{boss:#}"
    );
    let worker = kubectl.json(&["get", "cm", "worker"]);
    assert!(
        worker["metadata"]["deletionTimestamp"].is_string(),
        "{worker:#}"
    );

    let release = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;
    kubectl.ok(&["patch", "cm", "worker", "--type=json", "-p", release]);
    wait_until(Duration::from_secs(30), "owner and dependent gone", || {
        gone(&kubectl, "cm/worker") && gone(&kubectl, "cm/boss")
    });
    drop(agent);
}

/// `delete pod NAME ARGS` (kubectl waits until it is gone) seen through a watch: the grace
/// period the pod was marked with, and how many seconds after the request its container was
/// killed (the agent's own timing).
fn timed_delete(agent: &Agent, kubectl: &Kubectl, name: &str, args: &[&str]) -> (Value, i64) {
    let watch = agent.watch_pod(name);
    let mut all = vec!["delete", "pod", name];
    all.extend(args);
    assert_eq!(kubectl.ok(&all), format!("pod \"{name}\" deleted\n"));
    assert!(agent.pod(name).is_none());
    let seen = watch.stop();
    let (after, terminated) = finished_after_delete(&seen, "c");
    assert_eq!(terminated["exitCode"], 137, "killed: {terminated}");
    let marked = seen
        .iter()
        .rev()
        .find_map(|e| e["object"]["metadata"].get("deletionGracePeriodSeconds"));
    (marked.cloned().unwrap_or_default(), after)
}

#[test]
fn delete_with_grace_periods_all_and_namespaces() {
    let (agent, kubectl) = start_with_kubectl();
    for name in ["slow", "quick", "forced"] {
        kubectl.apply(&stubborn(name, 60));
    }
    let uids: Vec<String> = ["slow", "quick", "forced"]
        .iter()
        .map(|name| {
            agent.wait_running(name)["metadata"]["uid"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();

    let (grace, after) = timed_delete(&agent, &kubectl, "slow", &["--grace-period=3"]);
    assert_eq!(grace, 3);
    assert!(
        (3..=6).contains(&after),
        "killed {after} s after the request"
    );
    let (grace, after) = timed_delete(&agent, &kubectl, "quick", &["--now"]);
    assert_eq!(grace, 1);
    assert!(
        (1..=4).contains(&after),
        "killed {after} s after the request"
    );
    let forced = kubectl.run(
        &["delete", "pod", "forced", "--grace-period=0", "--force"],
        None,
    );
    assert_eq!(text(&forced.stdout), "pod \"forced\" force deleted\n");
    assert!(
        text(&forced.stderr).starts_with("Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated."),
        "{}",
        text(&forced.stderr)
    );
    assert!(agent.pod("forced").is_none());
    for uid in &uids {
        agent.leak_check(uid);
    }

    kubectl.ok(&["create", "namespace", "team"]);
    for name in ["a", "b"] {
        kubectl.ok(&["create", "configmap", name, "-n", "team"]);
    }
    let all = kubectl.ok(&["delete", "cm", "--all", "-n", "team"]);
    assert_eq!(
        all,
        "configmap \"a\" deleted\nconfigmap \"b\" deleted\nconfigmap \"kube-root-ca.crt\" deleted\n"
    );
    // The namespace's CA bundle comes back, published again; nothing else does.
    let names = || kubectl.ok(&["get", "cm", "-n", "team", "-o", "name"]);
    wait_until(Duration::from_secs(10), "kube-root-ca.crt again", || {
        names() == "configmap/kube-root-ca.crt\n"
    });

    kubectl.with_manifest(&["apply", "-n", "team"], &pod("inside", "sleep 3600"));
    kubectl.ok(&["create", "configmap", "c", "-n", "team"]);
    let inside = kubectl.json(&["get", "pod", "inside", "-n", "team"]);
    let deleted = kubectl.ok(&["delete", "namespace", "team", "--timeout=60s"]);
    assert_eq!(deleted, "namespace \"team\" deleted\n");
    assert!(kubectl
        .fails(&["get", "namespace", "team"])
        .contains("NotFound"));
    let listed = kubectl.run(&["get", "pods,cm", "-n", "team"], None);
    assert_eq!(
        text(&listed.stderr),
        "No resources found in team namespace.\n"
    );

    for namespace in ["default", "kube-system"] {
        assert_eq!(
            kubectl.fails(&["delete", "namespace", namespace, "--dry-run=server"]),
            format!("Error from server (Forbidden): namespaces \"{namespace}\" is forbidden: this namespace may not be deleted\n")
        );
    }
    kubectl.fails(&["delete", "namespace", "default"]);
    assert!(kubectl
        .ok(&["get", "namespace", "default"])
        .contains("Active"));
    agent.leak_check(inside["metadata"]["uid"].as_str().unwrap());
}
