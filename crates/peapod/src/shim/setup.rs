//! Shim start-up inside the fresh namespaces the agent cloned it into: private mount
//! propagation, hostname, loopback up, the pod's /dev/shm, child-subreaper.

use std::path::Path;

use nix::mount::{mount, MsFlags};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("making mounts private to the pod failed: {0}")]
    Propagation(#[source] nix::Error),
    #[error("setting hostname {hostname:?} failed: {source}")]
    Hostname {
        hostname: String,
        #[source]
        source: nix::Error,
    },
    #[error("bringing loopback up failed: {0}")]
    Loopback(#[source] std::io::Error),
    #[error("mounting a tmpfs at {path} failed: {source}")]
    Shm {
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error("creating {path} failed: {source}")]
    Dir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting the pod PID namespace's /proc failed: {source}")]
    Proc {
        #[source]
        source: nix::Error,
    },
    #[error("becoming child subreaper failed: {0}")]
    Subreaper(#[source] nix::Error),
}

/// Mounts made by the shim (overlay roots, tmpfs volumes, /dev/shm) stay in its own mount
/// namespace, so they vanish with it and never leak onto the host.
///
/// With shareProcessNamespace the shim is PID 1 of the pod's PID namespace, and every pid it
/// learns (libcontainer's container init pids) is a pid of that namespace: its /proc must be
/// that namespace's, or libcontainer's exec would join the namespaces of whatever host process
/// has that number (host pid 3 is a kernel thread: exec landed in the host's mount namespace).
pub fn private_mounts() -> Result<(), SetupError> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(SetupError::Propagation)?;
    if nix::unistd::getpid().as_raw() == 1 {
        mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|source| SetupError::Proc { source })?;
    }
    Ok(())
}

pub fn hostname(name: &str) -> Result<(), SetupError> {
    nix::unistd::sethostname(name).map_err(|source| SetupError::Hostname {
        hostname: name.to_string(),
        source,
    })
}

pub fn loopback_up() -> Result<(), SetupError> {
    // SIOCGIFFLAGS / SIOCSIFFLAGS on "lo": the one netlink-free call we need before the pod
    // network exists.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(SetupError::Loopback(std::io::Error::last_os_error()));
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    let result = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    unsafe { libc::close(sock) };
    result.map_err(SetupError::Loopback)
}

/// One tmpfs for the whole pod, bind-mounted at /dev/shm in every container (IPC sharing).
pub fn pod_shm(path: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(path).map_err(|source| SetupError::Dir {
        path: path.display().to_string(),
        source,
    })?;
    mount(
        Some("shm"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .map_err(|source| SetupError::Shm {
        path: path.display().to_string(),
        source,
    })
}

pub fn child_subreaper() -> Result<(), SetupError> {
    nix::sys::prctl::set_child_subreaper(true).map_err(SetupError::Subreaper)
}
