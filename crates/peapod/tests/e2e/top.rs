//! `peapod top pod` against real containers: a CPU burner and a memory hog measured from their
//! cgroups, printed as kubectl top prints them, and kubectl's errors when there is nothing to
//! measure.

use std::io::{Read, Write};
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

const POD: &str = "top-demo";

/// The hog keeps 30 MiB in a shell variable; its `sleep` must not be the script's last
/// command, which busybox sh would exec in place of the shell (freeing the memory).
const MANIFEST: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: top-demo
  labels: {app: top}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: burner
    image: busybox
    command: ["sh", "-c", "while :; do :; done"]
  - name: hog
    image: busybox
    command: ["sh", "-c", "x=$(head -c 31457280 /dev/zero | tr '\\0' a); while :; do sleep 3600; done"]
"#;

/// One row of a `top` table: its cells, and CPU / memory parsed from "{n}m" / "{n}Mi".
#[derive(Debug)]
struct Row {
    cells: Vec<String>,
    millicores: u64,
    mebibytes: u64,
}

/// The rows (header skipped) of a `top` table whose last two columns are CPU and memory.
fn rows(table: &str) -> Vec<Row> {
    table
        .lines()
        .skip(1)
        .map(|line| {
            let cells: Vec<String> = line.split_whitespace().map(String::from).collect();
            let n = cells.len();
            let number = |cell: &str, unit: &str| -> u64 {
                cell.strip_suffix(unit)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("{cell:?} is not a {unit} value in:\n{table}"))
            };
            Row {
                millicores: number(&cells[n - 2], "m"),
                mebibytes: number(&cells[n - 1], "Mi"),
                cells,
            }
        })
        .collect()
}

fn row<'a>(rows: &'a [Row], name: &str) -> &'a Row {
    rows.iter()
        .find(|r| r.cells.iter().any(|c| c == name))
        .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

/// Polls `top pod POD --containers` until the burner burns and the hog, done allocating,
/// sleeps on its memory.
fn wait_for_usage(agent: &Agent) -> String {
    let busy = |table: &String| {
        let rows = rows(table);
        let named = |name: &str| rows.iter().find(|r| r.cells[1] == name);
        match (named("burner"), named("hog")) {
            (Some(burner), Some(hog)) => {
                burner.millicores >= 300 && hog.mebibytes >= 25 && hog.millicores < 100
            }
            _ => false,
        }
    };
    let last = poll(
        Duration::from_secs(20),
        Duration::from_millis(200),
        || agent.ok(&["top", "pod", POD, "--containers"]),
        busy,
    );
    assert!(
        busy(&last),
        "the burner should use several hundred millicores, the hog ≥ 25Mi and no CPU:\n{last}"
    );
    last
}

/// GET on the agent's socket, as raw JSON.
fn get_json(agent: &Agent, path: &str) -> (u16, Value) {
    let mut stream = std::os::unix::net::UnixStream::connect(agent.socket()).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        code,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

#[test]
fn top_pod_shows_the_burner_and_the_hog() {
    let agent = Agent::start();
    agent.apply(MANIFEST);
    agent.wait_running(POD);

    let containers = wait_for_usage(&agent);
    assert_eq!(
        columns(&containers, 0),
        ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{containers}"
    );
    let listed = rows(&containers);
    assert_eq!(
        listed[0].cells[..2],
        [POD, "burner"],
        "sorted by name: {containers}"
    );
    assert_eq!(listed[1].cells[..2], [POD, "hog"], "{containers}");
    assert!(
        row(&listed, "burner").millicores <= 1100,
        "one thread, at most a core: {containers}"
    );

    let pods = agent.ok(&["top", "pod"]);
    assert_eq!(
        columns(&pods, 0),
        ["NAME", "CPU(cores)", "MEMORY(bytes)"],
        "{pods}"
    );
    let pod_rows = rows(&pods);
    assert_eq!(pod_rows.len(), 1, "{pods}");
    assert_eq!(pod_rows[0].cells[0], POD);
    assert!(
        pod_rows[0].millicores >= 250 && pod_rows[0].mebibytes >= 25,
        "{pods}"
    );
    assert!(
        pods.lines().all(|l| l.ends_with("   ")),
        "kubectl pads the last column: {pods:?}"
    );

    let all = agent.ok(&["top", "pods", "-A", "-l", "app=top", "--no-headers"]);
    let all_rows: Vec<Vec<&str>> = all
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(all_rows.len(), 1, "{all}");
    assert_eq!(all_rows[0][..2], ["default", POD], "{all}");

    let by_memory = agent.ok(&["top", "pod", POD, "--containers", "--sort-by", "memory"]);
    assert_eq!(rows(&by_memory)[0].cells[1], "hog", "{by_memory}");
    let by_cpu = agent.ok(&["top", "pod", POD, "--containers", "--sort-by", "cpu"]);
    assert_eq!(rows(&by_cpu)[0].cells[1], "burner", "{by_cpu}");

    let (code, metrics) = get_json(
        &agent,
        &format!("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/{POD}"),
    );
    assert_eq!(code, 200, "{metrics}");
    assert_eq!(metrics["kind"], "PodMetrics");
    assert_eq!(metrics["apiVersion"], "metrics.k8s.io/v1beta1");
    assert_eq!(metrics["metadata"]["labels"]["app"], "top");
    timestamp(&metrics["timestamp"]);
    let window = metrics["window"].as_str().unwrap();
    assert!(
        window.ends_with('s') && window.len() > 2,
        "a Go duration: {window}"
    );
    assert_eq!(
        metrics["containers"].as_array().unwrap().len(),
        2,
        "{metrics}"
    );

    let missing = agent.cli(&["top", "pod", "missing"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        text(&missing.stderr),
        "Error from server (NotFound): podmetrics.metrics.k8s.io \"missing\" not found\n"
    );
    assert!(missing.stdout.is_empty());

    let none = agent.cli(&["top", "pod", "-l", "app=none"]);
    assert_eq!(none.status.code(), Some(0));
    assert_eq!(
        text(&none.stderr),
        "No resources found in default namespace.\n"
    );

    agent.delete_and_check(POD, "1");
}

#[test]
fn top_without_a_running_container_has_no_metrics() {
    let agent = Agent::start();
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: done}\nspec:\n  restartPolicy: Never\n  \
         containers: [{name: c, image: busybox, command: [\"true\"]}]\n",
    );
    agent.wait_phase("done", "Succeeded", Duration::from_secs(30));

    let listed = agent.cli(&["top", "pod"]);
    assert_eq!(listed.status.code(), Some(1));
    assert_eq!(text(&listed.stderr), "error: metrics not available yet\n");
    assert!(listed.stdout.is_empty());

    let named = agent.cli(&["top", "pod", "done"]);
    assert_eq!(named.status.code(), Some(1));
    assert_eq!(
        text(&named.stderr),
        "Error from server (NotFound): podmetrics.metrics.k8s.io \"done\" not found\n"
    );
    let (code, list) = get_json(&agent, "/apis/metrics.k8s.io/v1beta1/pods");
    assert_eq!(code, 200);
    assert_eq!(list["kind"], "PodMetricsList");
    assert_eq!(list["items"], serde_json::json!([]));

    agent.delete_and_check("done", "1");
}
