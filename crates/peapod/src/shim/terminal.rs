//! Terminals of container processes: libcontainer creates the pty inside the container and
//! sends its master over a console socket the shim listens on; the shim then owns the master
//! (reads the output, writes the input, sets the window size).

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// How long libcontainer may take to send the master once the process was built (it sends it
/// before the build returns; this bounds a process that died half-way).
const RECEIVE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("console socket {path}: {source}")]
    Socket {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no terminal received on console socket {0}")]
    Missing(String),
}

/// A RESIZE frame's payload, `{"width": W, "height": H}`; a missing side keeps the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct WindowSize {
    #[serde(default = "default_width")]
    pub width: u16,
    #[serde(default = "default_height")]
    pub height: u16,
}

fn default_width() -> u16 {
    80
}

fn default_height() -> u16 {
    24
}

impl Default for WindowSize {
    /// A terminal's size until a client says otherwise, as a VT100's.
    fn default() -> WindowSize {
        WindowSize {
            width: default_width(),
            height: default_height(),
        }
    }
}

impl WindowSize {
    /// The size a RESIZE payload asks for, None when it is not one.
    pub fn parse(payload: &[u8]) -> Option<WindowSize> {
        serde_json::from_slice(payload).ok()
    }

    /// Sizes the terminal whose master is `master` (the process gets SIGWINCH).
    pub fn apply(self, master: &File) {
        let window = libc::winsize {
            ws_row: self.height,
            ws_col: self.width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &window) };
    }
}

/// A listening console socket in the pod's run directory, removed when dropped.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn bind(path: PathBuf) -> Result<ConsoleSocket, TerminalError> {
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(|source| TerminalError::Socket {
            path: path.display().to_string(),
            source,
        })?;
        Ok(ConsoleSocket { path, listener })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the terminal master libcontainer sent (it connected while building the process).
    pub fn receive(&self) -> Result<File, TerminalError> {
        use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
        let socket_err = |source: std::io::Error| TerminalError::Socket {
            path: self.path.display().to_string(),
            source,
        };
        self.listener.set_nonblocking(true).map_err(socket_err)?;
        let (stream, _) = self.listener.accept().map_err(socket_err)?;
        stream.set_nonblocking(false).map_err(socket_err)?;
        stream
            .set_read_timeout(Some(RECEIVE_TIMEOUT))
            .map_err(socket_err)?;
        let mut name = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let message = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| socket_err(e.into()))?;
        for cmsg in message.cmsgs().map_err(|e| socket_err(e.into()))? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                if let Some(fd) = fds.first() {
                    return Ok(unsafe { File::from_raw_fd(*fd) });
                }
            }
        }
        Err(TerminalError::Missing(self.path.display().to_string()))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_payloads_parse_with_defaults() {
        assert_eq!(
            WindowSize::parse(br#"{"width":100,"height":40}"#),
            Some(WindowSize {
                width: 100,
                height: 40
            })
        );
        assert_eq!(
            WindowSize::parse(br#"{"width":100}"#),
            Some(WindowSize {
                width: 100,
                height: 24
            })
        );
        assert_eq!(WindowSize::parse(b"nonsense"), None);
        assert_eq!(WindowSize::parse(br#"{"width":-1,"height":2}"#), None);
    }

    #[test]
    fn the_master_sent_on_the_socket_is_received_and_sized() {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
        let dir = tempfile::tempdir().unwrap();
        let console = ConsoleSocket::bind(dir.path().join("console.sock")).unwrap();
        let pty = nix::pty::openpty(None, None).unwrap();
        let client = std::os::unix::net::UnixStream::connect(console.path()).unwrap();
        let fds = [pty.master.as_raw_fd()];
        sendmsg::<UnixAddr>(
            client.as_raw_fd(),
            &[std::io::IoSlice::new(b"/dev/ptmx")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let master = console.receive().unwrap();
        WindowSize::default().apply(&master);
        let mut window: libc::winsize = unsafe { std::mem::zeroed() };
        unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut window) };
        assert_eq!((window.ws_col, window.ws_row), (80, 24));
        let path = console.path().to_path_buf();
        drop(console);
        assert!(!path.exists());
    }

    #[test]
    fn a_process_that_sent_nothing_is_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        let console = ConsoleSocket::bind(dir.path().join("console.sock")).unwrap();
        let client = std::os::unix::net::UnixStream::connect(console.path()).unwrap();
        drop(client);
        assert!(matches!(console.receive(), Err(TerminalError::Missing(_))));
    }
}
