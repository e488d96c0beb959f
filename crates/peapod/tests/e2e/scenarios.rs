//! The seed scenarios (shared/SCENARIOS.md) run for real, each ending with a leak check.

use std::time::Duration;

use crate::common::*;

/// How often the scenarios re-read what a container serves or logs.
const POLL: Duration = Duration::from_millis(200);

#[test]
fn s1_web_content_sidecar_serves_the_current_time() {
    let agent = Agent::start();
    agent.run_example("s1-web-content-sidecar.yaml", "example-pod");
    let wide = agent.ok(&["get", "pod", "example-pod", "-o", "wide"]);
    let row = wide.lines().nth(1).expect("a table row");
    assert!(
        row.starts_with("example-pod") && row.contains("2/2") && row.contains("Running"),
        "{wide}"
    );

    let fetch = || {
        let (code, body, err) = agent.exec(
            "example-pod",
            "frontend",
            &["wget", "-qO-", "http://localhost:8080/index.html"],
        );
        assert_eq!(code, 0, "wget failed: {err}");
        body
    };
    let mut first = fetch();
    for _ in 0..20 {
        if !first.trim().is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        first = fetch();
    }
    let year = jiff::Timestamp::now().to_string()[..4].to_string();
    assert!(
        first.contains(&year),
        "the page should hold the current date: {first:?}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let second = fetch();
    assert_ne!(first, second, "a second later the page shows a newer time");

    agent.delete_and_check("example-pod", "1");
}

/// Runs `command` in the container until it exits 0 and `check` holds for its stdout.
fn wait_exec(
    agent: &Agent,
    pod: &str,
    container: &str,
    command: &[&str],
    timeout: Duration,
    check: impl Fn(&str) -> bool,
) -> String {
    let expected = |last: &(i32, String, String)| last.0 == 0 && check(&last.1);
    let last = poll(
        timeout,
        POLL,
        || agent.exec(pod, container, command),
        expected,
    );
    assert!(
        expected(&last),
        "{pod}/{container}: `{}` never gave the expected output; last: exit {}, stdout {:?}, stderr {:?}",
        command.join(" "),
        last.0,
        last.1,
        last.2
    );
    last.1
}

/// `peapod logs POD -c C`, insisting it succeeds.
fn logs(agent: &Agent, pod: &str, container: &str) -> String {
    agent.ok(&["logs", pod, "-c", container])
}

fn pids_with_cmdline(uid: &str, container_id: &str, prefix: &str) -> Vec<i32> {
    container_pids(uid, container_id)
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .replace('\0', " ")
                .starts_with(prefix)
        })
        .collect()
}

/// SIGKILLs the container's one `sleep 3600` process from the host.
fn kill_the_sleep(uid: &str, container_id: &str) {
    let pids = pids_with_cmdline(uid, container_id, "sleep 3600");
    assert_eq!(
        pids.len(),
        1,
        "the container's sleep among {:?}",
        container_pids(uid, container_id)
    );
    for pid in pids {
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGKILL) },
            0,
            "kill -9 {pid}"
        );
    }
}

