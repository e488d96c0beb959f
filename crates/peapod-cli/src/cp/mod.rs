//! `cp`: copies files and directories to and from containers exactly as kubectl cp does,
//! with tar on both ends over exec sessions. From a pod: `tar cf - PATH` in the container,
//! its archive unpacked locally as it streams in (its stderr goes to our stdout, as
//! kubectl's does). To a pod: `test -d DEST` first (a directory receives the source inside
//! it), then an archive built locally is streamed to `tar -xmf - -C DIR` in the container.

mod chunks;
mod pack;
mod spec;
mod unpack;

use std::io;
use std::time::Duration;

use bytes::Bytes;
use peapod_streams::remotecommand::client::Exit;
use tokio::sync::mpsc;

use crate::args::CpArgs;
use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::remote::{self, Discard, Output, Target};
use chunks::{ChunkReader, ChunkWriter, CHUNKS_IN_FLIGHT};
use spec::{
    base, clean, dir, join, strip_leading_slashes, strip_path_shortcuts, FileSpec, RemoteFile,
};
use unpack::Destination;

/// How long kubectl gives `test -d` to say whether the destination is a directory.
const DESTINATION_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a copy failed, in kubectl's words where it has some.
#[derive(Debug, thiserror::Error)]
pub enum CpError {
    #[error("filespec must match the canonical format: [[namespace/]pod:]file/path")]
    SpecFormat,
    #[error("one of src or dest must be a local file specification")]
    BothRemote,
    #[error("one of src or dest must be a remote file specification")]
    BothLocal,
    #[error("filepath can not be empty")]
    EmptyPath,
    #[error("{0} doesn't exist in local filesystem")]
    MissingSource(String),
    /// `test -d` did not answer in time.
    #[error("context deadline exceeded")]
    DestinationCheckTimedOut,
    #[error("tar contents corrupted")]
    Corrupted,
    #[error("reading the archive from the container: {0}")]
    ReadArchive(#[source] io::Error),
    #[error("writing {path}: {source}")]
    Write { path: String, source: io::Error },
    #[error("archiving {path}: {source}")]
    Archive { path: String, source: io::Error },
    #[error("the local end of the archive stopped")]
    ArchiveStopped,
}

impl CpError {
    /// The session stopped taking the archive: its own error tells why.
    fn is_broken_pipe(&self) -> bool {
        matches!(self, CpError::Archive { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
    }
}

pub async fn cp(client: &Client, args: CpArgs, console: &mut Console) -> Result<i32, CliError> {
    let src = FileSpec::parse(&args.src)?;
    let dest = FileSpec::parse(&args.dest)?;
    if let (FileSpec::Remote(_), FileSpec::Remote(_)) = (&src, &dest) {
        return Err(CpError::BothRemote.into());
    }
    if src.path().is_empty() || dest.path().is_empty() {
        return Err(CpError::EmptyPath.into());
    }
    match (src, dest) {
        (FileSpec::Remote(src), FileSpec::Local(dest)) => {
            from_pod(client, &args, &src, dest, console).await
        }
        (FileSpec::Local(src), FileSpec::Remote(dest)) => {
            to_pod(client, &args, src, &dest, console).await
        }
        _ => Err(CpError::BothLocal.into()),
    }
}

fn target<'a>(args: &'a CpArgs, file: &'a RemoteFile) -> Target<'a> {
    Target {
        namespace: file
            .namespace
            .as_deref()
            .or(args.namespace.as_deref())
            .unwrap_or("default"),
        pod: &file.pod,
        container: args.container.as_deref(),
    }
}

async fn from_pod(
    client: &Client,
    args: &CpArgs,
    src: &RemoteFile,
    dest: String,
    console: &mut Console,
) -> Result<i32, CliError> {
    let target = target(args, src);
    let command = ["tar", "cf", "-", &src.path].map(str::to_string).to_vec();
    let request = remote::exec_request(client, target, command, false, Some(console)).await?;
    let destination = Destination {
        prefix: strip_path_shortcuts(&clean(strip_leading_slashes(&src.path))),
        path: dest,
        link_hint: format!(
            "peapod exec -n {:?} {:?} -- tar cf - {:?} | tar xf -",
            target.namespace, target.pod, src.path
        ),
    };
    let (archive, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let unpacking = tokio::task::spawn_blocking(move || {
        let mut warnings = Vec::new();
        let unpacked = unpack::unpack(ChunkReader::new(chunks), &destination, &mut warnings);
        (warnings, unpacked)
    });
    let mut output = ArchiveOutput {
        archive,
        console: &mut *console,
    };
    let ran = remote::run(client, &request, None, &mut output).await;
    drop(output);
    let (warnings, unpacked) = unpacking.await.expect("unpacking does not panic");
    for warning in warnings {
        console.eprintln(&warning);
    }
    match (ran, unpacked) {
        (Ok(Exit::Success), unpacked) => unpacked.map(|()| 0).map_err(CliError::from),
        (Ok(exit), _) => remote::exit_code(exit, console),
        (Err(_), Err(unpack_error)) => Err(unpack_error.into()),
        (Err(err), Ok(())) => Err(err),
    }
}

/// tar's archive to the unpacker, tar's complaints to our stdout (kubectl's `ErrOut: o.Out`).
struct ArchiveOutput<'a> {
    archive: mpsc::Sender<Bytes>,
    console: &'a mut Console,
}

impl Output for ArchiveOutput<'_> {
    async fn stdout(&mut self, data: Bytes) -> Result<(), CliError> {
        self.archive
            .send(data)
            .await
            .map_err(|_| CpError::ArchiveStopped.into())
    }

    async fn stderr(&mut self, data: Bytes) -> Result<(), CliError> {
        self.console.out(&data)
    }
}

async fn to_pod(
    client: &Client,
    args: &CpArgs,
    src: String,
    dest: &RemoteFile,
    console: &mut Console,
) -> Result<i32, CliError> {
    if std::fs::metadata(&src).is_err() {
        return Err(CpError::MissingSource(src).into());
    }
    let target = target(args, dest);
    let mut dest_file = dest.path.clone();
    if is_directory(client, target, &dest_file).await? {
        dest_file = join(&dest_file, &base(&src));
    }
    let command = extract_command(args.no_preserve, &dest_file);
    let request = remote::exec_request(client, target, command, true, Some(console)).await?;
    let (archive, chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let packing = tokio::task::spawn_blocking(move || {
        pack::make_tar(&src, &dest_file, ChunkWriter::new(archive))
    });
    let ran = remote::run(client, &request, Some(chunks), console).await;
    let packed = packing.await.expect("packing does not panic");
    let exit = ran?;
    match packed {
        Err(err) if !err.is_broken_pipe() => Err(err.into()),
        _ => remote::exit_code(exit, console),
    }
}

/// kubectl's `tar -xmf -`, unpacking in the destination's directory.
fn extract_command(no_preserve: bool, dest_file: &str) -> Vec<String> {
    let mut command = if no_preserve {
        vec![
            "tar",
            "--no-same-permissions",
            "--no-same-owner",
            "-xmf",
            "-",
        ]
    } else {
        vec!["tar", "-xmf", "-"]
    };
    let directory = dir(dest_file);
    if !directory.is_empty() {
        command.extend(["-C", &directory]);
    }
    command.into_iter().map(str::to_string).collect()
}

/// kubectl's `checkDestinationIsDir`: `test -d` in the container, its output discarded; any
/// failure but the timeout means no.
async fn is_directory(client: &Client, target: Target<'_>, path: &str) -> Result<bool, CpError> {
    let check = async {
        let command = ["test", "-d", path].map(str::to_string).to_vec();
        let request = remote::exec_request(client, target, command, false, None).await?;
        remote::run(client, &request, None, &mut Discard).await
    };
    match tokio::time::timeout(DESTINATION_CHECK_TIMEOUT, check).await {
        Ok(answer) => Ok(matches!(answer, Ok(Exit::Success))),
        Err(_) => Err(CpError::DestinationCheckTimedOut),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extract_command_is_kubectls() {
        assert_eq!(
            extract_command(false, "/tmp/dir/src"),
            ["tar", "-xmf", "-", "-C", "/tmp/dir"]
        );
        assert_eq!(
            extract_command(true, "file"),
            [
                "tar",
                "--no-same-permissions",
                "--no-same-owner",
                "-xmf",
                "-",
                "-C",
                "."
            ]
        );
    }
}
