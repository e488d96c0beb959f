//! `peapod uninstall`: everything of one root's agent goes (agent, shims, containers, mounts,
//! network namespaces, veths, bridge, nftables table, cgroups, directories) while an agent on
//! another root keeps running its pod; a second run finds nothing; a non-root user is refused.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::common::*;

/// A pod whose memory-backed emptyDir is a tmpfs on the host, beneath the agent's root.
const CACHE: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: cache}\nspec:\n  \
    terminationGracePeriodSeconds: 30\n  containers:\n  \
    - {name: app, image: busybox, imagePullPolicy: Never, command: [sleep, '3600'], \
    volumeMounts: [{name: mem, mountPath: /mem}]}\n  \
    volumes: [{name: mem, emptyDir: {medium: Memory}}]\n";

fn sleeper(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  \
         terminationGracePeriodSeconds: 30\n  containers:\n  \
         - {{name: app, image: busybox, imagePullPolicy: Never, command: [sleep, '3600']}}\n"
    )
}

fn uninstall(root: &Path) -> Output {
    Command::new(peapod_bin())
        .arg("uninstall")
        .env("PEAPOD_ROOT", root)
        // The record under the root names the bridge, not this.
        .env_remove("PEAPOD_BRIDGE")
        .stdin(Stdio::null())
        .output()
        .expect("running peapod uninstall")
}

/// What a pod of the uninstalled agent had on the host, recorded while it ran.
struct PodTraces {
    uid: String,
    pids: Vec<i32>,
    netns: String,
}

fn traces(agent: &Agent, name: &str) -> PodTraces {
    let pod = agent.pod(name).expect("pod exists");
    let uid = agent.uid(name);
    let shim = agent.shim_state(&uid).expect("a running shim")["pid"]
        .as_i64()
        .expect("the shim's pid") as i32;
    let mut pids = container_pids(&uid, &container_id_of(&pod, "app"));
    assert!(!pids.is_empty(), "pod {name} has container processes");
    pids.push(shim);
    let netns = std::fs::read_link(format!("/proc/{shim}/ns/net"))
        .unwrap()
        .to_string_lossy()
        .into_owned();
    PodTraces { uid, pids, netns }
}

fn alive(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next());
    !matches!(state, None | Some("Z") | Some("X"))
}

/// Live processes whose command line names `root` or whose cgroups are under `cgroup_parent`.
fn processes_of(root: &str, cgroup_parent: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read_to_string(entry.path().join("cmdline")).unwrap_or_default();
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        let ours = cmdline.contains(root) || cgroup.contains(&format!("{cgroup_parent}/"));
        if ours && alive(pid) {
            found.push(format!("{pid}: {}", cmdline.replace('\0', " ")));
        }
    }
    found
}

/// Every live network namespace, as `net:[INODE]`.
fn network_namespaces() -> Vec<String> {
    let entries = std::fs::read_dir("/proc").unwrap().flatten();
    entries
        .filter_map(|entry| std::fs::read_link(entry.path().join("ns/net")).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .collect()
}

fn cgroup_parent(agent: &Agent) -> String {
    peapod::paths::Paths::new(agent.path().to_path_buf()).cgroup_parent()
}

fn cgroup_trees(parent: &str) -> Vec<String> {
    let relative = parent.trim_start_matches('/');
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|hierarchy| hierarchy.path().join(relative))
        .chain([Path::new("/sys/fs/cgroup").join(relative)])
        .filter(|tree| tree.exists())
        .map(|tree| tree.display().to_string())
        .collect()
}

