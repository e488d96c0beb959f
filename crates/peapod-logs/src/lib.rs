//! CRI-format container logs, as kubelet and containerd keep them: [`LogWriter`] turns a
//! container's stdout/stderr into `<time> <stream> <F|P> <content>` records with size-based
//! rotation, [`read_log`] serves them back to `peapod logs` with tail, since, byte limits,
//! timestamps and follow.

mod assemble;
mod error;
mod line;
mod reader;
mod rotation;
mod writer;

pub use error::LogError;
pub use line::{format_timestamp, parse_line, LogLine, ParseError, Stream, MAX_CONTENT_LEN};
pub use reader::{read_log, ReadOptions};
pub use writer::{LogWriter, LOG_DIR_MODE, LOG_FILE_MODE};
