//! The agent's state is private to root, as kubelet's and containerd's is: another local user
//! (`nobody`) can read no pod spec, env value, bundle, log or writable layer, and can change
//! no volume or termination message. The agent's root is made 0755 first, which is what the
//! default root `/` gives (a temporary directory's 0700 would hide every leak).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::*;

const SECRET: &str = "hunter2-TOPSECRET";

/// Runs `args` as `nobody` (uid and gid 65534, no supplementary groups).
fn as_nobody(args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(args)
        .output()
        .expect("running setpriv")
}

/// What `nobody` managed to do that it must not, all reported at once.
#[derive(Default)]
struct Nobody {
    leaks: Vec<String>,
}

impl Nobody {
    /// `nobody` running `args` (to `what`) must fail with EACCES.
    fn cannot(&mut self, what: &str, args: &[&str]) {
        let out = as_nobody(args);
        if out.status.success() || !text(&out.stderr).contains("Permission denied") {
            self.leaks.push(format!(
                "{what}: {args:?} exited {} with {} bytes of output, stderr {:?}",
                out.status,
                out.stdout.len(),
                text(&out.stderr)
            ));
        }
    }

    fn cannot_read(&mut self, what: &str, path: &Path) {
        assert!(path.exists(), "{} does not exist", path.display());
        self.cannot(&format!("read {what}"), &["cat", path.to_str().unwrap()]);
    }

