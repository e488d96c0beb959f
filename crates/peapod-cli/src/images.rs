//! The images.peapod.io verbs: `images` (crictl-style table), `load`, `import` (with
//! Dockerfile-style `--change`s) and `rmi`.

use std::io;
use std::path::{Path, PathBuf};

use hyper::Method;
use peapod_printers::{align, table};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::args::{ImagesArgs, ImportArgs, LoadArgs, RmiArgs};
use crate::client::{Call, Client, ClientError};
use crate::console::Console;
use crate::error::CliError;
use crate::query::{encode, IMAGES_PATH};

const HEADER: [&str; 4] = ["IMAGE", "TAG", "IMAGE ID", "SIZE"];
const NONE: &str = "<none>";
const SHORT_ID_LEN: usize = 13;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("--change {change:?}: {reason}")]
    Change { change: String, reason: String },
    #[error("resolving {}: {source}", path.display())]
    Path { path: PathBuf, source: io::Error },
    #[error("buffering stdin in a temporary file: {0}")]
    Stdin(#[source] io::Error),
}

/// An image as the agent describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageInfo {
    /// `sha256:<hex>` (a bare hex id is accepted too).
    pub id: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub size: u64,
}

impl ImageInfo {
    fn hex(&self) -> &str {
        self.id.strip_prefix("sha256:").unwrap_or(&self.id)
    }

    fn digest(&self) -> String {
        format!("sha256:{}", self.hex())
    }
}

pub async fn images(
    client: &Client,
    args: ImagesArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let images: Vec<ImageInfo> = client.get_json(IMAGES_PATH).await?;
    let text = if args.quiet {
        images.iter().map(|i| format!("{}\n", i.digest())).collect()
    } else {
        image_table(&images)
    };
    console.print(&text)?;
    Ok(0)
}

/// crictl's `images` table: one row per name (an unnamed image gets `<none> <none>`).
pub fn image_table(images: &[ImageInfo]) -> String {
    let mut rows = Vec::new();
    for image in images {
        let id: String = image.hex().chars().take(SHORT_ID_LEN).collect();
        let size = human_size(image.size);
        let mut row = |(repo, tag): (&str, &str)| {
            rows.push(vec![
                repo.to_string(),
                tag.to_string(),
                id.clone(),
                size.clone(),
            ]);
        };
        if image.names.is_empty() {
            row((NONE, NONE));
        }
        for name in &image.names {
            row(split_name(name));
        }
    }
    if rows.is_empty() {
        return align(&[HEADER.iter().map(|h| h.to_string()).collect()]);
    }
    table(&HEADER, &rows)
}

/// `repo:tag` → (repo, tag); a digest reference has no tag.
fn split_name(name: &str) -> (&str, &str) {
    if let Some((repo, _digest)) = name.split_once('@') {
        return (repo, NONE);
    }
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(colon) => (&name[..last_slash + colon], &name[last_slash + colon + 1..]),
        None => (name, NONE),
    }
}

/// Go's `units.HumanSizeWithPrecision(size, 3)`: decimal units, `%.3g`.
pub fn human_size(size: u64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = size as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", format_g3(value), UNITS[unit])
}

/// Go's `%.3g` for a non-negative number: three significant digits, trailing zeros dropped,
/// exponent form when the rounded exponent is 3 or more.
fn format_g3(value: f64) -> String {
    if value == 0.0 {
        return "0".to_string();
    }
    let scientific = format!("{value:.2e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..3).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{}e{sign}{:02}", trim_zeros(mantissa), exponent.abs());
    }
    let decimals = (2 - exponent) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

fn trim_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

pub async fn load(client: &Client, args: LoadArgs, console: &mut Console) -> Result<i32, CliError> {
    let path = absolute(&args.input)?;
    let call =
        Call::new(Method::POST, format!("{IMAGES_PATH}/load")).json(&json!({ "path": path }));
    let images: Vec<ImageInfo> = client.send(call).await?.json().await?;
    console.print(&loaded_lines(&images))?;
    Ok(0)
}