fn nft_table_exists(table: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", table])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Everything of the uninstalled agent that is still on the host.
fn leftovers(agent: &Agent, agent_pid: i32, pods: &[PodTraces]) -> Vec<String> {
    let root = agent.path().to_string_lossy().into_owned();
    let mut found = processes_of(&root, &cgroup_parent(agent));
    if alive(agent_pid) {
        found.push(format!("the agent, pid {agent_pid}"));
    }
    let namespaces = network_namespaces();
    for pod in pods {
        found.extend(
            pod.pids
                .iter()
                .filter(|pid| alive(**pid))
                .map(|pid| format!("pid {pid}")),
        );
        if namespaces.contains(&pod.netns) {
            found.push(format!("network namespace {}", pod.netns));
        }
        let veth = peapod_net::host_veth_name(&pod.uid);
        if link_exists(&veth) {
            found.push(format!("veth {veth}"));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(
        mountinfo
            .lines()
            .filter(|l| l.contains(&root))
            .map(|l| format!("mount {l}")),
    );
    if link_exists(&agent.bridge) {
        found.push(format!("bridge {}", agent.bridge));
    }
    if nft_table_exists(&agent.nft_table()) {
        found.push(format!("nftables table {}", agent.nft_table()));
    }
    found.extend(
        cgroup_trees(&cgroup_parent(agent))
            .into_iter()
            .map(|t| format!("cgroup {t}")),
    );
    for dir in ["var/lib/peapod", "run/peapod", "var/log/pods"] {
        if agent.path().join(dir).exists() {
            found.push(format!("directory {dir}"));
        }
    }
    found
}

#[test]
fn uninstall_removes_everything_of_its_root_and_nothing_of_another() {
    let gone = Agent::start();
    gone.apply(CACHE);
    gone.apply(&sleeper("web"));
    let kept = Agent::start();
    kept.apply(&sleeper("survivor"));
    gone.wait_running("cache");
    gone.wait_running("web");
    kept.wait_running("survivor");
    let pods = [traces(&gone, "cache"), traces(&gone, "web")];
    let agent_pid = gone.agent_pid() as i32;
    let root = gone.path().to_string_lossy().into_owned();
    assert!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .contains(&format!("{root}/var/lib/peapod/pods/{}", pods[0].uid)),
        "the memory emptyDir is mounted on the host"
    );
    assert!(leftovers(&gone, agent_pid, &pods).len() > 5);

    let first = uninstall(gone.path());
    let said = text(&first.stdout);
    assert!(first.status.success(), "{said}{}", text(&first.stderr));
    for line in [
        format!("stopped the agent (pid {agent_pid})"),
        format!("deleted bridge {}", gone.bridge),
        format!("deleted nftables table ip {}", gone.nft_table()),
        format!("removed {root}/var/lib/peapod"),
        format!("peapod is uninstalled from {root}"),
    ] {
        assert!(said.lines().any(|l| l == line), "no {line:?} in:\n{said}");
    }
    assert!(said.contains("unmounted "), "{said}");
    assert!(said.contains("stopped pod sandbox "), "{said}");
    let left = leftovers(&gone, agent_pid, &pods);
    assert!(left.is_empty(), "left behind:\n{}\n{said}", left.join("\n"));

    kept.wait_running("survivor");
    let (code, out, _) = kept.exec("survivor", "app", &["echo", "alive"]);
    assert_eq!((code, out.trim()), (0, "alive"));
    assert!(link_exists(&kept.bridge) && nft_table_exists(&kept.nft_table()));
    assert!(!cgroup_trees(&cgroup_parent(&kept)).is_empty());

    let second = uninstall(gone.path());
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        text(&second.stdout),
        format!("nothing of peapod is left under {root}\n")
    );
}

#[test]
fn uninstall_refuses_a_user_other_than_root_and_touches_nothing() {
    let agent = Agent::start();
    let refused = Command::new(peapod_bin())
        .arg("uninstall")
        .env("PEAPOD_ROOT", agent.path())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("running peapod uninstall as nobody");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("peapod uninstall must run as root"),
        "{}",
        text(&refused.stderr)
    );
    assert!(refused.stdout.is_empty());
    assert!(alive(agent.agent_pid() as i32));
    agent.ok(&["get", "pods"]);
}