#[test]
fn s2_shared_hostpath_writer_completes_and_web_serves_its_file() {
    let agent = Agent::start();
    let data = tempfile::tempdir().unwrap();
    let manifest = example_text("s2-shared-hostpath.yaml");
    assert!(manifest.contains("path: /data\n"));
    let manifest = manifest.replace(
        "path: /data\n",
        &format!("path: {}\n", data.path().display()),
    );
    assert_eq!(agent.apply(&manifest).trim(), "pod/two-containers created");

    let pod = agent.wait_pod(
        "two-containers",
        "the writer to finish and the web container to run",
        Duration::from_secs(30),
        |pod| {
            container(pod, "debian-container")["state"]["terminated"].is_object()
                && container(pod, "nginx-container")["state"]["running"].is_object()
        },
    );
    let writer = container(&pod, "debian-container");
    assert_eq!(
        writer["state"]["terminated"]["reason"], "Completed",
        "{writer:#}"
    );
    assert_eq!(writer["state"]["terminated"]["exitCode"], 0, "{writer:#}");

    // The file is on the host ...
    let on_host = std::fs::read_to_string(data.path().join("index.html"))
        .expect("/data/index.html on the host");
    assert_eq!(on_host, "Hello from the debian container\n");
    // ... and the web container serves it.
    let (code, body, err) = agent.exec(
        "two-containers",
        "nginx-container",
        &["wget", "-qO-", "http://localhost:80/index.html"],
    );
    assert_eq!(code, 0, "wget failed: {err}");
    assert_eq!(body, "Hello from the debian container\n");

    // restartPolicy Never: the writer is not restarted (the backoff base is 1 s), the web
    // container keeps running, and the pod stays Running.
    std::thread::sleep(Duration::from_secs(3));
    let pod = agent.pod("two-containers").unwrap();
    let writer = container(&pod, "debian-container");
    assert_eq!(writer["restartCount"], 0, "{writer:#}");
    assert_eq!(
        writer["state"]["terminated"]["reason"], "Completed",
        "{writer:#}"
    );
    let web = container(&pod, "nginx-container");
    assert!(
        web["state"]["running"].is_object() && web["restartCount"] == 0,
        "{web:#}"
    );
    assert_eq!(pod["status"]["phase"], "Running");
    // kubectl prints a Running pod with a Completed container and a not-Ready pod as NotReady.
    assert_eq!(
        condition(&pod, "Ready")["status"],
        "False",
        "the writer is not ready, so neither is the pod"
    );
    let table = agent.ok(&["get", "pod", "two-containers"]);
    assert_eq!(
        &columns(&table, 1)[..4],
        ["two-containers", "1/2", "NotReady", "0"],
        "{table}"
    );

    agent.delete_and_check("two-containers", "1");
    // A hostPath belongs to the host: deleting the pod leaves the file.
    assert!(
        data.path().join("index.html").exists(),
        "the hostPath content survives the pod"
    );
}

#[test]
fn s3_init_container_delivers_the_app_before_it_starts() {
    let agent = Agent::start();
    agent.apply_example("s3-init-container-app.yaml", "javaweb-2");

    // Watch the pod until it runs: while the init container has not exited 0 the app must not
    // have started, and the table reads Init:0/1.
    let mut statuses: Vec<String> = Vec::new();
    let mut saw_app_initializing = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let pod = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "javaweb-2 never ran; statuses seen {statuses:?}\n{}",
            agent.agent_log()
        );
        let status = agent.get_status("javaweb-2");
        if statuses.last() != Some(&status) {
            statuses.push(status);
        }
        let pod = agent.pod("javaweb-2").expect("pod exists");
        let init = container(&pod, "war");
        let app = container(&pod, "tomcat");
        let init_done = init["state"]["terminated"]["exitCode"] == 0;
        if !init_done {
            assert!(
                !app["state"]["running"].is_object(),
                "the app runs before the init container exited 0: {pod:#}"
            );
            assert!(
                app["state"]["terminated"].is_null(),
                "the app ran before the init container exited 0: {pod:#}"
            );
            if init["state"]["running"].is_object() {
                assert_eq!(
                    app["state"]["waiting"]["reason"], "PodInitializing",
                    "{pod:#}"
                );
                saw_app_initializing = true;
            }
        }
        if all_running(&pod) && agent.get_status("javaweb-2") == "Running" {
            statuses.push("Running".into());
            statuses.dedup();
            break pod;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        saw_app_initializing,
        "never saw the init container running (it sleeps 2 s)"
    );
    // Perhaps Pending (before the kubelet's first status), Init:0/1, perhaps PodInitializing,
    // then Running; nothing else.
    assert!(statuses.iter().any(|s| s == "Init:0/1"), "{statuses:?}");
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("Running"),
        "{statuses:?}"
    );
    let allowed = ["Pending", "Init:0/1", "PodInitializing", "Running"];
    let mut order = statuses.iter().map(|s| {
        allowed
            .iter()
            .position(|a| a == s)
            .unwrap_or_else(|| panic!("unexpected status {s}: {statuses:?}"))
    });
    let mut previous = order.next().unwrap();
    for next in order {
        assert!(next > previous, "statuses out of order: {statuses:?}");
        previous = next;
    }

    let init = container(&pod, "war");
    assert_eq!(
        init["state"]["terminated"]["reason"], "Completed",
        "{init:#}"
    );
    assert_eq!(init["restartCount"], 0, "{init:#}");
    let finished = timestamp(&init["state"]["terminated"]["finishedAt"]);
    let init_started = timestamp(&init["state"]["terminated"]["startedAt"]);
    let app_started = timestamp(&container(&pod, "tomcat")["state"]["running"]["startedAt"]);
    assert!(
        init_started <= finished && finished <= app_started,
        "init {init_started}..{finished}, app started {app_started}"
    );
    assert!(
        finished.duration_since(init_started) >= jiff::SignedDuration::from_secs(1),
        "the init container sleeps 2 s"
    );
    let initialized = condition(&pod, "Initialized");
    assert_eq!(initialized["status"], "True", "{initialized:#}");

    let body = wait_exec(
        &agent,
        "javaweb-2",
        "tomcat",
        &["wget", "-qO-", "http://localhost:8080/"],
        Duration::from_secs(10),
        |_| true,
    );
    assert_eq!(body, "<h1>sample app v2</h1>\n");

    agent.delete_and_check("javaweb-2", "1");
}

