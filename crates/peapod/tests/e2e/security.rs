//! securityContext end to end: users and groups, runAsNonRoot, fsGroup, read-only root,
//! capabilities, privileged, no_new_privs, seccomp and sysctls, checked from inside real
//! containers of the busybox image (users root 0, nobody 65534, app 1000).

use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// A one-container pod that runs `script` once.
fn pod(name: &str, pod_context: &str, container_context: &str, script: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  securityContext: {pod_context}
  volumes:
  - name: data
    emptyDir: {{}}
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", {script:?}]
    securityContext: {container_context}
    volumeMounts:
    - {{name: data, mountPath: /data}}
"#
    )
}

/// Applies the pod, waits until it ends and returns its phase and log.
fn run(agent: &Agent, name: &str, manifest: &str) -> (String, String) {
    agent.apply(manifest);
    let pod = agent.wait_pod(name, "the pod to end", Duration::from_secs(30), |p| {
        p["status"]["phase"] == "Succeeded" || p["status"]["phase"] == "Failed"
    });
    let phase = pod["status"]["phase"].as_str().unwrap().to_string();
    let logs = agent.ok(&["logs", name]);
    if phase != "Succeeded" {
        eprintln!(
            "pod {name} ended {phase}: {:#}\n{}",
            pod["status"],
            agent.agent_log()
        );
    }
    (phase, logs)
}

/// Runs the pod to completion, expects it to succeed, deletes it and returns its log.
fn succeeds(agent: &Agent, name: &str, manifest: &str) -> String {
    let (phase, logs) = run(agent, name, manifest);
    assert_eq!(phase, "Succeeded", "pod {name}: {logs}");
    agent.delete_and_check(name, "0");
    logs
}

/// The value of a `/proc/self/status` field as the log shows it.
fn status_field<'a>(logs: &'a str, field: &str) -> &'a str {
    logs.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {field} in {logs}"))
}

#[test]
fn users_groups_and_fs_group_volume_ownership() {
    let agent = Agent::start();
    let logs = succeeds(
        &agent,
        "ids",
        &pod(
            "ids",
            "{runAsUser: 1000, runAsGroup: 3000, supplementalGroups: [4000], fsGroup: 2000}",
            "{}",
            "id -u; id -g; id -G; ls -lnd /data; touch /data/new; ls -ln /data/new",
        ),
    );
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[0], "1000", "{logs}");
    assert_eq!(lines[1], "3000", "{logs}");
    let groups: Vec<&str> = lines[2].split_whitespace().collect();
    for gid in ["2000", "3000", "4000"] {
        assert!(groups.contains(&gid), "groups {groups:?} lack {gid}");
    }
    // The emptyDir belongs to the fsGroup, setgid, so new files inherit the group.
    let dir: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(dir[0], "drwxrwsrwx", "{logs}");
    assert_eq!(dir[3], "2000", "{logs}");
    let file: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!((file[2], file[3]), ("1000", "2000"), "{logs}");

    // A memory-backed emptyDir (a tmpfs on the host) gets the same ownership.
    let memory = pod(
        "memory",
        "{runAsUser: 1000, fsGroup: 2000}",
        "{}",
        "ls -lnd /data; touch /data/new; ls -ln /data/new",
    )
    .replace("emptyDir: {}", "emptyDir: {medium: Memory}");
    let logs = succeeds(&agent, "memory", &memory);
    let lines: Vec<Vec<&str>> = logs
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!((lines[0][0], lines[0][3]), ("drwxrwsrwx", "2000"), "{logs}");
    assert_eq!((lines[1][2], lines[1][3]), ("1000", "2000"), "{logs}");

    // Without a securityContext the image's root user runs.
    let logs = succeeds(&agent, "root", &pod("root", "{}", "{}", "id -u; id -g"));
    assert_eq!(logs, "0\n0\n");
    // A container's runAsUser overrides the pod's; its group comes from the image's passwd.
    let logs = succeeds(
        &agent,
        "override",
        &pod(
            "override",
            "{runAsUser: 65534}",
            "{runAsUser: 1000}",
            "id -un; id -g",
        ),
    );
    assert_eq!(logs, "app\n1000\n");
}

#[test]
fn run_as_non_root_refuses_a_root_image_and_allows_a_user() {
    let agent = Agent::start();
    agent.apply(&pod("nonroot", "{runAsNonRoot: true}", "{}", "id -u"));
    let pod_json = agent.wait_pod(
        "nonroot",
        "CreateContainerConfigError",
        Duration::from_secs(30),
        |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        },
    );
    let uid = pod_json["metadata"]["uid"].as_str().unwrap();
    let waiting = &container(&pod_json, "main")["state"]["waiting"];
    assert_eq!(
        waiting["message"],
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: main)"
        )
    );
    assert_eq!(pod_json["status"]["phase"], "Pending");
    let events = agent.ok(&["events"]);
    assert!(
        events.contains("Failed") && events.contains("runAsNonRoot"),
        "{events}"
    );
    agent.delete_and_check("nonroot", "0");

    // An explicit root user breaks the policy as well.
    agent.apply(&pod(
        "explicit-root",
        "{runAsNonRoot: true}",
        "{runAsUser: 0}",
        "id -u",
    ));
    let pod_json = agent.wait_pod("explicit-root", "refusal", Duration::from_secs(30), |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
            == "CreateContainerConfigError"
    });
    let message = container(&pod_json, "main")["state"]["waiting"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("container's runAsUser breaks non-root policy"),
        "{message}"
    );
    agent.delete_and_check("explicit-root", "0");

    let logs = succeeds(
        &agent,
        "user",
        &pod(
            "user",
            "{runAsNonRoot: true, runAsUser: 1000}",
            "{}",
            "id -u",
        ),
    );
    assert_eq!(logs, "1000\n");
}

