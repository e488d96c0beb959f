//! Crash consistency and shutdown, end to end: an agent SIGKILLed while it starts pods leaves
//! no container running twice, none created but never started, and no pod without its
//! network; a sandbox that is not whole is re-created; a dead shim's remains are cleared; a
//! deleted pod's address is released even when the agent died mid-teardown; and
//! the agent stops within a bounded time on SIGTERM even with streams open.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const PODS: usize = 20;

fn twenty_pods() -> String {
    (1..=PODS)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: crash-{i:02}}}\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - {{name: main, image: busybox, imagePullPolicy: Never, command: [sh, -c, \"trap 'exit 0' TERM; while true; do sleep 1; done\"]}}\n"
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The network namespace the pod's shim holds has eth0 with the pod's address.
fn assert_pod_network(agent: &Agent, name: &str) {
    let pod = agent.pod(name).expect("pod");
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let ip = pod["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pid = agent.shim_state(&uid).expect("shim answers")["pid"]
        .as_i64()
        .unwrap();
    let devices = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    assert!(
        devices.contains("eth0:"),
        "pod {name} has no eth0:\n{devices}"
    );
    let addresses = std::fs::read_to_string(format!("/proc/{pid}/net/fib_trie")).unwrap();
    assert!(
        addresses.contains(&format!(" {ip}\n")),
        "pod {name} lacks {ip}"
    );
}

fn all_pods_running(agent: &Agent) {
    for i in 1..=PODS {
        agent.wait_running(&format!("crash-{i:02}"));
    }
}

#[test]
fn an_agent_killed_while_starting_pods_leaves_each_container_running_once_with_its_network() {
    let mut agent = Agent::start();
    let manifest = agent.root.path().join("twenty.yaml");
    std::fs::write(&manifest, twenty_pods()).unwrap();
    for delay in [60u64, 120, 200, 350] {
        let mut apply = Command::new(peapod_bin())
            .args(["apply", "-f", manifest.to_str().unwrap()])
            .env("PEAPOD_ROOT", agent.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        agent.kill_agent();
        let _ = apply.wait();
        agent.restart();
        agent.apply_file(&manifest);
        all_pods_running(&agent);
        // Give stranded creates and second copies time to show.
        std::thread::sleep(Duration::from_millis(500));
        for i in 1..=PODS {
            let name = format!("crash-{i:02}");
            agent.assert_single_instances(&agent.uid(&name));
            assert_pod_network(&agent, &name);
        }
        for i in (1..=PODS).step_by(2) {
            agent.delete_and_check(&format!("crash-{i:02}"), "0");
        }
    }
    for i in (2..=PODS).step_by(2) {
        agent.delete_and_check(&format!("crash-{i:02}"), "0");
    }
}

#[test]
fn a_sandbox_that_lost_its_network_while_the_agent_was_down_is_recreated() {
    let mut agent = Agent::start();
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: netless}\nspec:\n  containers:\n  - {name: web, image: busybox, imagePullPolicy: Never, command: [httpd, -f, -p, '8080']}\n",
    );
    let before = agent.wait_running("netless");
    let uid = agent.uid("netless");
    agent.kill_agent();
    let veth = peapod_net::host_veth_name(&uid);
    let status = Command::new("ip")
        .args(["link", "del", &veth])
        .status()
        .unwrap();
    assert!(status.success());
    agent.restart();
    agent.wait_event(&uid, "SandboxChanged", Duration::from_secs(20), |m| {
        m == "Pod sandbox changed, it will be killed and re-created."
    });
    let after = poll(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || agent.pod("netless").unwrap(),
        |p| all_running(p) && container(p, "web")["restartCount"] == 1,
    );
    assert_eq!(container(&after, "web")["restartCount"], 1, "{after:#}");
    assert_eq!(
        container(&after, "web")["lastState"]["terminated"]["exitCode"],
        137
    );
    assert_ne!(
        before["status"]["containerStatuses"][0]["containerID"],
        after["status"]["containerStatuses"][0]["containerID"]
    );
    assert_pod_network(&agent, "netless");
    let ip = after["status"]["podIP"].as_str().unwrap();
    let answered = poll(
        Duration::from_secs(10),
        Duration::from_millis(200),
        || {
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-m", "1", "-w", "%{http_code}"])
                .arg(format!("http://{ip}:8080/"))
                .output()
                .map(|o| text(&o.stdout))
                .unwrap_or_default()
        },
        |code| code.len() == 3 && code != "000",
    );
    assert!(
        answered != "000" && !answered.is_empty(),
        "the pod does not answer on {ip}"
    );
    agent.delete_and_check("netless", "0");
}

#[test]
fn a_dead_shims_containers_runtime_state_and_cgroups_are_cleared_when_its_sandbox_is_recreated() {
    let agent = Agent::start();
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: phoenix}\nspec:\n  containers:\n  - {name: a, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}\n  - {name: b, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}\n",
    );
    agent.wait_running("phoenix");
    let uid = agent.uid("phoenix");
    for round in 1..=2 {
        let pid = agent.shim_state(&uid).unwrap()["pid"].as_i64().unwrap();
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let pod = poll(
            Duration::from_secs(30),
            Duration::from_millis(200),
            || agent.pod("phoenix").unwrap(),
            |p| {
                all_running(p)
                    && container(p, "a")["restartCount"] == round
                    && container(p, "b")["restartCount"] == round
            },
        );
        assert!(all_running(&pod), "{pod:#}");
        let live: Vec<String> = ["a", "b"]
            .iter()
            .map(|c| {
                container_id_of(&pod, c)
                    .trim_start_matches("peapod://")
                    .to_string()
            })
            .collect();
        let runtime = agent
            .root
            .path()
            .join("run/peapod/pods")
            .join(&uid)
            .join("runtime");
        let mut states: Vec<String> = std::fs::read_dir(&runtime)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        states.sort();
        let mut expected = live.clone();
        expected.sort();
        assert_eq!(
            states, expected,
            "libcontainer state of dead containers left"
        );
        for hierarchy in ["memory", "pids"] {
            let dir = Path::new("/sys/fs/cgroup").join(hierarchy);
            let pod_cgroup = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .map(|e| e.path().join(format!("pod{uid}")))
                .find(|p| p.is_dir())
                .expect("pod cgroup");
            let children = || {
                std::fs::read_dir(&pod_cgroup)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .count()
            };
            // The host's init reaps the killed containers in its own time (see the docs).
            let count = poll(
                Duration::from_secs(30),
                Duration::from_millis(200),
                children,
                |n| *n == 2,
            );
            assert_eq!(
                count, 2,
                "{hierarchy}: container cgroups of dead containers left"
            );
        }
    }
    let events = agent.events_of(&uid);
    let changed = events
        .iter()
        .filter(|e| e["reason"] == "SandboxChanged")
        .count();
    assert!(changed >= 1, "no SandboxChanged event: {events:#?}");
    agent.delete_and_check("phoenix", "0");
}

/// What the agent's teardown of a deleted pod does first: the shim kills the containers and
/// exits, taking the pod's network namespace and veth with it.
fn shut_down_shim(agent: &Agent, uid: &str) {
    use std::io::{BufRead, Write};
    let pid = agent.shim_pid(uid);
    let socket = agent
        .path()
        .join("run/peapod/pods")
        .join(uid)
        .join("shim.sock");
    let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
    stream.write_all(b"{\"op\":\"shutdown\"}\n").unwrap();
    let _ = std::io::BufReader::new(stream).read_line(&mut String::new());
    wait_until(Duration::from_secs(10), "the shim to exit", || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        matches!(
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next()),
            None | Some("Z")
        )
    });
}