#[test]
fn s4_log_sidecar_shows_the_apps_lines() {
    let agent = Agent::start();
    agent.run_example("s4-log-sidecar.yaml", "log-collector");

    let seen = poll(
        Duration::from_secs(15),
        POLL,
        || logs(&agent, "log-collector", "sidecar"),
        |seen| seen.lines().any(|l| l == "app line 3"),
    );
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines.contains(&"app line 3"),
        "the sidecar's log should carry the app's lines: {seen:?}"
    );
    // The lines arrive complete and in order (tail -F from the file's start).
    let expected: Vec<String> = (1..=lines.len()).map(|i| format!("app line {i}")).collect();
    assert_eq!(lines, expected, "the sidecar's log");
    // The app itself writes to the file, not to stdout.
    assert_eq!(logs(&agent, "log-collector", "app"), "");
    let (code, file, _) = agent.exec("log-collector", "app", &["cat", "/var/log/app.log"]);
    assert_eq!(code, 0);
    assert!(
        file.starts_with(&seen),
        "the file {file:?} holds what the sidecar showed {seen:?}"
    );

    agent.delete_and_check("log-collector", "1");
}

#[test]
fn s5_reverse_proxy_forwards_to_the_loopback_only_app() {
    let agent = Agent::start();
    agent.run_example("s5-reverse-proxy.yaml", "proxied-app");

    // Through the proxy on :80 (twice: the proxy keeps listening) ...
    for _ in 0..2 {
        let body = wait_exec(
            &agent,
            "proxied-app",
            "proxy",
            &["wget", "-qO-", "http://localhost:80/index.html"],
            Duration::from_secs(10),
            |_| true,
        );
        assert_eq!(body, "hello from the app\n");
    }
    // ... the app answers on loopback to the other container too (one network namespace).
    let (code, body, err) = agent.exec(
        "proxied-app",
        "proxy",
        &["wget", "-qO-", "http://127.0.0.1:8080/index.html"],
    );
    assert_eq!((code, body.as_str()), (0, "hello from the app\n"), "{err}");
    // The app is bound to 127.0.0.1:8080 only, the proxy to 0.0.0.0:80 (so POD_IP:8080 is
    // refused once the pod network exists): the listening sockets in /proc/net/tcp.
    let (code, tcp, _) = agent.exec(
        "proxied-app",
        "app",
        &["cat", "/proc/net/tcp", "/proc/net/tcp6"],
    );
    assert_eq!(code, 0);
    let listening: Vec<&str> = tcp
        .lines()
        .skip(1)
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            (fields.get(3) == Some(&"0A")).then(|| fields[1])
        })
        .collect();
    assert!(
        listening.contains(&"0100007F:1F90"),
        "app on 127.0.0.1:8080: {tcp}"
    );
    let any = ["00000000:0050", "00000000000000000000000000000000:0050"];
    assert!(
        listening.iter().any(|l| any.contains(l)),
        "proxy on 0.0.0.0:80 or [::]:80: {tcp}"
    );
    assert_eq!(
        listening.iter().filter(|l| l.ends_with(":1F90")).count(),
        1,
        "8080 on loopback only: {tcp}"
    );

    agent.delete_and_check("proxied-app", "1");
}

