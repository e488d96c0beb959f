//! Starting a pod's shim from the agent: `clone` straight into fresh network, IPC, UTS and
//! mount namespaces (and a PID namespace with shareProcessNamespace, where the shim is PID 1;
//! with hostNetwork the node's network and UTS namespaces are kept), then exec of this same
//! binary as `peapod shim`.

use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::OFlag;
use nix::sched::CloneFlags;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("preparing the pod sandbox at {path}: {source}")]
    Prepare {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("starting the pod sandbox process: {0}")]
    Clone(#[source] nix::Error),
    #[error("the pod sandbox process failed to start: {0}")]
    Failed(String),
}

/// containerd's `defaultSandboxOOMAdj`.
const SANDBOX_OOM_SCORE_ADJ: i32 = -998;

/// What a shim needs to know at start.
pub struct LaunchSpec {
    pub pod_uid: String,
    /// None for a hostNetwork pod.
    pub hostname: Option<String>,
    pub run_dir: PathBuf,
    pub share_pid: bool,
}

/// Starts the shim and waits until it serves its socket. Returns its pid.
pub fn launch(spec: &LaunchSpec) -> Result<i32, LaunchError> {
    let prepare = |path: &std::path::Path| {
        let path = path.display().to_string();
        move |source| LaunchError::Prepare { path, source }
    };
    std::fs::create_dir_all(&spec.run_dir).map_err(prepare(&spec.run_dir))?;
    let log_path = spec.run_dir.join("shim.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(prepare(&log_path))?;
    let devnull = File::open("/dev/null").map_err(prepare(std::path::Path::new("/dev/null")))?;
    let exe = std::env::current_exe().map_err(prepare(std::path::Path::new("/proc/self/exe")))?;
    let (ready_r, ready_w): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| LaunchError::Prepare {
            path: "pipe".into(),
            source: e.into(),
        })?;

    let cstr = |s: &[u8]| CString::new(s).expect("no NUL in shim arguments");
    // Exec this very binary through /proc/self/exe: when the file was replaced since the
    // agent started (a rebuild or an upgrade), its path names the new file or nothing
    // (current_exe then ends in " (deleted)"), while /proc/self/exe still opens ours.
    let exe_c = cstr(b"/proc/self/exe");
    let argv0 = exe.as_os_str().as_bytes();
    let argv0 = argv0.strip_suffix(b" (deleted)").unwrap_or(argv0);
    let mut args: Vec<&[u8]> = vec![
        argv0,
        b"shim",
        b"--pod-uid",
        spec.pod_uid.as_bytes(),
        b"--run-dir",
        spec.run_dir.as_os_str().as_bytes(),
        b"--ready-fd",
        b"3",
    ];
    if let Some(hostname) = &spec.hostname {
        args.extend([b"--hostname".as_slice(), hostname.as_bytes()]);
    }
    let args: Vec<CString> = args.iter().map(|a| cstr(a)).collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstr(&kv)
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());

    let mut flags = CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWNS;
    if spec.hostname.is_some() {
        flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
    }
    if spec.share_pid {
        flags |= CloneFlags::CLONE_NEWPID;
    }
    let (null_fd, log_fd, ready_fd) = (devnull.as_raw_fd(), log.as_raw_fd(), ready_w.as_raw_fd());
    let mut stack = vec![0u8; 64 * 1024];
    // The child may only make plain system calls: the agent is multi-threaded, and another
    // thread may hold the allocator's lock at the moment of the clone.
    let child = Box::new(move || unsafe {
        libc::dup2(null_fd, 0);
        libc::dup2(log_fd, 1);
        libc::dup2(log_fd, 2);
        libc::dup2(ready_fd, 3);
        libc::setsid();
        libc::execve(exe_c.as_ptr(), argv.as_ptr(), envp.as_ptr());
        libc::_exit(127)
    });
    let pid = unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(LaunchError::Clone)?;
    // The shim is the pod's sandbox, which containerd gives -998; container inits get their
    // own score from the shim before they start.
    if let Err(err) = super::runtime::set_oom_score_adj(pid.as_raw(), SANDBOX_OOM_SCORE_ADJ) {
        tracing::warn!(%err, "protecting the pod sandbox from the OOM killer");
    }
    drop(ready_w);
    let mut ready = String::new();
    let _ = File::from(ready_r).read_to_string(&mut ready);
    if ready.starts_with("ready") {
        return Ok(pid.as_raw());
    }
    let _ = nix::sys::wait::waitpid(pid, None);
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let last = log.lines().last().unwrap_or("no output").to_string();
    Err(LaunchError::Failed(last))
}