#[test]
fn a_deleted_pods_address_is_released_after_an_agent_killed_mid_teardown() {
    let mut agent = Agent::start();
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: halfway}\nspec:\n  terminationGracePeriodSeconds: 60\n  containers:\n  - {name: main, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}\n",
    );
    agent.wait_running("halfway");
    let uid = agent.uid("halfway");
    // sleep, as pid 1, ignores SIGTERM: the worker waits out the grace period.
    agent.ok(&["delete", "pod", "halfway", "--wait=false"]);
    assert!(agent.pod("halfway").unwrap()["metadata"]["deletionTimestamp"].is_string());
    agent.kill_agent();
    shut_down_shim(&agent, &uid);
    let ipam = agent.path().join("var/lib/peapod/network/ipam");
    let held = || {
        std::fs::read_dir(&ipam)
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_to_string(e.path()).unwrap_or_default() == uid)
    };
    assert!(held(), "the dead agent had not released the address yet");
    agent.restart();
    wait_until(Duration::from_secs(30), "the pod to be removed", || {
        agent.pod("halfway").is_none()
    });
    agent.leak_check(&uid);
}

#[test]
fn a_finished_pods_address_left_held_by_an_agent_killed_mid_teardown_is_released() {
    let mut agent = Agent::start();
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: done}\nspec:\n  restartPolicy: Never\n  containers:\n  - {name: main, image: busybox, imagePullPolicy: Never, command: ['true']}\n",
    );
    let finished = poll(
        Duration::from_secs(30),
        Duration::from_millis(200),
        || agent.pod("done").unwrap(),
        |p| p["status"]["phase"] == "Succeeded",
    );
    let uid = agent.uid("done");
    let ip = finished["status"]["podIP"].as_str().unwrap().to_owned();
    agent.kill_agent();
    // What an agent killed after stopping the shim, before releasing the address, leaves.
    let record = agent.path().join("var/lib/peapod/network/ipam").join(&ip);
    assert!(!record.exists(), "{ip} was released when the pod finished");
    std::fs::write(&record, &uid).unwrap();
    agent.restart();
    wait_until(
        Duration::from_secs(20),
        "the address to be released",
        || !record.exists(),
    );
    agent.delete_and_check("done", "0");
}

#[test]
fn the_agent_stops_within_seconds_of_sigterm_with_watches_and_log_follows_open() {
    let mut agent = Agent::start();
    agent.apply(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: chatty}\nspec:\n  containers:\n  - {name: c, image: busybox, imagePullPolicy: Never, command: [sh, -c, 'while true; do echo tick; sleep 1; done']}\n",
    );
    agent.wait_running("chatty");
    let uid = agent.uid("chatty");
    let shim = agent.shim_state(&uid).unwrap()["pid"].as_i64().unwrap();
    let spawn = |args: &[&str]| {
        Command::new(peapod_bin())
            .args(args)
            .env("PEAPOD_ROOT", agent.root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut clients = vec![
        spawn(&["get", "pods", "-w"]),
        spawn(&["get", "pods", "-w"]),
        spawn(&["logs", "-f", "chatty"]),
    ];
    std::thread::sleep(Duration::from_secs(1));
    let took = agent.stop_agent(libc::SIGTERM, Duration::from_secs(10));
    assert!(
        took < Duration::from_secs(6),
        "the agent took {took:?} to stop"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    for client in &mut clients {
        while client.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(
            client.try_wait().unwrap().is_some(),
            "a client stream was left open"
        );
    }
    assert!(
        Path::new(&format!("/proc/{shim}")).exists(),
        "the pod's sandbox stopped with the agent"
    );
    agent.restart();
    let pod = agent.wait_running("chatty");
    assert_eq!(container(&pod, "c")["restartCount"], 0);
    agent.delete_and_check("chatty", "0");
}