#[test]
fn s6_sync_build_serve_shows_a_source_change() {
    let agent = Agent::start();
    let host = tempfile::tempdir().unwrap();
    let remote = host.path().join("site"); // does not exist: DirectoryOrCreate makes it
    let manifest = example_text("s6-sync-build-serve.yaml");
    assert!(manifest.contains("path: /srv/peapod-site\n"));
    let manifest = manifest.replace(
        "path: /srv/peapod-site\n",
        &format!("path: {}\n", remote.display()),
    );
    assert_eq!(agent.apply(&manifest).trim(), "pod/static-site created");
    agent.wait_running("static-site");
    assert!(
        remote.is_dir(),
        "DirectoryOrCreate created the hostPath directory"
    );

    let page = || {
        wait_exec(
            &agent,
            "static-site",
            "web",
            &["wget", "-qO-", "http://localhost:8080/index.html"],
            Duration::from_secs(10),
            |_| true,
        )
    };
    std::fs::write(remote.join("page.md"), "version one\n").unwrap();
    let body = poll(Duration::from_secs(15), POLL, page, |body| {
        body.contains("version one")
    });
    assert_eq!(body, "<html><body>\nversion one\n</body></html>\n");

    // Change the source on the host: within a few seconds the served page shows the change.
    std::fs::write(remote.join("page.md"), "version two\n").unwrap();
    let changed = std::time::Instant::now();
    let body = poll(Duration::from_secs(10), POLL, page, |body| {
        body.contains("version two")
    });
    assert_eq!(
        body, "<html><body>\nversion two\n</body></html>\n",
        "the change never reached the page"
    );
    assert!(
        changed.elapsed() < Duration::from_secs(6),
        "took {:?}",
        changed.elapsed()
    );
    // The syncer mounts the remote read-only.
    let (code, _, _) = agent.exec("static-site", "syncer", &["touch", "/remote/x"]);
    assert_ne!(code, 0, "the remote is mounted read-only in the syncer");
    assert!(!remote.join("x").exists());

    agent.delete_and_check("static-site", "1");
    assert!(
        remote.join("page.md").exists(),
        "the hostPath content survives the pod"
    );
}

#[test]
fn s7_unix_socket_between_containers() {
    let agent = Agent::start();
    agent.run_example("s7-unix-socket.yaml", "unix-socket");

    // The collector logs the records the scraper writes to the socket.
    let records = |log: &str| -> Vec<u32> {
        log.lines()
            .filter(|l| l.contains("scraper"))
            .filter_map(|l| l.split("record ").nth(1)?.trim().parse().ok())
            .collect()
    };
    let log = poll(
        Duration::from_secs(15),
        POLL,
        || logs(&agent, "unix-socket", "collector"),
        |log| records(log).len() >= 2,
    );
    let got = records(&log);
    assert!(
        got.len() >= 2,
        "the collector should log the scraper's records: {log:?}"
    );
    assert!(
        got.windows(2).all(|w| w[1] == w[0] + 1),
        "records in order, none lost: {got:?}"
    );
    // The socket is in the shared volume, seen by both.
    for name in ["collector", "scraper"] {
        let (code, _, err) = agent.exec("unix-socket", name, &["test", "-S", "/sockets/log"]);
        assert_eq!(code, 0, "{name} sees the socket in the emptyDir: {err}");
    }
    // The scraper's own log is empty: its records went over the socket.
    assert_eq!(logs(&agent, "unix-socket", "scraper"), "");

    agent.delete_and_check("unix-socket", "1");
}

