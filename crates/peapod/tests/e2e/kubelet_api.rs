//! The kubelet is a client of the API server, as k3s' embedded kubelet is: binding, status
//! writes, events and the final delete reach the API as the node's user and show in the
//! audit log. A write straight to the store would leave no line there.

use crate::common::*;

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: audited}
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: app
      image: busybox
      imagePullPolicy: IfNotPresent
      command: ["sleep", "3600"]
"#;

#[test]
fn the_kubelet_reads_and_writes_pods_through_the_api_as_the_node() {
    let agent = Agent::start();
    agent.apply(POD);
    agent.wait_running("audited");
    agent.delete_and_check("audited", "1");

    let nodes = agent.api_get("/api/v1/nodes");
    let node = nodes["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = without_colours(&agent.agent_log());
    let by_the_node = |method: &str, path: &str| {
        log.lines().any(|line| {
            line.contains("peapod::audit")
                && line.contains(&format!("user=\"system:node:{node}\""))
                && line.contains(&format!("method={method} "))
                && line.contains(&format!("path=\"{path}\""))
        })
    };
    let pod = "/api/v1/namespaces/default/pods/audited";
    for (method, path) in [
        ("GET", "/api/v1/pods"),
        ("POST", &format!("{pod}/binding")),
        ("PATCH", &format!("{pod}/status")),
        ("POST", "/api/v1/namespaces/default/events"),
        ("DELETE", pod),
    ] {
        assert!(
            by_the_node(method, path),
            "no {method} {path} by system:node:{node} in the audit log:\n{log}"
        );
    }
}
