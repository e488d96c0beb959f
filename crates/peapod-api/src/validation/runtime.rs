//! Checks stricter than Kubernetes, for values the API server accepts but no container
//! runtime can use: on a cluster they fail only when the container starts (containerd's
//! `StartError`), with a runtime error that does not name the field.

use k8s_openapi::api::core::v1::{Container, VolumeMount};

use super::{FieldError, FieldPath};

/// What a mount at /proc or below does to the runtime, which mounts procfs there.
const PROC_DETAIL: &str =
    "must not be /proc or below it: the container runtime mounts procfs there";
const NUL_DETAIL: &str = "must not contain a NUL byte";

/// Files below /proc that runc and libcontainer let a mount cover, as lxcfs does.
const PROC_FILES_ALLOWED: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// A mountPath at or below /proc (relative ones are taken from the root, as the runtime
/// takes them). Kubernetes accepts it; runc refuses it at start ("is not of type proc"),
/// and libcontainer's init dies on it without saying why.
pub fn proc_mount(mount: &VolumeMount, path: &FieldPath) -> Option<FieldError> {
    let target = lexically_absolute(&mount.mount_path);
    let below_proc = target == "/proc" || target.starts_with("/proc/");
    (below_proc && !PROC_FILES_ALLOWED.contains(&target.as_str()))
        .then(|| FieldError::invalid(path, &mount.mount_path, PROC_DETAIL))
}

/// `path` from the root with `.`, `..` and repeated slashes resolved, without the file system.
fn lexically_absolute(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// NUL bytes in what becomes the process's argv, environment and working directory, or the
/// image reference. JSON strings may hold `\u0000` and Kubernetes accepts them, but the exec
/// and chdir system calls cannot take them: the runtime truncates or fails.
pub fn nul_bytes(c: &Container, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut check = |value: &str, field: FieldPath| {
        if value.contains('\0') {
            errs.push(FieldError::invalid(&field, value, NUL_DETAIL));
        }
    };
    check(c.image.as_deref().unwrap_or_default(), path.child("image"));
    for (field, list) in [("command", &c.command), ("args", &c.args)] {
        for (i, item) in list.iter().flatten().enumerate() {
            check(item, path.child(field).index(i));
        }
    }
    for (i, var) in c.env.iter().flatten().enumerate() {
        let value = var.value.as_deref().unwrap_or_default();
        check(value, path.child("env").index(i).child("value"));
    }
    check(
        c.working_dir.as_deref().unwrap_or_default(),
        path.child("workingDir"),
    );
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mount_error(mount_path: &str) -> Option<String> {
        let mount: VolumeMount =
            serde_json::from_value(json!({"name": "v", "mountPath": mount_path})).unwrap();
        let path = FieldPath::new("spec.containers[0].volumeMounts[0].mountPath");
        proc_mount(&mount, &path).map(|e| e.to_string())
    }

    #[test]
    fn a_mount_at_or_below_proc_is_refused_with_its_field_path() {
        assert_eq!(
            mount_error("/proc").as_deref(),
            Some(
                r#"spec.containers[0].volumeMounts[0].mountPath: Invalid value: "/proc": must not be /proc or below it: the container runtime mounts procfs there"#
            )
        );
        for refused in [
            "/proc/",
            "/proc/sys",
            "proc",
            "//proc",
            "/x/../proc/net",
            "../../proc",
        ] {
            assert!(mount_error(refused).is_some(), "{refused}");
        }
    }

    #[test]
    fn other_paths_and_the_files_lxcfs_covers_are_allowed() {
        for allowed in [
            "/procs",
            "/data/proc",
            "/proc/cpuinfo",
            "/proc/meminfo",
            "/",
        ] {
            assert_eq!(mount_error(allowed), None, "{allowed}");
        }
    }

    #[test]
    fn nul_bytes_are_refused_in_each_field_the_process_gets() {
        let c: Container = serde_json::from_value(json!({
            "name": "c",
            "image": "busy\u{0}box",
            "command": ["sh", "sle\u{0}ep"],
            "args": ["a\u{0}"],
            "env": [{"name": "OK", "value": "fine"}, {"name": "X", "value": "a\u{0}b"}],
            "workingDir": "/tm\u{0}p"
        }))
        .unwrap();
        let errs: Vec<String> = nul_bytes(&c, &FieldPath::new("spec").child("containers").index(0))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                r#"spec.containers[0].image: Invalid value: "busy\x00box": must not contain a NUL byte"#,
                r#"spec.containers[0].command[1]: Invalid value: "sle\x00ep": must not contain a NUL byte"#,
                r#"spec.containers[0].args[0]: Invalid value: "a\x00": must not contain a NUL byte"#,
                r#"spec.containers[0].env[1].value: Invalid value: "a\x00b": must not contain a NUL byte"#,
                r#"spec.containers[0].workingDir: Invalid value: "/tm\x00p": must not contain a NUL byte"#,
            ]
        );
    }
}
