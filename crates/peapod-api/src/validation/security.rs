//! securityContext validation, pod and container (ValidateSecurityContext,
//! validatePodSpecSecurityContext, validateSysctls, validateHostUsers), plus a check
//! stricter than Kubernetes: capability names must be Linux capabilities.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, PodSecurityContext, PodSpec, SeccompProfile, SecurityContext,
    Sysctl,
};

use super::volume::local_descending_path;
use super::{names, FieldError, FieldPath};

/// The Linux capabilities (up to CAP_CHECKPOINT_RESTORE, 40), without the `CAP_` prefix.
pub const LINUX_CAPABILITIES: &[&str] = &[
    "AUDIT_CONTROL",
    "AUDIT_READ",
    "AUDIT_WRITE",
    "BLOCK_SUSPEND",
    "BPF",
    "CHECKPOINT_RESTORE",
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "IPC_OWNER",
    "KILL",
    "LEASE",
    "LINUX_IMMUTABLE",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
    "MKNOD",
    "NET_ADMIN",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_RAW",
    "PERFMON",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYSLOG",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_CHROOT",
    "SYS_MODULE",
    "SYS_NICE",
    "SYS_PACCT",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "WAKE_ALARM",
];
const SECCOMP_TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];
const APPARMOR_TYPES: &[&str] = &["Localhost", "RuntimeDefault", "Unconfined"];
const PROC_MOUNT_TYPES: &[&str] = &["Default", "Unmasked"];
const FS_GROUP_CHANGE_POLICIES: &[&str] = &["Always", "OnRootMismatch"];
const SUPPLEMENTAL_GROUPS_POLICIES: &[&str] = &["Merge", "Strict"];
const MAX_ID: i64 = i32::MAX as i64;
/// PATH_MAX - 1
const MAX_APPARMOR_PROFILE_LENGTH: usize = 4095;
const HOST_USERS_FALSE: &str = "when `pod.Spec.HostUsers` is false";

/// ValidateSecurityContext for one container; `host_users` is false only when the
/// pod sets `hostUsers: false`.
pub fn validate_security_context(
    sc: &SecurityContext,
    host_users: bool,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(id_errors(sc.run_as_user, &path.child("runAsUser")));
    errs.extend(id_errors(sc.run_as_group, &path.child("runAsGroup")));
    if let Some(proc_mount) = sc.proc_mount.as_deref() {
        let field = path.child("procMount");
        if !PROC_MOUNT_TYPES.contains(&proc_mount) {
            errs.push(FieldError::not_supported(
                &field,
                proc_mount,
                PROC_MOUNT_TYPES,
            ));
        }
        if host_users && proc_mount == "Unmasked" {
            let detail = "`hostUsers` must be false to use `Unmasked`";
            errs.push(FieldError::invalid(&field, proc_mount, detail));
        }
    }
    if let Some(profile) = &sc.seccomp_profile {
        errs.extend(seccomp_errors(profile, &path.child("seccompProfile")));
    }
    errs.extend(privilege_escalation_errors(sc, path));
    if let Some(profile) = &sc.app_armor_profile {
        errs.extend(apparmor_errors(profile, &path.child("appArmorProfile")));
    }
    if let Some(caps) = &sc.capabilities {
        errs.extend(capability_errors(caps, &path.child("capabilities")));
    }
    errs
}