/// The checks of S8 common to both variants: UTS, IPC and network shared.
fn s8_shared_uts_ipc_net(agent: &Agent) {
    for name in ["first", "second"] {
        let (code, host, _) = agent.exec("shared-namespaces", name, &["hostname"]);
        assert_eq!(
            (code, host.trim()),
            (0, "shared-namespaces"),
            "{name}'s hostname"
        );
    }
    let marker = wait_exec(
        agent,
        "shared-namespaces",
        "second",
        &["cat", "/dev/shm/marker"],
        Duration::from_secs(5),
        |_| true,
    );
    assert_eq!(
        marker, "from-first\n",
        "a file made in /dev/shm by one container is read by the other"
    );
    // The same interfaces, with the same addresses (counters move between two reads).
    let interfaces = |container: &str| {
        let (_, out, _) = agent.exec("shared-namespaces", container, &["ip", "-o", "-4", "addr"]);
        out.lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
    };
    let first_ifaces = interfaces("first");
    assert!(
        first_ifaces.iter().any(|l| l.contains("lo inet 127.0.0.1"))
            && first_ifaces.iter().any(|l| l.contains("eth0 inet")),
        "{first_ifaces:?}"
    );
    assert_eq!(
        first_ifaces,
        interfaces("second"),
        "both containers see the same interfaces"
    );
    // One namespace each for the pod, not the host's.
    for ns in ["uts", "ipc", "net"] {
        let (a, b) = (ns_link(agent, "first", ns), ns_link(agent, "second", ns));
        let host = std::fs::read_link(format!("/proc/self/ns/{ns}"))
            .unwrap()
            .to_string_lossy()
            .to_string();
        assert_eq!(a, b, "the {ns} namespace is shared");
        assert!(a.trim().starts_with(&format!("{ns}:[")), "{a}");
        assert_ne!(a.trim(), host, "the pod has its own {ns} namespace");
    }
}

/// `readlink /proc/self/ns/NS` run by exec in container `name` of the S8 pod.
fn ns_link(agent: &Agent, name: &str, ns: &str) -> String {
    let link = format!("/proc/self/ns/{ns}");
    agent
        .exec("shared-namespaces", name, &["readlink", &link])
        .1
}

fn sleeps_in_ps(agent: &Agent, name: &str) -> (usize, String) {
    let (code, ps, err) = agent.exec("shared-namespaces", name, &["ps"]);
    assert_eq!(code, 0, "ps in {name}: {err}");
    (
        ps.lines()
            .filter(|l| l.trim_end().ends_with("sleep 3600"))
            .count(),
        ps,
    )
}

/// The container's processes seen from the host: (host pid, pid in its own PID namespace,
/// command line).
fn host_processes(agent: &Agent, name: &str) -> Vec<(i32, i32, String)> {
    let pod = agent.pod("shared-namespaces").unwrap();
    let uid = pod["metadata"]["uid"].as_str().unwrap();
    container_pids(uid, &container_id_of(&pod, name))
        .into_iter()
        .map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let ns_pid = status
                .lines()
                .find(|l| l.starts_with("NSpid:"))
                .and_then(|l| l.split_whitespace().last())
                .and_then(|p| p.parse().ok())
                .unwrap_or(-1);
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (pid, ns_pid, cmdline)
        })
        .collect()
}

