//! Seccomp profiles for `linux.seccomp`: containerd's RuntimeDefault profile (Docker's default
//! allow-list, widened by the container's bounding capabilities, so it is built after they are
//! final) and Localhost profiles read from the agent's seccomp directory.

use std::path::{Component, Path, PathBuf};

use serde_json::{json, Value};

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("localhostProfile must be set if seccompProfile type is Localhost")]
    MissingLocalhostProfile,
    #[error("localhostProfile {0:?} must be a relative path inside the seccomp directory")]
    InvalidLocalhostProfile(String),
    #[error("cannot load seccomp profile {path:?}: {reason}")]
    Load { path: String, reason: String },
}

/// The syscalls every RuntimeDefault container may make (Docker's default profile).
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lsm_get_self_attr",
    "lsm_list_modules",
    "lsm_set_self_attr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "map_shadow_stack",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Syscalls unlocked by one bounding capability.
const BY_CAPABILITY: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

const AF_ALG: u64 = 38;
const AF_VSOCK: u64 = 40;
/// The personality(2) domains a container may switch to (Linux, 32-bit, and the query value).
const PERSONALITIES: &[u64] = &[0x0, 0x0008, 0x20000, 0x20008, 0xffff_ffff];
/// clone(2) flags that create namespaces: refused without CAP_SYS_ADMIN.
const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

fn architectures() -> Vec<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "aarch64" => vec!["SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        "s390x" => vec!["SCMP_ARCH_S390", "SCMP_ARCH_S390X"],
        _ => vec![],
    }
}

fn arch_syscalls() -> &'static [&'static str] {
    match std::env::consts::ARCH {
        "x86_64" => &["arch_prctl", "modify_ldt"],
        "aarch64" => &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        "riscv64" => &["riscv_flush_icache", "riscv_hwprobe"],
        "s390x" => &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        _ => &[],
    }
}

fn allow(names: &[&str]) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ALLOW"})
}

fn allow_if(name: &str, index: u32, op: &str, value: u64) -> Value {
    json!({"names": [name], "action": "SCMP_ACT_ALLOW",
           "args": [{"index": index, "value": value, "op": op}]})
}

/// containerd's RuntimeDefault profile for a container with these bounding capabilities
/// (`CAP_`-prefixed names).
pub fn runtime_default(bounding: &[String]) -> Value {
    let mut syscalls = vec![
        allow(ALLOWED),
        allow_if("socket", 0, "SCMP_CMP_LT", AF_ALG),
        allow_if("socket", 0, "SCMP_CMP_EQ", AF_ALG + 1),
        allow_if("socket", 0, "SCMP_CMP_GT", AF_VSOCK),
    ];
    syscalls.extend(
        PERSONALITIES
            .iter()
            .map(|p| allow_if("personality", 0, "SCMP_CMP_EQ", *p)),
    );
    syscalls.push(allow(&["process_vm_readv", "process_vm_writev", "ptrace"]));
    if !arch_syscalls().is_empty() {
        syscalls.push(allow(arch_syscalls()));
    }
    let has = |cap: &str| bounding.iter().any(|c| c == cap);
    syscalls.extend(
        BY_CAPABILITY
            .iter()
            .filter(|(cap, _)| has(cap))
            .map(|(_, names)| allow(names)),
    );
    if !has("CAP_SYS_ADMIN") {
        let flags_arg = if std::env::consts::ARCH == "s390x" {
            1
        } else {
            0
        };
        syscalls.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": flags_arg, "value": CLONE_NAMESPACE_FLAGS, "valueTwo": 0,
                      "op": "SCMP_CMP_MASKED_EQ"}],
        }));
        // ENOSYS rather than EPERM, so that libc falls back to clone(2).
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": libc::ENOSYS}));
    }
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": architectures(),
        "syscalls": syscalls,
    })
}

/// A Localhost profile: `<seccomp dir>/<localhostProfile>`, an OCI `linux.seccomp` document.
pub fn localhost(seccomp_dir: &Path, profile: Option<&str>) -> Result<Value, SeccompError> {
    let profile = profile
        .filter(|p| !p.is_empty())
        .ok_or(SeccompError::MissingLocalhostProfile)?;
    let path = profile_path(seccomp_dir, profile)?;
    let load = |reason: String| SeccompError::Load {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(&path).map_err(|e| load(e.to_string()))?;
    let value: Value = serde_json::from_slice(&text).map_err(|e| load(e.to_string()))?;
    serde_json::from_value::<oci_spec::runtime::LinuxSeccomp>(value.clone())
        .map_err(|e| load(e.to_string()))?;
    Ok(value)
}

fn profile_path(seccomp_dir: &Path, profile: &str) -> Result<PathBuf, SeccompError> {
    let relative = Path::new(profile);
    let inside = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside {
        return Err(SeccompError::InvalidLocalhostProfile(profile.to_string()));
    }
    Ok(seccomp_dir.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_for<'a>(profile: &'a Value, name: &str) -> Vec<&'a Value> {
        profile["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn default_profile_is_a_valid_oci_seccomp_document() {
        let profile = runtime_default(&[]);
        let parsed: oci_spec::runtime::LinuxSeccomp =
            serde_json::from_value(profile.clone()).unwrap();
        assert_eq!(
            parsed.default_action(),
            oci_spec::runtime::LinuxSeccompAction::ScmpActErrno
        );
        assert!(ALLOWED.contains(&"read") && ALLOWED.contains(&"execve"));
        assert!(!ALLOWED.contains(&"mount") && !ALLOWED.contains(&"clone3"));
        assert_eq!(rules_for(&profile, "socket").len(), 3);
        assert_eq!(
            rules_for(&profile, "personality").len(),
            PERSONALITIES.len()
        );
    }

    #[test]
    fn sys_admin_unlocks_mount_and_unrestricted_clone() {
        let without = runtime_default(&["CAP_CHOWN".into()]);
        assert!(rules_for(&without, "mount").is_empty());
        let clone = rules_for(&without, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        let clone3 = rules_for(&without, "clone3");
        assert_eq!(clone3[0]["errnoRet"], libc::ENOSYS);

        let admin = runtime_default(&["CAP_SYS_ADMIN".into()]);
        assert_eq!(rules_for(&admin, "mount").len(), 1);
        let clone = rules_for(&admin, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].get("args").is_none());
        assert_eq!(rules_for(&admin, "clone3")[0]["action"], "SCMP_ACT_ALLOW");
    }

    #[test]
    fn localhost_profiles_are_read_from_the_seccomp_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("profiles")).unwrap();
        let doc = json!({"defaultAction": "SCMP_ACT_ALLOW"});
        std::fs::write(dir.path().join("profiles/audit.json"), doc.to_string()).unwrap();
        assert_eq!(
            localhost(dir.path(), Some("profiles/audit.json")).unwrap(),
            doc
        );
        assert!(matches!(
            localhost(dir.path(), None),
            Err(SeccompError::MissingLocalhostProfile)
        ));
        assert!(matches!(
            localhost(dir.path(), Some("../etc/passwd")),
            Err(SeccompError::InvalidLocalhostProfile(_))
        ));
        let err = localhost(dir.path(), Some("missing.json")).unwrap_err();
        assert!(
            err.to_string().starts_with("cannot load seccomp profile"),
            "{err}"
        );
        std::fs::write(dir.path().join("bad.json"), "{\"defaultAction\": 3}").unwrap();
        assert!(localhost(dir.path(), Some("bad.json")).is_err());
    }
}