/// validatePodSpecSecurityContext
pub fn validate_pod_security_context(
    sc: &PodSecurityContext,
    spec: &PodSpec,
    path: &FieldPath,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(id_errors(sc.fs_group, &path.child("fsGroup")));
    errs.extend(id_errors(sc.run_as_user, &path.child("runAsUser")));
    errs.extend(id_errors(sc.run_as_group, &path.child("runAsGroup")));
    for (i, gid) in sc.supplemental_groups.iter().flatten().enumerate() {
        errs.extend(id_errors(
            Some(*gid),
            &path.child("supplementalGroups").index(i),
        ));
    }
    // The internal API keeps shareProcessNamespace in the security context, hence the path.
    let share = spec.share_process_namespace;
    if share == Some(true) && spec.host_pid == Some(true) {
        let detail = "ShareProcessNamespace and HostPID cannot both be enabled";
        let field = path.child("shareProcessNamespace");
        errs.push(FieldError::invalid(&field, true, detail));
    }
    let sysctls = sc.sysctls.as_deref().unwrap_or_default();
    errs.extend(sysctl_errors(sysctls, spec, &path.child("sysctls")));
    errs.extend(enum_error(
        sc.fs_group_change_policy.as_deref(),
        FS_GROUP_CHANGE_POLICIES,
        &path.child("fsGroupChangePolicy"),
    ));
    if let Some(profile) = &sc.seccomp_profile {
        errs.extend(seccomp_errors(profile, &path.child("seccompProfile")));
    }
    if let Some(profile) = &sc.app_armor_profile {
        errs.extend(apparmor_errors(profile, &path.child("appArmorProfile")));
    }
    errs.extend(enum_error(
        sc.supplemental_groups_policy.as_deref(),
        SUPPLEMENTAL_GROUPS_POLICIES,
        &path.child("supplementalGroupsPolicy"),
    ));
    errs
}

/// NotSupported for a set value outside `supported`.
fn enum_error(value: Option<&str>, supported: &[&str], path: &FieldPath) -> Option<FieldError> {
    let value = value.filter(|v| !supported.contains(v))?;
    Some(FieldError::not_supported(path, value, supported))
}

/// validateHostUsers: a pod in its own user namespace may not share host namespaces.
/// (The paths' capitals are Kubernetes'.)
pub fn validate_host_users(spec: &PodSpec, path: &FieldPath) -> Vec<FieldError> {
    if spec.host_users != Some(false) {
        return Vec::new();
    }
    let shared = [
        ("hostNetwork", spec.host_network),
        ("HostPID", spec.host_pid),
        ("HostIPC", spec.host_ipc),
    ];
    shared
        .iter()
        .filter(|(_, on)| *on == Some(true))
        .map(|(field, _)| FieldError::forbidden(&path.child(field), HOST_USERS_FALSE))
        .collect()
}

/// IsValidUserID / IsValidGroupID
fn id_errors(id: Option<i64>, path: &FieldPath) -> Vec<FieldError> {
    match id {
        Some(id) if !(0..=MAX_ID).contains(&id) => {
            let detail = names::inclusive_range_error(0, MAX_ID);
            vec![FieldError::invalid(path, id, &detail)]
        }
        _ => Vec::new(),
    }
}

/// no_new_privs cannot hold back what privileged or CAP_SYS_ADMIN grants. Like
/// Kubernetes, only the literal `CAP_SYS_ADMIN` counts.
fn privilege_escalation_errors(sc: &SecurityContext, path: &FieldPath) -> Vec<FieldError> {
    if sc.allow_privilege_escalation != Some(false) {
        return Vec::new();
    }
    let shown = serde_json::to_value(sc).unwrap_or_default();
    let mut errs = Vec::new();
    if sc.privileged == Some(true) {
        let detail = "cannot set `allowPrivilegeEscalation` to false and `privileged` to true";
        errs.push(FieldError::invalid(path, &shown, detail));
    }
    let added = sc.capabilities.as_ref().and_then(|c| c.add.as_deref());
    for cap in added.unwrap_or_default() {
        if cap == "CAP_SYS_ADMIN" {
            let detail = "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN";
            errs.push(FieldError::invalid(path, &shown, detail));
        }
    }
    errs
}

/// validateSeccompProfileField
fn seccomp_errors(profile: &SeccompProfile, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let type_path = path.child("type");
    match profile.type_.as_str() {
        "" => {
            let detail = "type is required when seccompProfile is set";
            errs.push(FieldError::required(&type_path, detail));
        }
        t if !SECCOMP_TYPES.contains(&t) => {
            errs.push(FieldError::not_supported(&type_path, t, SECCOMP_TYPES));
        }
        _ => {}
    }
    let field = path.child("localhostProfile");
    match (profile.type_.as_str(), profile.localhost_profile.as_deref()) {
        ("Localhost", None) => {
            let detail = "must be set when seccomp type is Localhost";
            errs.push(FieldError::required(&field, detail));
        }
        ("Localhost", Some(file)) => errs.extend(local_descending_path(file, &field)),
        (_, Some(_)) => {
            let shown = serde_json::to_value(profile).unwrap_or_default();
            let detail = "can only be set when seccomp type is Localhost";
            errs.push(FieldError::invalid(&field, &shown, detail));
        }
        (_, None) => {}
    }
    errs
}

