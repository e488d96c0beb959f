//! The real kubectl asking who it is and what it may do (`kubectl auth whoami`, `kubectl auth
//! can-i`), and reading a pod's events through both Event APIs (`kubectl get
//! events.events.k8s.io`, `kubectl events`), against an agent with nothing but the kubeconfig
//! it wrote.

use std::time::Duration;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

/// The user the agent's kubeconfig authenticates as, and the groups of its certificate.
const ADMIN: &str = "system:admin";
const ADMIN_GROUPS: [&str; 2] = ["system:masters", "system:authenticated"];

#[test]
fn kubectl_knows_who_it_is_what_it_may_do_and_what_happened() {
    let (agent, kubectl) = start_with_kubectl();
    whoami(&kubectl);
    can_i(&kubectl);

    kubectl.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: watched\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    command: [sleep, '3600']\n",
    );
    agent.wait_running("watched");
    let uid = agent.uid("watched");
    events_of_the_pod(&kubectl);

    kubectl.ok(&["delete", "pod", "watched", "--timeout=60s"]);
    agent.leak_check(&uid);
}

fn whoami(kubectl: &Kubectl) {
    let table = kubectl.ok(&["auth", "whoami"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["ATTRIBUTE", "VALUE"], "{table}");
    assert_eq!(rows[1], ["Username", ADMIN], "{table}");
    let groups = format!("[{}]", ADMIN_GROUPS.join(" "));
    assert_eq!(
        rows[2],
        ["Groups"]
            .into_iter()
            .chain(groups.split(' '))
            .collect::<Vec<_>>(),
        "{table}"
    );
    assert_eq!(rows.len(), 3, "{table}");

    let review = kubectl.json(&["auth", "whoami"]);
    assert_eq!(review["apiVersion"], "authentication.k8s.io/v1", "{review}");
    assert_eq!(review["kind"], "SelfSubjectReview");
    assert_eq!(review["status"]["userInfo"]["username"], ADMIN);
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        serde_json::json!(ADMIN_GROUPS)
    );
}

fn can_i(kubectl: &Kubectl) {
    let out = kubectl.run(&["auth", "can-i", "create", "pods"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "yes");
    assert_eq!(text(&out.stderr).trim(), "", "no warning expected");
    let everywhere = kubectl.ok(&["auth", "can-i", "delete", "nodes", "--all-namespaces"]);
    assert_eq!(everywhere.trim(), "yes");
    let rules = kubectl.ok(&["auth", "can-i", "--list"]);
    let header: Vec<&str> = rules
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"],
        "{rules}"
    );
    assert!(
        rules
            .lines()
            .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["*.*", "[]", "[]", "[*]"]),
        "{rules}"
    );
}

/// The pod's events through events.k8s.io/v1 (`kubectl get`, the server's table) and core/v1
/// (`kubectl events`, kubectl's own printer, which writes the object as `Kind/name`).
fn events_of_the_pod(kubectl: &Kubectl) {
    wait_until(Duration::from_secs(20), "a Started event", || {
        kubectl
            .ok(&["get", "events.events.k8s.io", "-A"])
            .lines()
            .any(|line| line.contains("pod/watched") && line.contains("Started"))
    });
    let table = kubectl.ok(&["get", "events.events.k8s.io", "-A"]);
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "LAST SEEN",
            "TYPE",
            "REASON",
            "OBJECT",
            "MESSAGE"
        ],
        "{table}"
    );
    let started = table
        .lines()
        .find(|line| line.contains("pod/watched") && line.contains("Started"))
        .unwrap_or_else(|| panic!("no Started event of pod/watched:\n{table}"));
    let cells: Vec<&str> = started.split_whitespace().collect();
    assert_eq!(cells[0], "default", "{started}");
    assert!(cells.contains(&"Normal"), "{started}");

    let list = kubectl.json(&["get", "events.v1.events.k8s.io", "-n", "default"]);
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let scheduled = items
        .iter()
        .find(|e| e["regarding"]["name"] == "watched" && e["reason"] == "Scheduled")
        .unwrap_or_else(|| panic!("no Scheduled event of the pod: {list}"));
    assert_eq!(scheduled["apiVersion"], "events.k8s.io/v1");
    assert_eq!(scheduled["regarding"]["kind"], "Pod");
    assert!(
        scheduled["note"]
            .as_str()
            .is_some_and(|n| n.contains("watched")),
        "{scheduled}"
    );
    assert!(scheduled.get("message").is_none(), "{scheduled}");

    let events = kubectl.ok(&["events"]);
    let header: Vec<&str> = events
        .lines()
        .next()
        .unwrap_or_default()
        .split("  ")
        .filter(|c| !c.is_empty())
        .map(str::trim)
        .collect();
    assert_eq!(
        header,
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{events}"
    );
    for reason in ["Scheduled", "Started"] {
        assert!(
            events
                .lines()
                .any(|line| line.contains("Pod/watched") && line.contains(reason)),
            "no {reason} event in kubectl events:\n{events}"
        );
    }
    let for_pod = kubectl.ok(&["events", "--for", "pod/watched"]);
    assert!(
        for_pod
            .lines()
            .skip(1)
            .all(|line| line.contains("Pod/watched")),
        "{for_pod}"
    );
    assert!(for_pod.lines().count() > 2, "{for_pod}");
}