#[test]
fn read_only_root_filesystem_keeps_volumes_writable() {
    let agent = Agent::start();
    let script = "touch /checkfile && echo root-writable || echo root-read-only; \
                  touch /data/f && echo volume-writable; \
                  echo hi > /dev/termination-log && echo log-writable";
    let logs = succeeds(
        &agent,
        "ro",
        &pod("ro", "{}", "{readOnlyRootFilesystem: true}", script),
    );
    assert!(logs.contains("root-read-only"), "{logs}");
    assert!(logs.contains("Read-only file system"), "{logs}");
    assert!(logs.contains("volume-writable"), "{logs}");
    assert!(logs.contains("log-writable"), "{logs}");
    let logs = succeeds(
        &agent,
        "rw",
        &pod("rw", "{}", "{readOnlyRootFilesystem: false}", script),
    );
    assert!(logs.contains("root-writable"), "{logs}");
}

#[test]
fn capabilities_add_and_drop_and_privileged() {
    let agent = Agent::start();
    let caps = "grep -E '^Cap(Bnd|Eff)' /proc/self/status";
    let logs = succeeds(
        &agent,
        "default-caps",
        &pod("default-caps", "{}", "{}", caps),
    );
    assert_eq!(status_field(&logs, "CapBnd"), "00000000a80425fb");
    assert_eq!(status_field(&logs, "CapEff"), "00000000a80425fb");

    let logs = succeeds(
        &agent,
        "net-admin",
        &pod(
            "net-admin",
            "{}",
            "{capabilities: {drop: [ALL], add: [NET_ADMIN]}}",
            caps,
        ),
    );
    assert_eq!(status_field(&logs, "CapBnd"), "0000000000001000");
    assert_eq!(status_field(&logs, "CapEff"), "0000000000001000");

    // Kubernetes' check; a kernel without the dummy driver gets a bridge instead, which
    // needs CAP_NET_ADMIN all the same.
    let dummy = "{ ip link add dummy0 type dummy 2>/dev/null || ip link add dummy0 type bridge; } \
                 && echo added; \
                 grep -E '^CapBnd' /proc/self/status; \
                 grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status; \
                 awk '$2 == \"/sys\" {print \"sys\", $4}' /proc/mounts; \
                 head -c 5 /proc/timer_list | grep -q Timer && echo timer-list-visible; true";
    let logs = succeeds(&agent, "plain", &pod("plain", "{}", "{}", dummy));
    assert!(logs.contains("Operation not permitted"), "{logs}");
    assert!(!logs.contains("added"), "{logs}");
    assert!(logs.contains("sys ro,"), "{logs}");
    assert!(!logs.contains("timer-list-visible"), "masked: {logs}");

    let logs = succeeds(
        &agent,
        "privileged",
        &pod(
            "privileged",
            "{seccompProfile: {type: RuntimeDefault}}",
            "{privileged: true}",
            dummy,
        ),
    );
    assert!(logs.contains("added"), "{logs}");
    assert!(!logs.contains("Operation not permitted"), "{logs}");
    // Every capability the agent (run by this test's user) holds itself.
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = status_field(&own, "CapBnd").to_string();
    assert_eq!(status_field(&logs, "CapBnd"), all);
    assert_eq!(
        status_field(&logs, "Seccomp"),
        "0",
        "no seccomp when privileged"
    );
    assert!(logs.contains("sys rw,"), "{logs}");
    assert!(logs.contains("timer-list-visible"), "{logs}");
}