/// ValidateAppArmorProfileField
fn apparmor_errors(profile: &AppArmorProfile, path: &FieldPath) -> Vec<FieldError> {
    let field = path.child("localhostProfile");
    let local = profile.localhost_profile.as_deref();
    match (profile.type_.as_str(), local) {
        ("Localhost", None) => vec![FieldError::required(
            &field,
            "must be set when AppArmor type is Localhost",
        )],
        ("Localhost", Some(name)) => {
            let mut errs = Vec::new();
            if name.trim() != name {
                let detail = "must not be padded with whitespace";
                errs.push(FieldError::invalid(&field, name, detail));
            } else if name.is_empty() {
                let detail = "must be set when AppArmor type is Localhost";
                errs.push(FieldError::required(&field, detail));
            }
            if name.len() > MAX_APPARMOR_PROFILE_LENGTH {
                errs.push(FieldError::too_long(&field, MAX_APPARMOR_PROFILE_LENGTH));
            }
            errs
        }
        ("RuntimeDefault" | "Unconfined", Some(name)) => vec![FieldError::invalid(
            &field,
            name,
            "can only be set when AppArmor type is Localhost",
        )],
        ("RuntimeDefault" | "Unconfined", None) => Vec::new(),
        ("", _) => vec![FieldError::required(
            &path.child("type"),
            "type is required when appArmorProfile is set",
        )],
        (t, _) => vec![FieldError::not_supported(
            &path.child("type"),
            t,
            APPARMOR_TYPES,
        )],
    }
}

/// Whether `name` is `ALL` or a Linux capability, in any case, with or without `CAP_`.
pub fn is_known_capability(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    upper == "ALL" || LINUX_CAPABILITIES.contains(&bare)
}

/// Stricter than Kubernetes, which passes any string to the runtime: there an unknown
/// capability only fails when the container is created.
fn capability_errors(caps: &Capabilities, path: &FieldPath) -> Vec<FieldError> {
    let supported: Vec<&str> = std::iter::once("ALL")
        .chain(LINUX_CAPABILITIES.iter().copied())
        .collect();
    let lists = [("add", &caps.add), ("drop", &caps.drop)];
    let mut errs = Vec::new();
    for (field, list) in lists {
        for (i, name) in list.iter().flatten().enumerate() {
            if !is_known_capability(name) {
                let item = path.child(field).index(i);
                errs.push(FieldError::not_supported(&item, name, &supported));
            }
        }
    }
    errs
}

/// validateSysctls. Whether a valid name is allowed (the safe set, the agent's
/// allowlist) is the kubelet's decision at admission, not the API's.
fn sysctl_errors(sysctls: &[Sysctl], spec: &PodSpec, path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = HashSet::new();
    for (i, sysctl) in sysctls.iter().enumerate() {
        let field = path.index(i).child("name");
        let name = sysctl.name.as_str();
        let msgs = names::sysctl_name(name);
        if name.is_empty() {
            errs.push(FieldError::required(&field, ""));
        } else if let Some(msg) = msgs.first() {
            errs.push(FieldError::invalid(&field, name, msg));
        } else if seen.contains(name) {
            errs.push(FieldError::duplicate(&field, name));
        }
        errs.extend(host_sysctl_error(name, spec, &field));
        seen.insert(name);
    }
    errs
}

/// ValidateHostSysctl: a namespaced sysctl would change the host's own namespace.
fn host_sysctl_error(name: &str, spec: &PodSpec, path: &FieldPath) -> Option<FieldError> {
    let detail = match sysctl_namespace(name)? {
        SysctlNamespace::Net if spec.host_network == Some(true) => {
            "may not be specified when 'hostNetwork' is true"
        }
        SysctlNamespace::Ipc if spec.host_ipc == Some(true) => {
            "may not be specified when 'hostIPC' is true"
        }
        _ => return None,
    };
    Some(FieldError::invalid(path, name, detail))
}