#[test]
fn s8_shared_namespaces_with_share_process_namespace() {
    let agent = Agent::start();
    agent.run_example("s8-shared-namespaces.yaml", "shared-namespaces");
    s8_shared_uts_ipc_net(&agent);

    // PID 1 is the pod's infra process; each container's ps lists the other's sleep too.
    for name in ["first", "second"] {
        let (code, cmdline, _) = agent.exec("shared-namespaces", name, &["cat", "/proc/1/cmdline"]);
        assert_eq!(code, 0);
        assert!(
            cmdline.contains("peapod"),
            "PID 1 in {name} is the infra process: {cmdline:?}"
        );
        let (sleeps, ps) = sleeps_in_ps(&agent, name);
        assert_eq!(sleeps, 2, "{name}'s ps lists both containers' sleep:\n{ps}");
        // Seen from the host, no container process is PID 1 of its namespace.
        let processes = host_processes(&agent, name);
        assert!(!processes.is_empty(), "{name} has processes");
        assert!(processes.iter().all(|p| p.1 > 1), "{name}: {processes:?}");
    }
    let (a, b) = (
        ns_link(&agent, "first", "pid"),
        ns_link(&agent, "second", "pid"),
    );
    assert_eq!(a, b, "one PID namespace");
    // exec joins the container's own mount namespace (not the shim's, not the host's).
    for name in ["first", "second"] {
        let mnt = ns_link(&agent, name, "mnt");
        let (pid, _, _) = host_processes(&agent, name)[0].clone();
        let own = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
        assert_eq!(
            mnt.trim(),
            own.to_string_lossy(),
            "exec in {name} runs in its mount namespace"
        );
    }

    agent.delete_and_check("shared-namespaces", "1");
}

#[test]
fn s8_shared_namespaces_without_share_process_namespace() {
    let agent = Agent::start();
    let manifest = example_text("s8-shared-namespaces.yaml");
    assert!(manifest.contains("  shareProcessNamespace: true\n"));
    let manifest = manifest.replace("  shareProcessNamespace: true\n", "");
    assert_eq!(
        agent.apply(&manifest).trim(),
        "pod/shared-namespaces created"
    );
    agent.wait_running("shared-namespaces");
    s8_shared_uts_ipc_net(&agent);

    // Each container's main process is PID 1 of its own namespace: /proc/1/cmdline inside
    // shows the container's own command (busybox sh execs the last command, so both run
    // `sleep 3600`: the host view tells them apart), and its ps shows only its own processes.
    for name in ["first", "second"] {
        let (code, inside, _) = agent.exec("shared-namespaces", name, &["cat", "/proc/1/cmdline"]);
        assert_eq!(code, 0);
        assert_eq!(inside, "sleep\u{0}3600\u{0}", "{name}'s PID 1");
        let processes = host_processes(&agent, name);
        let main: Vec<_> = processes.iter().filter(|p| p.1 == 1).collect();
        assert_eq!(main.len(), 1, "one PID 1 in {name}'s cgroup: {processes:?}");
        assert_eq!(main[0].2, inside, "{name}'s PID 1 is its own main process");
        let (sleeps, ps) = sleeps_in_ps(&agent, name);
        assert_eq!(sleeps, 1, "{name}'s ps lists only its own sleep:\n{ps}");
        assert!(
            !ps.contains("peapod"),
            "{name} does not see the infra process:\n{ps}"
        );
    }
    let (a, b) = (
        ns_link(&agent, "first", "pid"),
        ns_link(&agent, "second", "pid"),
    );
    assert_ne!(a, b, "a PID namespace per container");

    agent.delete_and_check("shared-namespaces", "1");
}