#[test]
fn allow_privilege_escalation_and_seccomp_profiles() {
    let agent = Agent::start();
    let status = "grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status";
    let logs = succeeds(&agent, "unset", &pod("unset", "{}", "{}", status));
    assert_eq!(status_field(&logs, "NoNewPrivs"), "0");
    assert_eq!(status_field(&logs, "Seccomp"), "0");

    let logs = succeeds(
        &agent,
        "nnp",
        &pod("nnp", "{}", "{allowPrivilegeEscalation: false}", status),
    );
    assert_eq!(status_field(&logs, "NoNewPrivs"), "1");

    let logs = succeeds(
        &agent,
        "default-profile",
        &pod(
            "default-profile",
            "{seccompProfile: {type: RuntimeDefault}}",
            "{}",
            status,
        ),
    );
    assert_eq!(status_field(&logs, "Seccomp"), "2");
    assert_eq!(status_field(&logs, "NoNewPrivs"), "0");

    // The container's Unconfined overrides the pod's RuntimeDefault.
    let logs = succeeds(
        &agent,
        "unconfined",
        &pod(
            "unconfined",
            "{seccompProfile: {type: RuntimeDefault}}",
            "{seccompProfile: {type: Unconfined}}",
            status,
        ),
    );
    assert_eq!(status_field(&logs, "Seccomp"), "0");

    // youki installs the filter before dropping capabilities only when noNewPrivileges is
    // absent: a non-root user with no capabilities must still start.
    let logs = succeeds(
        &agent,
        "no-caps",
        &pod(
            "no-caps",
            "{runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}",
            "{capabilities: {drop: [ALL]}}",
            &format!("{status}; id -u"),
        ),
    );
    assert_eq!(status_field(&logs, "Seccomp"), "2");
    assert!(logs.ends_with("1000\n"), "{logs}");
    let logs = succeeds(
        &agent,
        "no-caps-nnp",
        &pod(
            "no-caps-nnp",
            "{runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}",
            "{capabilities: {drop: [ALL]}, allowPrivilegeEscalation: false}",
            status,
        ),
    );
    assert_eq!(status_field(&logs, "Seccomp"), "2");
    assert_eq!(status_field(&logs, "NoNewPrivs"), "1");
}

#[test]
fn localhost_seccomp_profile_is_read_from_the_agent_directory() {
    let agent = Agent::start();
    let dir = agent.path().join("var/lib/peapod/seccomp/profiles");
    std::fs::create_dir_all(&dir).unwrap();
    let profile = serde_json::json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    });
    std::fs::write(dir.join("no-mkdir.json"), profile.to_string()).unwrap();
    let logs = succeeds(
        &agent,
        "local",
        &pod(
            "local",
            "{}",
            "{seccompProfile: {type: Localhost, localhostProfile: profiles/no-mkdir.json}}",
            "grep -E '^Seccomp:' /proc/self/status; mkdir /data/d || echo mkdir-refused",
        ),
    );
    assert_eq!(status_field(&logs, "Seccomp"), "2");
    assert!(logs.contains("mkdir-refused"), "{logs}");

    agent.apply(&pod(
        "missing",
        "{}",
        "{seccompProfile: {type: Localhost, localhostProfile: nothing.json}}",
        "true",
    ));
    let pod_json = agent.wait_pod("missing", "a create error", Duration::from_secs(30), |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("cannot load seccomp profile"))
    });
    assert_eq!(pod_json["status"]["phase"], "Pending");
    // The runtime could not build it: kubelet's CreateContainerError, not a config error.
    assert_eq!(
        pod_json["status"]["containerStatuses"][0]["state"]["waiting"]["reason"],
        "CreateContainerError"
    );
    agent.delete_and_check("missing", "0");
}

fn sysctl_pod(name: &str, sysctl: &str, value: &str) -> String {
    pod(
        name,
        &format!("{{sysctls: [{{name: {sysctl}, value: \"{value}\"}}]}}"),
        "{}",
        &format!("sysctl {}", sysctl.replace('/', ".")),
    )
}

#[test]
fn safe_sysctls_are_set_and_unsafe_ones_refused() {
    let agent = Agent::start();
    let host_value = std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap();
    let logs = succeeds(
        &agent,
        "safe",
        &sysctl_pod("safe", "kernel.shm_rmid_forced", "1"),
    );
    assert_eq!(logs, "kernel.shm_rmid_forced = 1\n");
    let logs = succeeds(
        &agent,
        "slashes",
        &sysctl_pod("slashes", "kernel/shm_rmid_forced", "1"),
    );
    assert_eq!(logs, "kernel.shm_rmid_forced = 1\n");
    // The host's value is untouched: the sysctl lives in the pod's IPC namespace.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shm_rmid_forced").unwrap(),
        host_value
    );

    agent.apply(&sysctl_pod("unsafe", "kernel.msgmax", "10000"));
    let pod_json: Value = agent.wait_pod("unsafe", "rejection", Duration::from_secs(30), |p| {
        p["status"]["phase"] == "Failed"
    });
    assert_eq!(pod_json["status"]["reason"], "SysctlForbidden");
    assert_eq!(
        pod_json["status"]["message"],
        "Pod was rejected: forbidden sysctl: \"kernel.msgmax\" not allowlisted"
    );
    agent.delete_and_check("unsafe", "0");
}

#[test]
fn unsafe_sysctls_run_when_the_agent_allows_them() {
    let agent = Agent::start_with_env(&[("PEAPOD_ALLOWED_UNSAFE_SYSCTLS", "kernel.msg*")]);
    let logs = succeeds(
        &agent,
        "allowed",
        &sysctl_pod("allowed", "kernel.msgmax", "10000"),
    );
    assert_eq!(logs, "kernel.msgmax = 10000\n");
}
