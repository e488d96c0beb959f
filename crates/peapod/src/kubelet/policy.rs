//! The node options kubelet takes as flags that change how pods run here: the pod pids limit
//! (`--pod-max-pids`) and the unsafe sysctls pods may set (`--allowed-unsafe-sysctls`), read
//! from `PEAPOD_POD_PIDS_LIMIT` and `PEAPOD_ALLOWED_UNSAFE_SYSCTLS`.

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{variable}={value:?}: {reason}")]
    Invalid {
        variable: &'static str,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeletPolicy {
    /// The most processes one pod may hold (its cgroup's pids.max); None is unlimited, as
    /// kubelet's default of -1.
    pub pod_pids_limit: Option<u64>,
    /// Sysctls pods may set beyond the safe set; an entry ending in `*` is a prefix.
    pub allowed_unsafe_sysctls: Vec<String>,
}

const PIDS_LIMIT: &str = "PEAPOD_POD_PIDS_LIMIT";
const UNSAFE_SYSCTLS: &str = "PEAPOD_ALLOWED_UNSAFE_SYSCTLS";

impl KubeletPolicy {
    pub fn from_env() -> Result<KubeletPolicy, PolicyError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyError> {
        let pod_pids_limit = match lookup(PIDS_LIMIT) {
            None => None,
            Some(value) => match value.trim().parse::<i64>() {
                Ok(n) if n > 0 => Some(n as u64),
                Ok(_) => None,
                Err(_) => {
                    return Err(PolicyError::Invalid {
                        variable: PIDS_LIMIT,
                        value,
                        reason: "must be a whole number (-1 for no limit)".into(),
                    })
                }
            },
        };
        let allowed_unsafe_sysctls: Vec<String> = lookup(UNSAFE_SYSCTLS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for entry in &allowed_unsafe_sysctls {
            if !is_namespaced(entry) {
                let (article, noun) = if entry.ends_with('*') {
                    ("sysctls", "are")
                } else {
                    ("sysctl", "is")
                };
                return Err(PolicyError::Invalid {
                    variable: UNSAFE_SYSCTLS,
                    value: entry.clone(),
                    reason: format!("the {article} {entry:?} {noun} not known to be namespaced"),
                });
            }
        }
        Ok(KubeletPolicy {
            pod_pids_limit,
            allowed_unsafe_sysctls,
        })
    }
}

/// Whether a sysctl (or a `prefix*` pattern) lives in a namespace a pod owns (IPC or
/// network), so setting it cannot touch the host: kubelet's sysctl/namespace.go.
pub fn is_namespaced(name: &str) -> bool {
    let name = name.trim_end_matches('*');
    name == "kernel.sem"
        || ["kernel.shm", "kernel.msg", "fs.mqueue.", "net."]
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(vars: &[(&str, &str)]) -> Result<KubeletPolicy, PolicyError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KubeletPolicy::from_lookup(|name| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn defaults_are_unlimited_and_safe_only() {
        assert_eq!(policy(&[]).unwrap(), KubeletPolicy::default());
        assert_eq!(policy(&[(PIDS_LIMIT, "-1")]).unwrap().pod_pids_limit, None);
        assert_eq!(
            policy(&[(PIDS_LIMIT, "256")]).unwrap().pod_pids_limit,
            Some(256)
        );
        assert!(policy(&[(PIDS_LIMIT, "many")]).is_err());
    }

    #[test]
    fn unsafe_sysctls_must_be_namespaced() {
        let allowed = policy(&[(UNSAFE_SYSCTLS, "kernel.msg*, net.core.somaxconn")]).unwrap();
        assert_eq!(
            allowed.allowed_unsafe_sysctls,
            vec!["kernel.msg*", "net.core.somaxconn"]
        );
        let err = policy(&[(UNSAFE_SYSCTLS, "vm.swappiness")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the sysctl \"vm.swappiness\" is not known to be namespaced"),
            "{err}"
        );
        let err = policy(&[(UNSAFE_SYSCTLS, "kernel.*")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the sysctls \"kernel.*\" are not known to be namespaced"),
            "{err}"
        );
    }
}