/// `docker load`'s lines: `Loaded image: NAME`, or `Loaded image ID: sha256:...`.
pub fn loaded_lines(images: &[ImageInfo]) -> String {
    let mut text = String::new();
    for image in images {
        if image.names.is_empty() {
            text.push_str(&format!("Loaded image ID: {}\n", image.digest()));
        }
        for name in &image.names {
            text.push_str(&format!("Loaded image: {name}\n"));
        }
    }
    text
}

fn absolute(path: &Path) -> Result<PathBuf, ImageError> {
    std::path::absolute(path).map_err(|source| ImageError::Path {
        path: path.to_path_buf(),
        source,
    })
}

/// The image config fields `--change` can set, as the agent takes them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportConfig {
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

impl ImportConfig {
    /// Applies `--change` instructions in order.
    pub fn from_changes(changes: &[String]) -> Result<Self, ImageError> {
        let mut config = Self::default();
        for change in changes {
            config.apply(change).map_err(|reason| ImageError::Change {
                change: change.clone(),
                reason,
            })?;
        }
        Ok(config)
    }

    fn apply(&mut self, change: &str) -> Result<(), String> {
        let change = change.trim();
        let (instruction, rest) = change
            .split_once(char::is_whitespace)
            .map_or((change, ""), |(i, r)| (i, r.trim()));
        if rest.is_empty() {
            return Err(format!(
                "{} requires an argument",
                instruction.to_uppercase()
            ));
        }
        match instruction.to_ascii_uppercase().as_str() {
            "ENV" => {
                for pair in env_pairs(rest)? {
                    let key = pair.split('=').next().unwrap_or_default().to_string();
                    self.env
                        .retain(|e| e.split('=').next() != Some(key.as_str()));
                    self.env.push(pair);
                }
            }
            "CMD" => self.cmd = Some(command(rest)?),
            "ENTRYPOINT" => self.entrypoint = Some(command(rest)?),
            "WORKDIR" => self.working_dir = Some(rest.to_string()),
            "USER" => self.user = Some(rest.to_string()),
            other => return Err(format!("unknown instruction: {other}")),
        }
        Ok(())
    }
}

/// JSON (exec) form, else shell form run by `/bin/sh -c`.
fn command(text: &str) -> Result<Vec<String>, String> {
    if text.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| format!("invalid JSON array: {e}"));
    }
    Ok(vec!["/bin/sh".into(), "-c".into(), text.to_string()])
}

/// `K=V K2="v 2"`, or the legacy `K the value` form, as `K=V` strings.
fn env_pairs(text: &str) -> Result<Vec<String>, String> {
    let words = shell_words(text)?;
    if !words.first().is_some_and(|w| w.contains('=')) {
        let (key, value) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        return Ok(vec![format!("{key}={}", value.trim())]);
    }
    if let Some(bad) = words
        .iter()
        .find(|w| !w.contains('=') || w.starts_with('='))
    {
        return Err(format!("ENV names must be followed by '=': {bad:?}"));
    }
    Ok(words)
}

/// Whitespace-separated words with single/double quotes and backslash escapes removed.
fn shell_words(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => word.get_or_insert_with(String::new).extend(chars.next()),
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_string());
    }
    words.extend(word);
    Ok(words)
}

pub async fn import(
    client: &Client,
    args: ImportArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let config = ImportConfig::from_changes(&args.change)?;
    // Keeps a stdin copy alive until the agent has read it.
    let mut buffered = None;
    let path = if args.file == "-" {
        let file = buffer_stdin(console)?;
        let path = file.path().to_path_buf();
        buffered = Some(file);
        path
    } else {
        absolute(Path::new(&args.file))?
    };
    let body = json!({ "path": path, "name": args.name, "config": config });
    let call = Call::new(Method::POST, format!("{IMAGES_PATH}/import")).json(&body);
    let image: ImageInfo = client.send(call).await?.json().await?;
    drop(buffered);
    console.print(&format!("{}\n", image.digest()))?;
    Ok(0)
}

fn buffer_stdin(console: &mut Console) -> Result<tempfile::NamedTempFile, ImageError> {
    let mut file = tempfile::Builder::new()
        .prefix("peapod-import-")
        .suffix(".tar")
        .tempfile()
        .map_err(ImageError::Stdin)?;
    io::copy(&mut console.take_stdin(), file.as_file_mut()).map_err(ImageError::Stdin)?;
    Ok(file)
}