    fn assert_nothing_leaked(self) {
        assert!(
            self.leaks.is_empty(),
            "nobody could\n{}",
            self.leaks.join("\n")
        );
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// An agent whose root is as reachable as `/` is.
fn agent_with_an_open_root() -> Agent {
    let agent = Agent::start();
    chmod(agent.path(), 0o755);
    agent
}

/// The paths of one pod's state on the host.
struct PodFiles {
    database: PathBuf,
    data_dir: PathBuf,
    run_dir: PathBuf,
    log_dir: PathBuf,
}

impl PodFiles {
    fn of(agent: &Agent, name: &str) -> PodFiles {
        let uid = agent.uid(name);
        let root = agent.path();
        PodFiles {
            database: root.join("var/lib/peapod/peapod.db"),
            data_dir: root.join("var/lib/peapod/pods").join(&uid),
            run_dir: root.join("run/peapod/pods").join(&uid),
            log_dir: root
                .join("var/log/pods")
                .join(format!("default_{name}_{uid}")),
        }
    }

    fn wal(&self) -> PathBuf {
        self.database.with_extension("db-wal")
    }

    fn config_json(&self, container_id: &str) -> PathBuf {
        self.run_dir
            .join("bundles")
            .join(id(container_id))
            .join("config.json")
    }

    fn attempt_dir(&self, container: &str, container_id: &str) -> PathBuf {
        self.data_dir
            .join("containers")
            .join(container)
            .join(id(container_id))
    }

    fn log(&self, container: &str) -> PathBuf {
        self.log_dir.join(container).join("0.log")
    }

    fn empty_dir(&self, volume: &str) -> PathBuf {
        self.data_dir
            .join("volumes/kubernetes.io~empty-dir")
            .join(volume)
    }
}

fn id(container_id: &str) -> &str {
    container_id.trim_start_matches("peapod://")
}

fn secret_pod(name: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  volumes:
  - name: shared
    emptyDir: {{}}
  containers:
  - name: app
    image: busybox
    command: ["sh", "-c", "echo app-private-key > /root/key.pem; echo original > /shared/index.html; echo password $DB_PASSWORD; exec sleep 3600"]
    env: [{{name: DB_PASSWORD, value: {SECRET}}}]
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: done
    image: busybox
    command: ["sh", "-c", "echo finished > /dev/termination-log; exit 3"]
"#
    )
}

/// Runs the secret pod until `app` has written its files and `done` has exited.
fn run_secret_pod(agent: &Agent, name: &str) -> serde_json::Value {
    agent.apply(&secret_pod(name));
    let pod = agent.wait_pod(
        name,
        "app running and done terminated",
        Duration::from_secs(30),
        |p| {
            container(p, "app")["state"]["running"].is_object()
                && container(p, "done")["state"]["terminated"]["message"] == "finished\n"
        },
    );
    let files = PodFiles::of(agent, name);
    wait_until(Duration::from_secs(10), "app's output", || {
        std::fs::read_to_string(files.log("app")).is_ok_and(|log| log.contains(SECRET))
    });
    pod
}

#[test]
fn another_user_can_read_or_change_nothing_of_a_pod() {
    let agent = agent_with_an_open_root();
    let pod = run_secret_pod(&agent, "private");
    let files = PodFiles::of(&agent, "private");
    let app = container_id_of(&pod, "app");
    let config = files.config_json(&app);
    assert!(std::fs::read_to_string(&config).unwrap().contains(SECRET));

    let mut nobody = Nobody::default();
    nobody.cannot_read("the object database", &files.database);
    nobody.cannot_read("the database's WAL", &files.wal());
    nobody.cannot_read("a bundle's env", &config);
    nobody.cannot_read("a container log", &files.log("app"));
    let key = files.attempt_dir("app", &app).join("upper/root/key.pem");
    nobody.cannot_read("a container's writable layer", &key);

    let shared = files.empty_dir("shared");
    assert!(shared.join("index.html").exists());
    let injected = shared.join("injected");
    nobody.cannot(
        "create a file in an emptyDir",
        &["touch", injected.to_str().unwrap()],
    );
    let (index, moved) = (shared.join("index.html"), shared.join("old"));
    nobody.cannot(
        "rename a file in an emptyDir",
        &["mv", index.to_str().unwrap(), moved.to_str().unwrap()],
    );
    let message = files
        .attempt_dir("done", &container_id_of(&pod, "done"))
        .join("termination-log");
    assert!(message.exists(), "{}", message.display());
    nobody.cannot(
        "write a termination message",
        &[
            "sh",
            "-c",
            "echo spoofed > \"$1\"",
            "sh",
            message.to_str().unwrap(),
        ],
    );

    nobody.assert_nothing_leaked();

    let (code, served, _) = agent.exec("private", "app", &["cat", "/shared/index.html"]);
    assert_eq!((code, served.as_str()), (0, "original\n"));
    agent.delete_and_check("private", "0");
}

#[test]
fn an_agent_started_on_an_older_open_installation_closes_it() {
    let mut agent = agent_with_an_open_root();
    let pod = run_secret_pod(&agent, "inherited");
    let files = PodFiles::of(&agent, "inherited");
    let config = files.config_json(&container_id_of(&pod, "app"));
    agent.kill_agent();

    // The modes an older agent gave its state.
    let root = agent.path().to_path_buf();
    for dir in [
        root.join("var/lib/peapod"),
        root.join("var/lib/peapod/pods"),
        files.data_dir.clone(),
        root.join("run/peapod"),
        root.join("run/peapod/pods"),
        files.run_dir.clone(),
        files.log_dir.clone(),
    ] {
        chmod(&dir, 0o755);
    }
    for file in [&files.database, &files.wal(), &config, &files.log("app")] {
        chmod(file, 0o644);
    }
    let read = as_nobody(&["cat", files.database.to_str().unwrap()]);
    assert!(read.status.success(), "the old installation is open");

    agent.restart();
    let mut nobody = Nobody::default();
    nobody.cannot_read("the object database", &files.database);
    nobody.cannot_read("the database's WAL", &files.wal());
    nobody.cannot_read("a bundle's env", &config);
    nobody.cannot_read("a container log", &files.log("app"));
    nobody.assert_nothing_leaked();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&root.join("var/lib/peapod")), 0o700);
    assert_eq!(mode(&root.join("run/peapod")), 0o711);
    assert_eq!(mode(&root.join("run/peapod/pods")), 0o700);
    assert_eq!(mode(&files.log_dir), 0o750);
    assert_eq!(mode(&files.database), 0o600);

    agent.wait_pod(
        "inherited",
        "app still running",
        Duration::from_secs(10),
        |p| container(p, "app")["state"]["running"].is_object(),
    );
    agent.delete_and_check("inherited", "0");
}
