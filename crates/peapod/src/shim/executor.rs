//! The workload executor the shim gives libcontainer: every container process (an init, an
//! exec, an exec probe or hook) starts with the signal state of a fresh process, as runc's
//! children do. libcontainer forks from the shim and keeps what it had: SIGCHLD and SIGPIPE
//! blocked for its signalfd, SIGPIPE ignored (Rust's runtime), and whatever the agent's own
//! parent ignored. A `yes | head` pipeline would then spin on EPIPE forever.

use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use oci_spec::runtime::Spec;

/// libcontainer's own executor, run after the signal state is reset.
#[derive(Clone)]
pub struct CleanSignals;

impl Executor for CleanSignals {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        reset_signal_state()
            .map_err(|err| ExecutorError::Other(format!("resetting the signal mask: {err}")))?;
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}

/// The kernel's number of signals (`_NSIG`).
const SIGNALS: libc::c_int = 64;

/// The kernel's `sigset_t` size, as rt_sigaction wants it.
const KERNEL_SIGSET_SIZE: usize = SIGNALS as usize / 8;

/// Sets every signal's disposition to SIG_DFL, then unblocks them all. In this order, a signal
/// pending while blocked is delivered with its default action, never to a stale handler.
fn reset_signal_state() -> nix::Result<()> {
    for signal in 1..=SIGNALS {
        kernel_sigaction(signal, None);
    }
    nix::sys::signal::SigSet::empty().thread_set_mask()
}

/// rt_sigaction itself: the C library refuses its reserved real-time signals (32, 33), which
/// can still arrive ignored from whoever started the agent. `set`: None for SIG_DFL, else the
/// handler; returns the previous handler, or None when the kernel refused (SIGKILL, SIGSTOP).
fn kernel_sigaction(signal: libc::c_int, set: Option<libc::sighandler_t>) -> Option<u64> {
    // The kernel's struct sigaction (handler, flags, restorer, mask, on the architectures
    // that have a restorer; a prefix of it elsewhere): all zero is SIG_DFL with nothing else.
    let mut new = [0u64; 4];
    new[0] = set.unwrap_or(libc::SIG_DFL) as u64;
    let mut old = [0u64; 4];
    let result = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            signal,
            new.as_ptr(),
            old.as_mut_ptr(),
            KERNEL_SIGSET_SIZE,
        )
    };
    (result == 0).then_some(old[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::ForkResult;

    /// In a forked child (the reset changes the whole process's dispositions): block SIGCHLD
    /// and SIGPIPE, ignore SIGPIPE and signal 32, reset; exit 0 when nothing is blocked or
    /// ignored any more. Only async-signal-safe calls: the test process has other threads.
    unsafe fn check_in_child() -> i32 {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        kernel_sigaction(32, Some(libc::SIG_IGN));
        if reset_signal_state().is_err() {
            return 1;
        }
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, std::ptr::null(), &mut blocked);
        if libc::sigismember(&blocked, libc::SIGCHLD) == 1
            || libc::sigismember(&blocked, libc::SIGPIPE) == 1
        {
            return 2;
        }
        for signal in [libc::SIGPIPE, 32] {
            if kernel_sigaction(signal, None) != Some(libc::SIG_DFL as u64) {
                return 3;
            }
        }
        0
    }

    #[test]
    fn blocked_and_ignored_signals_are_back_to_their_defaults() {
        match unsafe { nix::unistd::fork() }.unwrap() {
            ForkResult::Child => unsafe { libc::_exit(check_in_child()) },
            ForkResult::Parent { child } => {
                assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
            }
        }
    }
}