pub async fn rmi(client: &Client, args: RmiArgs, console: &mut Console) -> Result<i32, CliError> {
    let mut failed = false;
    for reference in &args.refs {
        let call = Call::delete(format!("{IMAGES_PATH}/{}", encode(reference)));
        match client.send(call).await?.success().await {
            Ok(_) => console.print(&format!("Deleted: {reference}\n"))?,
            Err(ClientError::Api(error)) => {
                console.eprintln(&error.to_string());
                failed = true;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(i32::from(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, names: &[&str], size: u64) -> ImageInfo {
        ImageInfo {
            id: id.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            size,
        }
    }

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(1000), "1kB");
        assert_eq!(human_size(1_234_567), "1.23MB");
        assert_eq!(human_size(4_261_000), "4.26MB");
        assert_eq!(human_size(72_800_000), "72.8MB");
        assert_eq!(human_size(1_100_000_000), "1.1GB");
        assert_eq!(human_size(999_999), "1e+03kB");
    }

    #[test]
    fn names_split_into_repository_and_tag() {
        assert_eq!(
            split_name("docker.io/library/busybox:1.36"),
            ("docker.io/library/busybox", "1.36")
        );
        assert_eq!(
            split_name("localhost:5000/app"),
            ("localhost:5000/app", NONE)
        );
        assert_eq!(
            split_name("example.com/app@sha256:abc"),
            ("example.com/app", NONE)
        );
    }

    #[test]
    fn table_has_a_row_per_name_and_short_ids() {
        let hex = "0123456789abcdef0123";
        let text = image_table(&[
            image(
                &format!("sha256:{hex}"),
                &["docker.io/library/busybox:latest", "example.com/bb:1"],
                4_261_000,
            ),
            image("fedcba9876543210", &[], 12),
        ]);
        assert_eq!(
            text,
            "IMAGE                       TAG      IMAGE ID        SIZE\n\
             docker.io/library/busybox   latest   0123456789abc   4.26MB\n\
             example.com/bb              1        0123456789abc   4.26MB\n\
             <none>                      <none>   fedcba9876543   12B\n"
        );
        assert_eq!(image_table(&[]), "IMAGE   TAG   IMAGE ID   SIZE\n");
    }

    #[test]
    fn loaded_lines_name_or_id() {
        let text = loaded_lines(&[image("sha256:aa", &["x:1"], 0), image("bb", &[], 0)]);
        assert_eq!(text, "Loaded image: x:1\nLoaded image ID: sha256:bb\n");
    }

    #[test]
    fn changes_build_the_config() {
        let changes: Vec<String> = [
            "ENV A=1 B=\"two words\"",
            "ENV A=3",
            "env LEGACY some value",
            "CMD [\"sh\", \"-c\", \"echo hi\"]",
            "ENTRYPOINT /entry.sh --flag",
            "WORKDIR /srv",
            "USER 1000:1000",
        ]
        .map(String::from)
        .to_vec();
        let config = ImportConfig::from_changes(&changes).unwrap();
        assert_eq!(config.env, vec!["B=two words", "A=3", "LEGACY=some value"]);
        assert_eq!(
            config.cmd,
            Some(vec!["sh".into(), "-c".into(), "echo hi".into()])
        );
        assert_eq!(
            config.entrypoint,
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "/entry.sh --flag".into()
            ])
        );
        assert_eq!(config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        let json = serde_json::to_value(ImportConfig::default()).unwrap();
        assert_eq!(
            json,
            json!({"entrypoint": null, "cmd": null, "env": [], "workingDir": null, "user": null})
        );
    }

    #[test]
    fn bad_changes_are_rejected() {
        let err = |c: &str| {
            ImportConfig::from_changes(&[c.to_string()])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("EXPOSE 80"),
            "--change \"EXPOSE 80\": unknown instruction: EXPOSE"
        );
        assert_eq!(err("CMD [\"sh\""), "--change \"CMD [\\\"sh\\\"\": invalid JSON array: EOF while parsing a list at line 1 column 5");
        assert_eq!(
            err("WORKDIR"),
            "--change \"WORKDIR\": WORKDIR requires an argument"
        );
        assert_eq!(
            err("ENV A=1 B"),
            "--change \"ENV A=1 B\": ENV names must be followed by '=': \"B\""
        );
    }
}