#[derive(Debug, PartialEq, Eq)]
enum SysctlNamespace {
    Net,
    Ipc,
}

/// The namespace a sysctl belongs to (component-helpers `GetNamespace`).
fn sysctl_namespace(name: &str) -> Option<SysctlNamespace> {
    let name = dotted_sysctl_name(name);
    let ipc_prefixes = ["kernel.shm", "kernel.msg", "fs.mqueue."];
    if name == "kernel.sem" || ipc_prefixes.iter().any(|p| name.starts_with(p)) {
        Some(SysctlNamespace::Ipc)
    } else if name.starts_with("net.") {
        Some(SysctlNamespace::Net)
    } else {
        None
    }
}

/// `kernel/shm_rmid_forced` → `kernel.shm_rmid_forced`: when the first separator is a
/// slash, slashes and dots swap (a dot then belongs to a segment, e.g. an interface name).
pub fn dotted_sysctl_name(name: &str) -> String {
    if name.find(['.', '/']).and_then(|i| name[i..].chars().next()) != Some('/') {
        return name.to_string();
    }
    name.chars()
        .map(|c| match c {
            '/' => '.',
            '.' => '/',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn container_errors(sc: Value, host_users: bool) -> Vec<String> {
        let sc: SecurityContext = serde_json::from_value(sc).unwrap();
        let path = FieldPath::new("spec")
            .child("containers")
            .index(0)
            .child("securityContext");
        validate_security_context(&sc, host_users, &path)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn pod_errors(spec: Value) -> Vec<String> {
        let mut spec = spec;
        spec["containers"] = json!([]);
        let spec: PodSpec = serde_json::from_value(spec).unwrap();
        let path = FieldPath::new("spec");
        let mut errs = validate_host_users(&spec, &path);
        if let Some(sc) = &spec.security_context {
            errs.extend(validate_pod_security_context(
                sc,
                &spec,
                &path.child("securityContext"),
            ));
        }
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn valid_contexts_pass() {
        let errs = container_errors(
            json!({"runAsUser": 1000, "runAsGroup": 0, "runAsNonRoot": true,
                   "capabilities": {"add": ["net_admin", "CAP_SYS_TIME"], "drop": ["ALL"]},
                   "privileged": true, "readOnlyRootFilesystem": true, "procMount": "Default",
                   "seccompProfile": {"type": "Localhost", "localhostProfile": "profiles/a.json"},
                   "appArmorProfile": {"type": "RuntimeDefault"}}),
            true,
        );
        assert!(errs.is_empty(), "{errs:?}");
        let errs = pod_errors(json!({"securityContext": {
            "runAsUser": 0, "fsGroup": 2000, "supplementalGroups": [1, 2147483647],
            "fsGroupChangePolicy": "OnRootMismatch", "supplementalGroupsPolicy": "Merge",
            "seccompProfile": {"type": "RuntimeDefault"},
            "sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"},
                        {"name": "net/ipv4/ip_local_port_range", "value": "1024 2048"}]
        }}));
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn ids_in_range() {
        assert_eq!(
            container_errors(json!({"runAsUser": -1, "runAsGroup": 2147483648i64}), true),
            vec![
                "spec.containers[0].securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive",
                "spec.containers[0].securityContext.runAsGroup: Invalid value: 2147483648: must be between 0 and 2147483647, inclusive",
            ]
        );
        assert_eq!(
            pod_errors(json!({"securityContext": {"fsGroup": -2, "runAsUser": -3, "runAsGroup": -4,
                                                  "supplementalGroups": [5, -6]}})),
            vec![
                "spec.securityContext.fsGroup: Invalid value: -2: must be between 0 and 2147483647, inclusive",
                "spec.securityContext.runAsUser: Invalid value: -3: must be between 0 and 2147483647, inclusive",
                "spec.securityContext.runAsGroup: Invalid value: -4: must be between 0 and 2147483647, inclusive",
                "spec.securityContext.supplementalGroups[1]: Invalid value: -6: must be between 0 and 2147483647, inclusive",
            ]
        );
    }

    #[test]
    fn privilege_escalation_conflicts() {
        assert_eq!(
            container_errors(
                json!({"allowPrivilegeEscalation": false, "privileged": true,
                       "capabilities": {"add": ["CAP_SYS_ADMIN", "SYS_ADMIN"]}}),
                true
            ),
            vec![
                r#"spec.containers[0].securityContext: Invalid value: {"allowPrivilegeEscalation":false,"capabilities":{"add":["CAP_SYS_ADMIN","SYS_ADMIN"]},"privileged":true}: cannot set `allowPrivilegeEscalation` to false and `privileged` to true"#,
                r#"spec.containers[0].securityContext: Invalid value: {"allowPrivilegeEscalation":false,"capabilities":{"add":["CAP_SYS_ADMIN","SYS_ADMIN"]},"privileged":true}: cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"#,
            ]
        );
        assert!(container_errors(
            json!({"allowPrivilegeEscalation": true, "privileged": true}),
            true
        )
        .is_empty());
    }

    #[test]
    fn unknown_capabilities_are_refused() {
        let errs = container_errors(
            json!({"capabilities": {"add": ["NET_ADMIN", "NET_FOO"], "drop": ["all", "CAP_CAP_KILL"]}}),
            true,
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with(
            r#"spec.containers[0].securityContext.capabilities.add[1]: Unsupported value: "NET_FOO": supported values: "ALL", "AUDIT_CONTROL", "AUDIT_READ","#
        ), "{}", errs[0]);
        assert!(errs[0].ends_with(r#""SYS_TTY_CONFIG", "WAKE_ALARM""#));
        assert!(errs[1].starts_with(
            r#"spec.containers[0].securityContext.capabilities.drop[1]: Unsupported value: "CAP_CAP_KILL": "#
        ));
        assert!(is_known_capability("cap_net_raw") && is_known_capability("All"));
        assert!(!is_known_capability("CAP_ALL") && !is_known_capability(""));
    }

    #[test]
    fn seccomp_profiles() {
        let seccomp = |p: Value| container_errors(json!({"seccompProfile": p}), true);
        assert_eq!(
            seccomp(json!({"type": "Localhost"})),
            vec!["spec.containers[0].securityContext.seccompProfile.localhostProfile: Required value: must be set when seccomp type is Localhost"]
        );
        assert_eq!(
            seccomp(json!({"type": "Localhost", "localhostProfile": "../x.json"})),
            vec![
                r#"spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: "../x.json": must not contain '..'"#
            ]
        );
        assert_eq!(
            seccomp(json!({"type": "RuntimeDefault", "localhostProfile": "x.json"})),
            vec![
                r#"spec.containers[0].securityContext.seccompProfile.localhostProfile: Invalid value: {"localhostProfile":"x.json","type":"RuntimeDefault"}: can only be set when seccomp type is Localhost"#
            ]
        );
        assert_eq!(
            seccomp(json!({"type": "Strict"})),
            vec![
                r#"spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Strict": supported values: "Localhost", "RuntimeDefault", "Unconfined""#
            ]
        );
        assert_eq!(
            pod_errors(json!({"securityContext": {"seccompProfile": {"type": ""}}})),
            vec!["spec.securityContext.seccompProfile.type: Required value: type is required when seccompProfile is set"]
        );
    }

    #[test]
    fn apparmor_profiles() {
        let apparmor = |p: Value| container_errors(json!({"appArmorProfile": p}), true);
        assert_eq!(
            apparmor(json!({"type": "Localhost", "localhostProfile": " p"})),
            vec![
                r#"spec.containers[0].securityContext.appArmorProfile.localhostProfile: Invalid value: " p": must not be padded with whitespace"#
            ]
        );
        assert_eq!(
            apparmor(json!({"type": "Unconfined", "localhostProfile": "p"})),
            vec![
                r#"spec.containers[0].securityContext.appArmorProfile.localhostProfile: Invalid value: "p": can only be set when AppArmor type is Localhost"#
            ]
        );
        assert_eq!(
            apparmor(json!({"type": "Other"})),
            vec![
                r#"spec.containers[0].securityContext.appArmorProfile.type: Unsupported value: "Other": supported values: "Localhost", "RuntimeDefault", "Unconfined""#
            ]
        );
    }

    #[test]
    fn proc_mount() {
        assert_eq!(
            container_errors(json!({"procMount": "Unmasked"}), true),
            vec![
                r#"spec.containers[0].securityContext.procMount: Invalid value: "Unmasked": `hostUsers` must be false to use `Unmasked`"#
            ]
        );
        assert!(container_errors(json!({"procMount": "Unmasked"}), false).is_empty());
        assert_eq!(
            container_errors(json!({"procMount": "Full"}), false),
            vec![
                r#"spec.containers[0].securityContext.procMount: Unsupported value: "Full": supported values: "Default", "Unmasked""#
            ]
        );
    }

    #[test]
    fn pod_policies() {
        assert_eq!(
            pod_errors(json!({"securityContext": {"fsGroupChangePolicy": "Never",
                                                  "supplementalGroupsPolicy": "Replace"}})),
            vec![
                r#"spec.securityContext.fsGroupChangePolicy: Unsupported value: "Never": supported values: "Always", "OnRootMismatch""#,
                r#"spec.securityContext.supplementalGroupsPolicy: Unsupported value: "Replace": supported values: "Merge", "Strict""#,
            ]
        );
        assert_eq!(
            pod_errors(json!({"shareProcessNamespace": true, "hostPID": true, "securityContext": {}})),
            vec!["spec.securityContext.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot both be enabled"]
        );
    }

    #[test]
    fn sysctl_names() {
        let errs = pod_errors(json!({"securityContext": {"sysctls": [
            {"name": "foo-", "value": "1"},
            {"name": "bar..", "value": "1"},
            {"name": "", "value": "1"},
            {"name": "kernel.msgmax", "value": "1"},
            {"name": "kernel.msgmax", "value": "2"}
        ]}}));
        let regex = r"^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[\./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$";
        assert_eq!(
            errs,
            vec![
                format!(
                    r#"spec.securityContext.sysctls[0].name: Invalid value: "foo-": must have at most 253 characters and match regex {regex}"#
                ),
                format!(
                    r#"spec.securityContext.sysctls[1].name: Invalid value: "bar..": must have at most 253 characters and match regex {regex}"#
                ),
                "spec.securityContext.sysctls[2].name: Required value".to_string(),
                r#"spec.securityContext.sysctls[4].name: Duplicate value: "kernel.msgmax""#
                    .to_string(),
            ]
        );
    }

    #[test]
    fn namespaced_sysctls_and_host_namespaces() {
        let errs = pod_errors(
            json!({"hostNetwork": true, "hostIPC": true, "securityContext": {"sysctls": [
                {"name": "net.ipv4.tcp_syncookies", "value": "1"},
                {"name": "kernel/shm_rmid_forced", "value": "1"},
                {"name": "kernel.sem", "value": "1"},
                {"name": "vm.swappiness", "value": "1"}
            ]}}),
        );
        assert_eq!(
            errs,
            vec![
                r#"spec.securityContext.sysctls[0].name: Invalid value: "net.ipv4.tcp_syncookies": may not be specified when 'hostNetwork' is true"#,
                r#"spec.securityContext.sysctls[1].name: Invalid value: "kernel/shm_rmid_forced": may not be specified when 'hostIPC' is true"#,
                r#"spec.securityContext.sysctls[2].name: Invalid value: "kernel.sem": may not be specified when 'hostIPC' is true"#,
            ]
        );
        assert_eq!(
            dotted_sysctl_name("net/ipv4/conf/eno2.100/rp_filter"),
            "net.ipv4.conf.eno2/100.rp_filter"
        );
        assert_eq!(dotted_sysctl_name("net.ipv4.conf.a/b"), "net.ipv4.conf.a/b");
    }

    #[test]
    fn host_users_false_forbids_host_namespaces() {
        assert_eq!(
            pod_errors(
                json!({"hostUsers": false, "hostNetwork": true, "hostPID": true, "hostIPC": true})
            ),
            vec![
                "spec.hostNetwork: Forbidden: when `pod.Spec.HostUsers` is false",
                "spec.HostPID: Forbidden: when `pod.Spec.HostUsers` is false",
                "spec.HostIPC: Forbidden: when `pod.Spec.HostUsers` is false",
            ]
        );
        assert!(pod_errors(json!({"hostUsers": true, "hostNetwork": true})).is_empty());
    }
}
