//! What a pod must not inherit from the node, end to end (issue 11): the node's loopback
//! services stay out of a pod's reach even with CAP_NET_RAW (CVE-2020-8558), container
//! processes and execs start with a fresh signal state and their container's no_new_privs,
//! and /sys/fs/cgroup shows the container its own cgroup, read-only.

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// Sends one UDP datagram as a hand-made Ethernet frame on eth0 (AF_PACKET), so that the
/// kernel's routing of the sender never decides where it goes: argv is the bridge's MAC, the
/// source and destination addresses, the destination port and the payload.
const RAW_SENDER: &str = r#"
import socket, struct, sys
mac, src, dst, port, payload = sys.argv[1:6]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
me = s.getsockname()[4]
data = payload.encode()
udp = struct.pack("!HHHH", 40000, int(port), 8 + len(data), 0) + data
def checksum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    t = (t >> 16) + (t & 0xffff)
    t += t >> 16
    return ~t & 0xffff
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
s.send(bytes.fromhex(mac.replace(":", "")) + me + b"\x08\x00" + ip + udp)
"#;

/// A pod of busybox containers, each (name, command as a YAML flow sequence, more fields of
/// its flow mapping).
fn pod(name: &str, restart: &str, containers: &[(&str, &str, &str)]) -> String {
    let containers: String = containers
        .iter()
        .map(|(c, command, extra)| {
            format!("  - {{name: {c}, image: busybox, command: {command}{extra}}}\n")
        })
        .collect();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  \
         restartPolicy: {restart}\n  terminationGracePeriodSeconds: 0\n  containers:\n{containers}"
    )
}

/// The value of a `/proc/PID/status` field in `text`.
fn status_field<'a>(text: &'a str, field: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in {text}"))
}

/// `peapod exec` that must succeed: its stdout.
fn exec_ok(agent: &Agent, pod: &str, container: &str, command: &[&str]) -> String {
    let (code, out, err) = agent.exec(pod, container, command);
    assert_eq!(code, 0, "exec {command:?} in {pod}/{container}: {out}{err}");
    out
}

/// Sends `payload` from the pod's network namespace to `dst:port` through the bridge, as a
/// container's process with nothing but CAP_NET_RAW (every default container has it) can.
fn send_raw_from_pod(agent: &Agent, pod: &Value, dst: &str, port: u16, payload: &str) {
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    let pids = container_pids(uid, &container_id_of(pod, "c"));
    let pid = pids
        .first()
        .unwrap_or_else(|| panic!("no process in {pod:#}"));
    let mac = std::fs::read_to_string(format!("/sys/class/net/{}/address", agent.bridge))
        .expect("the bridge's MAC");
    let src = pod["status"]["podIP"].as_str().expect("a pod IP");
    let caps = "-all,+net_raw";
    let out = Command::new("nsenter")
        .args(["-t", &pid.to_string(), "-n", "setpriv"])
        .args([
            &format!("--inh-caps={caps}"),
            &format!("--ambient-caps={caps}"),
            &format!("--bounding-set={caps}"),
        ])
        .args(["python3", "-c", RAW_SENDER, mac.trim(), src, dst])
        .args([&port.to_string(), payload])
        .output()
        .expect("running nsenter");
    assert!(out.status.success(), "raw sender: {}", text(&out.stderr));
}

/// The payload of the next datagram on `socket`, or None when none came within its timeout.
fn receive(socket: &UdpSocket) -> Option<String> {
    let mut buf = [0u8; 256];
    socket
        .recv_from(&mut buf)
        .ok()
        .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The bridge's address: the first of the agent's range.
fn gateway(agent: &Agent) -> String {
    let net: std::net::Ipv4Addr = agent.cidr.split('/').next().unwrap().parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(net) + 1).to_string()
}

#[test]
fn a_pod_with_net_raw_cannot_reach_a_service_bound_to_the_nodes_loopback() {
    let agent = Agent::start();
    agent.apply(&pod("raw", "Never", &[("c", "[sleep, '3600']", "")]));
    let pod = agent.wait_running("raw");

    // The control: the same frame to the bridge's own address reaches a socket on 0.0.0.0,
    // so a missing datagram below means it was dropped, not that the sender failed.
    let any = UdpSocket::bind("0.0.0.0:0").unwrap();
    any.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let any_port = any.local_addr().unwrap().port();
    let received = (0..3).find_map(|_| {
        send_raw_from_pod(&agent, &pod, &gateway(&agent), any_port, "to-the-bridge");
        receive(&any)
    });
    assert_eq!(received.as_deref(), Some("to-the-bridge"));

    let loopback = UdpSocket::bind("127.0.0.1:0").unwrap();
    loopback
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let port = loopback.local_addr().unwrap().port();
    send_raw_from_pod(&agent, &pod, "127.0.0.1", port, "to-loopback");
    assert_eq!(
        receive(&loopback),
        None,
        "the node's loopback service got a pod's datagram; table:\n{}",
        agent.ruleset()
    );
    agent.delete_and_check("raw", "0");
}

/// An empty signal set as /proc/PID/status prints it.
const NONE: &str = "0000000000000000";

