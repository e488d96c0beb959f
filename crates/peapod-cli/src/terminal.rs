//! The local terminal for `exec -t` and `attach -t`: raw mode held by a guard that restores
//! the saved settings when dropped, and the window size.

use std::io;
use std::os::fd::AsRawFd;

use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};
use peapod_streams::remotecommand::TerminalSize;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("putting the terminal in raw mode: {0}")]
    Raw(#[source] nix::Error),
}

/// Raw mode on stdin until dropped (also on error paths and early returns).
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enable() -> Result<Self, TerminalError> {
        let saved = tcgetattr(io::stdin()).map_err(TerminalError::Raw)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(io::stdin(), SetArg::TCSANOW, &raw).map_err(TerminalError::Raw)?;
        Ok(Self { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // Nothing more can be done if the terminal went away.
        let _ = tcsetattr(io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

nix::ioctl_read_bad!(window_size_ioctl, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// The size of the terminal on stdout (else stdin), as kubectl measures it.
pub fn window_size() -> Option<TerminalSize> {
    [io::stdout().as_raw_fd(), io::stdin().as_raw_fd()]
        .into_iter()
        .find_map(|fd| {
            let mut size = nix::libc::winsize {
                ws_row: 0,
                ws_col: 0,
                ws_xpixel: 0,
                ws_ypixel: 0,
            };
            // SAFETY: TIOCGWINSZ writes one winsize into the pointer, which is valid and ours.
            let result = unsafe { window_size_ioctl(fd, &mut size) };
            (result.is_ok() && size.ws_col > 0).then_some(TerminalSize {
                width: size.ws_col,
                height: size.ws_row,
            })
        })
}
