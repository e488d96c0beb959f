//! Where peapod keeps things on the host: every path derives from `PEAPOD_ROOT` (default `/`),
//! so two agents with different roots never share a file, a socket or a cgroup.

use std::path::{Path, PathBuf};

/// The host paths of one agent installation.
#[derive(Clone, Debug)]
pub struct Paths {
    root: PathBuf,
}

impl Paths {
    /// Paths under `PEAPOD_ROOT`, or under `/` when it is unset or empty.
    pub fn from_env() -> Paths {
        match std::env::var_os("PEAPOD_ROOT") {
            Some(root) if !root.is_empty() => Paths::new(PathBuf::from(root)),
            _ => Paths::new(PathBuf::from("/")),
        }
    }

    pub fn new(root: PathBuf) -> Paths {
        Paths { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Persistent data: the object database, images, pod volumes and writable layers.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("var/lib/peapod")
    }

    /// Runtime state that does not outlive a reboot: sockets, bundles, shim state.
    pub fn run_dir(&self) -> PathBuf {
        self.root.join("run/peapod")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("peapod.sock")
    }

    pub fn database(&self) -> PathBuf {
        self.data_dir().join("peapod.db")
    }

    /// The cluster CA, the API's serving certificate and the admin's client certificate.
    pub fn tls_dir(&self) -> PathBuf {
        self.data_dir().join("tls")
    }

    /// The admin kubeconfig for the API's HTTPS listener.
    pub fn kubeconfig(&self) -> PathBuf {
        self.data_dir().join("kubeconfig.yaml")
    }

    /// Bearer tokens, in kube-apiserver's `--token-auth-file` format.
    pub fn tokens_file(&self) -> PathBuf {
        self.data_dir().join("tokens.csv")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.data_dir().join("images")
    }

    /// Localhost seccomp profiles, as kubelet's `<root>/seccomp`.
    pub fn seccomp_dir(&self) -> PathBuf {
        self.data_dir().join("seccomp")
    }

    /// The volumes the local-path provisioner makes, one directory each.
    pub fn storage_dir(&self) -> PathBuf {
        self.data_dir().join("storage")
    }

    /// Where each pod's data directory lives, as kubelet's /var/lib/kubelet/pods.
    pub fn pods_data_root(&self) -> PathBuf {
        self.data_dir().join("pods")
    }

    /// Pod data kept on disk (volumes, container writable layers).
    pub fn pod_data_dir(&self, uid: &str) -> PathBuf {
        self.pods_data_root().join(uid)
    }

    /// Pod runtime state: the shim socket, OCI bundles, generated /etc files, libcontainer state.
    pub fn pod_run_dir(&self, uid: &str) -> PathBuf {
        self.run_dir().join("pods").join(uid)
    }

    pub fn pods_run_root(&self) -> PathBuf {
        self.run_dir().join("pods")
    }

    /// `/var/log/pods/NAMESPACE_NAME_UID`, kubelet's layout.
    pub fn pod_log_dir(&self, namespace: &str, name: &str, uid: &str) -> PathBuf {
        self.root
            .join("var/log/pods")
            .join(format!("{namespace}_{name}_{uid}"))
    }

    /// The CRI log of one container attempt: `<pod log dir>/CONTAINER/ATTEMPT.log`.
    pub fn container_log(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        attempt: i32,
    ) -> PathBuf {
        self.pod_log_dir(namespace, name, uid)
            .join(container)
            .join(format!("{attempt}.log"))
    }

    pub fn pod_logs_root(&self) -> PathBuf {
        self.root.join("var/log/pods")
    }

    /// The cgroup parent of every pod of this agent, relative to each hierarchy's root.
    /// The default root gets `/peapod`; another root gets its own parent so that agents
    /// side by side never touch each other's cgroups.
    pub fn cgroup_parent(&self) -> String {
        if self.root == Path::new("/") {
            "/peapod".to_string()
        } else {
            let digest = fnv1a(self.root.as_os_str().as_encoded_bytes());
            format!("/peapod-{digest:016x}")
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_root_uses_the_documented_paths() {
        let paths = Paths::new("/".into());
        assert_eq!(paths.socket(), Path::new("/run/peapod/peapod.sock"));
        assert_eq!(paths.database(), Path::new("/var/lib/peapod/peapod.db"));
        assert_eq!(
            paths.pod_log_dir("default", "web", "u1"),
            Path::new("/var/log/pods/default_web_u1")
        );
        assert_eq!(paths.cgroup_parent(), "/peapod");
    }

    #[test]
    fn other_roots_get_their_own_cgroup_parent() {
        let a = Paths::new("/tmp/a".into()).cgroup_parent();
        let b = Paths::new("/tmp/b".into()).cgroup_parent();
        assert_ne!(a, b);
        assert!(a.starts_with("/peapod-"));
    }
}