#[test]
fn containers_and_their_execs_start_with_no_blocked_or_ignored_signals() {
    let agent = Agent::start();
    agent.apply(&pod(
        "signals",
        "Never",
        &[
            ("main", "[sleep, '3600']", ""),
            // `yes` dies of SIGPIPE when head exits; with SIGPIPE ignored it would get EPIPE
            // and complain, or spin, depending on its build.
            (
                "pipe",
                "[sh, -c, 'yes | head -c 1 >/dev/null; echo pipe closed']",
                "",
            ),
        ],
    ));
    let pod = agent.wait_pod(
        "signals",
        "the pipeline to finish",
        Duration::from_secs(30),
        |p| {
            container(p, "pipe")["state"]["terminated"]["exitCode"] == 0
                && container(p, "main")["state"]["running"].is_object()
        },
    );
    assert_eq!(
        agent.ok(&["logs", "signals", "-c", "pipe"]),
        "pipe closed\n"
    );

    for (who, path) in [
        ("PID 1", "/proc/1/status"),
        ("an exec", "/proc/self/status"),
    ] {
        let out = exec_ok(
            &agent,
            "signals",
            "main",
            &["grep", "-E", "^Sig(Blk|Ign):", path],
        );
        let masks = (status_field(&out, "SigBlk"), status_field(&out, "SigIgn"));
        assert_eq!(masks, (NONE, NONE), "{who}: {out}");
    }
    let pipeline = [
        "sh",
        "-c",
        "yes | head -c 1 >/dev/null; echo exec pipe closed",
    ];
    let mut args = vec!["exec", "signals", "-c", "main", "--"];
    args.extend(pipeline);
    let out = agent.cli_stdin_within(&args, "", Duration::from_secs(20));
    assert_eq!(text(&out.stdout), "exec pipe closed\n", "{pod:#}");
    assert_eq!(text(&out.stderr), "", "no EPIPE complaint");
    agent.delete_and_check("signals", "0");
}

#[test]
fn an_exec_has_no_new_privs_exactly_when_its_container_has() {
    let agent = Agent::start();
    agent.apply(&pod(
        "privs",
        "Always",
        &[
            ("default", "[sleep, '3600']", ""),
            (
                "nnp",
                "[sleep, '3600']",
                ", securityContext: {allowPrivilegeEscalation: false}",
            ),
        ],
    ));
    agent.wait_running("privs");
    for (container, expected) in [("default", "0"), ("nnp", "1")] {
        let field = |path: &str| {
            let out = exec_ok(&agent, "privs", container, &["grep", "^NoNewPrivs:", path]);
            status_field(&out, "NoNewPrivs").to_string()
        };
        assert_eq!(field("/proc/1/status"), expected, "{container}'s PID 1");
        assert_eq!(
            field("/proc/self/status"),
            expected,
            "an exec in {container}"
        );
    }
    agent.delete_and_check("privs", "0");
}

/// Runs the one-container pod to completion and returns its log.
fn succeeds(agent: &Agent, name: &str, manifest: &str) -> String {
    agent.apply(manifest);
    let pod = agent.wait_pod(name, "the pod to end", Duration::from_secs(30), |p| {
        p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed"
    });
    let logs = agent.ok(&["logs", name]);
    assert_eq!(pod["status"]["phase"], "Succeeded", "{logs}\n{pod:#}");
    logs
}

#[test]
fn a_container_reads_its_own_limits_from_a_read_only_sys_fs_cgroup() {
    let agent = Agent::start();
    // The memory controller's mount and limit file in the container, as on this host.
    let (mount, limit) = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        ("/sys/fs/cgroup", "/sys/fs/cgroup/memory.max")
    } else {
        (
            "/sys/fs/cgroup/memory",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
    };
    let script = format!(
        "cat {limit}; \
         touch /sys/fs/cgroup/x 2>/dev/null && echo touched || echo touch refused; \
         echo 100000000 2>/dev/null >{limit} && echo raised || echo write refused; \
         cat {limit}; \
         awk '$5 == \"{mount}\" {{print \"options\", $6}}' /proc/self/mountinfo"
    );
    let limits = ", resources: {limits: {memory: 64Mi}}";
    let command = format!("[sh, -c, {script:?}]");
    let logs = succeeds(
        &agent,
        "limits",
        &pod("limits", "Never", &[("c", &command, limits)]),
    );
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.first(), Some(&"67108864"), "{logs}");
    assert!(lines.contains(&"touch refused"), "{logs}");
    assert!(lines.contains(&"write refused"), "{logs}");
    assert_eq!(lines.get(3), Some(&"67108864"), "{logs}");
    assert!(lines.iter().any(|l| l.starts_with("options ro,")), "{logs}");
    agent.delete_and_check("limits", "0");

    // containerd's privileged containers get the cgroup mount read-write.
    let script = format!("cat {limit} >{limit} && echo rewritten");
    let command = format!("[sh, -c, {script:?}]");
    let logs = succeeds(
        &agent,
        "privileged",
        &pod(
            "privileged",
            "Never",
            &[("c", &command, ", securityContext: {privileged: true}")],
        ),
    );
    assert_eq!(logs, "rewritten\n");
    agent.delete_and_check("privileged", "0");
}