#[test]
fn s9_restart_always_brings_a_killed_container_back_with_its_volume() {
    let agent = Agent::start();
    let pod = agent.run_example("s9-restart.yaml", "survivor");
    let uid = agent.uid("survivor");
    let first_id = container_id_of(&pod, "main");
    let (code, starts, _) = agent.exec("survivor", "main", &["cat", "/state/starts"]);
    assert_eq!((code, starts.lines().count()), (0, 1), "{starts:?}");

    // Kill the container's main process from the host.
    kill_the_sleep(&uid, &first_id);

    let pod = agent.wait_pod(
        "survivor",
        "restartCount 1 and running again",
        Duration::from_secs(20),
        |pod| {
            let main = container(pod, "main");
            main["restartCount"] == 1 && main["state"]["running"].is_object()
        },
    );
    let main = container(&pod, "main");
    assert_eq!(main["lastState"]["terminated"]["exitCode"], 137, "{main:#}");
    assert_eq!(
        main["lastState"]["terminated"]["reason"], "Error",
        "{main:#}"
    );
    assert_ne!(
        main["containerID"],
        first_id.as_str(),
        "a restarted container is a new container"
    );
    assert_eq!(pod["status"]["phase"], "Running");
    assert_eq!(pod["metadata"]["uid"], uid.as_str(), "the same pod");
    // Volume content intact: the second start appended to the first's line.
    let (code, starts, _) = agent.exec("survivor", "main", &["cat", "/state/starts"]);
    assert_eq!((code, starts.lines().count()), (0, 2), "{starts:?}");
    let table = agent.ok(&["get", "pod", "survivor"]);
    assert_eq!(
        &columns(&table, 1)[1..4],
        ["1/1", "Running", "1"],
        "{table}"
    );

    agent.delete_and_check("survivor", "1");
}

#[test]
fn s9_restart_never_ends_failed_on_kill_and_succeeded_on_exit_0() {
    let agent = Agent::start();
    let manifest = example_text("s9-restart.yaml");
    assert!(manifest.contains("restartPolicy: Always") && manifest.contains("exec sleep 3600"));
    let never = manifest.replace("restartPolicy: Always", "restartPolicy: Never");
    // `killed`: its main process is killed (137). `clean`: its sleep is killed and the shell
    // then exits 0.
    agent.apply(&never.replace("name: survivor", "name: killed"));
    agent.apply(
        &never
            .replace("name: survivor", "name: clean")
            .replace("exec sleep 3600", "sleep 3600; exit 0"),
    );
    let killed = agent.wait_running("killed");
    let clean = agent.wait_running("clean");
    let killed_uid = agent.uid("killed");
    let clean_uid = agent.uid("clean");
    let killed_id = container_id_of(&killed, "main");
    let clean_id = container_id_of(&clean, "main");

    kill_the_sleep(&killed_uid, &killed_id);
    kill_the_sleep(&clean_uid, &clean_id);

    let killed = agent.wait_phase("killed", "Failed", Duration::from_secs(20));
    let main = container(&killed, "main");
    assert_eq!(main["state"]["terminated"]["exitCode"], 137, "{main:#}");
    assert_eq!(main["state"]["terminated"]["reason"], "Error", "{main:#}");
    let clean = agent.wait_phase("clean", "Succeeded", Duration::from_secs(20));
    let main = container(&clean, "main");
    assert_eq!(main["state"]["terminated"]["exitCode"], 0, "{main:#}");
    assert_eq!(
        main["state"]["terminated"]["reason"], "Completed",
        "{main:#}"
    );
    assert_eq!(agent.get_status("killed"), "Error");
    assert_eq!(agent.get_status("clean"), "Completed");

    // Never: nothing is restarted, the phase stays (the backoff base is 1 s).
    std::thread::sleep(Duration::from_secs(3));
    for (name, phase) in [("killed", "Failed"), ("clean", "Succeeded")] {
        let pod = agent.pod(name).unwrap();
        assert_eq!(pod["status"]["phase"], phase, "{pod:#}");
        assert_eq!(container(&pod, "main")["restartCount"], 0, "{pod:#}");
        assert!(
            container(&pod, "main")["state"]["terminated"].is_object(),
            "{pod:#}"
        );
    }

    agent.delete_and_check("killed", "1");
    agent.delete_and_check("clean", "1");
}
