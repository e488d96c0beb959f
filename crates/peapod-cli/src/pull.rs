//! `peapod pull` (the agent's NDJSON progress stream shown as a bar per layer on a terminal,
//! quiet lines otherwise) and `peapod image prune`.

use std::collections::{HashMap, HashSet};

use hyper::Method;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Deserialize;
use serde_json::json;

use crate::args::PullArgs;
use crate::client::{Call, Client, ClientError};
use crate::console::Console;
use crate::error::CliError;
use crate::images::{human_size, ImageInfo};
use crate::query::IMAGES_PATH;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The agent's reason, complete (the puller's containerd-style message).
    #[error("{0}")]
    Failed(String),
    #[error("decoding the agent's progress line {line:?}: {source}")]
    Decode {
        line: String,
        source: serde_json::Error,
    },
    #[error("the agent ended the pull of {0} without a result")]
    Incomplete(String),
}

/// One line of the agent's pull stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum PullMessage {
    #[serde(rename_all = "camelCase")]
    Resolved {
        reference: String,
        #[serde(default)]
        manifest_digest: String,
        #[serde(default)]
        layers: Vec<Layer>,
    },
    Progress {
        digest: String,
        received: u64,
        total: u64,
    },
    #[serde(rename_all = "camelCase")]
    LayerReady {
        digest: String,
        #[serde(default)]
        cached: bool,
    },
    Done {
        image: ImageInfo,
    },
    Error {
        message: String,
    },
    /// A kind this client does not know yet.
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Layer {
    pub digest: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub cached: bool,
}

/// Splits a byte stream into NDJSON messages; a partial line waits for the next chunk.
#[derive(Debug, Default)]
pub struct NdjsonLines {
    pending: Vec<u8>,
}

impl NdjsonLines {
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<PullMessage>, PullError> {
        self.pending.extend_from_slice(chunk);
        let mut messages = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            let message = serde_json::from_str(text).map_err(|source| PullError::Decode {
                line: text.to_string(),
                source,
            })?;
            messages.push(message);
        }
        Ok(messages)
    }
}

/// `sha256:` and the first 12 hex digits, as docker names layers.
pub fn short_digest(digest: &str) -> String {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    format!("sha256:{}", hex.chars().take(12).collect::<String>())
}

/// The quiet output: what each message adds to stdout.
#[derive(Debug, Default)]
pub struct QuietLines {
    layers: Vec<Layer>,
    reported: HashSet<String>,
}

impl QuietLines {
    pub fn render(&mut self, message: &PullMessage) -> String {
        match message {
            PullMessage::Resolved {
                reference, layers, ..
            } => {
                self.layers = layers.clone();
                format!("Pulling {reference}\n")
            }
            PullMessage::LayerReady { digest, cached } => self.layer_line(digest, *cached),
            PullMessage::Done { image } => {
                // Layers the store already had, in case the agent reported them only when
                // resolving.
                let cached: Vec<String> = self
                    .layers
                    .iter()
                    .filter(|l| l.cached)
                    .map(|l| l.digest.clone())
                    .collect();
                let mut text: String = cached.iter().map(|d| self.layer_line(d, true)).collect();
                text.push_str(&final_line(image));
                text
            }
            _ => String::new(),
        }
    }

    fn layer_line(&mut self, digest: &str, cached: bool) -> String {
        if !self.reported.insert(digest.to_string()) {
            return String::new();
        }
        let short = short_digest(digest);
        if cached {
            return format!("{short}: already exists\n");
        }
        let size = self
            .layers
            .iter()
            .find(|l| l.digest == digest)
            .map_or(0, |l| l.size);
        format!("{short}: done {}\n", human_size(size))
    }
}

/// crictl's last line of a pull.
fn final_line(image: &ImageInfo) -> String {
    let hex = image.id.strip_prefix("sha256:").unwrap_or(&image.id);
    format!("Image is up to date for sha256:{hex}\n")
}

const BAR: &str = "{prefix}: [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}";
const CACHED: &str = "{prefix}: already exists";
const DONE: &str = "{prefix}: done {total_bytes}";

/// A progress bar per layer on the terminal.
struct Bars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: HashMap::new(),
        }
    }

    fn style(template: &str) -> ProgressStyle {
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    fn show(&mut self, message: &PullMessage) {
        match message {
            PullMessage::Resolved {
                reference, layers, ..
            } => {
                let _ = self.multi.println(format!("Pulling {reference}"));
                for layer in layers {
                    let bar = self.multi.add(ProgressBar::new(layer.size));
                    bar.set_prefix(short_digest(&layer.digest));
                    bar.set_style(Self::style(BAR));
                    if layer.cached {
                        self.finish(&bar, true);
                    }
                    self.bars.insert(layer.digest.clone(), bar);
                }
            }
            PullMessage::Progress {
                digest,
                received,
                total,
            } => {
                if let Some(bar) = self.bars.get(digest) {
                    bar.set_length(*total);
                    bar.set_position(*received);
                }
            }
            PullMessage::LayerReady { digest, cached } => {
                if let Some(bar) = self.bars.get(digest) {
                    self.finish(bar, *cached);
                }
            }
            _ => {}
        }
    }

    fn finish(&self, bar: &ProgressBar, cached: bool) {
        if bar.is_finished() {
            return;
        }
        if cached {
            bar.set_style(Self::style(CACHED));
        } else {
            bar.set_style(Self::style(DONE));
        }
        bar.finish();
    }

    fn clear(&self) {
        for bar in self.bars.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

pub async fn pull(client: &Client, args: PullArgs, console: &mut Console) -> Result<i32, CliError> {
    let call = Call::new(Method::POST, format!("{IMAGES_PATH}/pull"))
        .json(&json!({ "reference": args.reference }));
    let mut reply = match client.send(call).await?.success().await {
        Ok(reply) => reply,
        Err(ClientError::Api(api)) => return Err(PullError::Failed(api.message).into()),
        Err(other) => return Err(other.into()),
    };
    let mut lines = NdjsonLines::default();
    let mut bars = console.stdout_is_terminal().then(Bars::new);
    let mut quiet = QuietLines::default();
    while let Some(chunk) = reply.chunk().await? {
        for message in lines.push(&chunk)? {
            if let PullMessage::Error { message } = message {
                if let Some(bars) = &bars {
                    bars.clear();
                }
                return Err(PullError::Failed(message).into());
            }
            match bars.as_mut() {
                Some(bars) => {
                    bars.show(&message);
                    if let PullMessage::Done { image } = &message {
                        console.print(&final_line(image))?;
                    }
                }
                None => console.print(&quiet.render(&message))?,
            }
            if matches!(message, PullMessage::Done { .. }) {
                return Ok(0);
            }
        }
    }
    Err(PullError::Incomplete(args.reference).into())
}

pub async fn prune(client: &Client, console: &mut Console) -> Result<i32, CliError> {
    let call = Call::new(Method::POST, format!("{IMAGES_PATH}/prune"));
    let removed: Vec<ImageInfo> = client.send(call).await?.json().await?;
    console.print(&pruned_lines(&removed))?;
    Ok(0)
}

/// `Deleted: NAME` per name (the id for an unnamed image), then the space reclaimed.
pub fn pruned_lines(removed: &[ImageInfo]) -> String {
    let mut text = String::new();
    for image in removed {
        if image.names.is_empty() {
            let hex = image.id.strip_prefix("sha256:").unwrap_or(&image.id);
            text.push_str(&format!("Deleted: sha256:{hex}\n"));
        }
        for name in &image.names {
            text.push_str(&format!("Deleted: {name}\n"));
        }
    }
    let total: u64 = removed.iter().map(|i| i.size).sum();
    text.push_str(&format!("Total reclaimed space: {}\n", human_size(total)));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sha256:aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
    const B: &str = "sha256:bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";

    fn parse_all(text: &str) -> Vec<PullMessage> {
        NdjsonLines::default().push(text.as_bytes()).unwrap()
    }

    #[test]
    fn ndjson_lines_split_across_chunks() {
        let mut lines = NdjsonLines::default();
        let first = lines
            .push(br#"{"type":"progress","digest":"sha256:a","rece"#)
            .unwrap();
        assert!(first.is_empty());
        let rest = lines
            .push(b"ived\":10,\"total\":99}\n\n{\"type\":\"layerReady\",\"digest\":\"sha256:a\",\"cached\":false}\n")
            .unwrap();
        assert_eq!(
            rest,
            vec![
                PullMessage::Progress {
                    digest: "sha256:a".into(),
                    received: 10,
                    total: 99
                },
                PullMessage::LayerReady {
                    digest: "sha256:a".into(),
                    cached: false
                }
            ]
        );
    }

    #[test]
    fn every_message_kind_decodes() {
        let text = format!(
            "{}\n{}\n{}\n{}\n",
            json!({"type": "resolved", "reference": "docker.io/library/busybox:1.36",
                   "manifestDigest": "sha256:m", "layers": [{"digest": A, "size": 1234, "cached": true}]}),
            json!({"type": "done", "image": {"id": "sha256:ff", "names": ["x:1"], "size": 5,
                   "layers": [], "manifestDigest": "sha256:m"}}),
            json!({"type": "error", "message": "failed to pull and unpack image \"x\": not found"}),
            json!({"type": "somethingNew", "x": 1}),
        );
        let messages = parse_all(&text);
        assert_eq!(
            messages[0],
            PullMessage::Resolved {
                reference: "docker.io/library/busybox:1.36".into(),
                manifest_digest: "sha256:m".into(),
                layers: vec![Layer {
                    digest: A.into(),
                    size: 1234,
                    cached: true
                }],
            }
        );
        assert!(matches!(&messages[1], PullMessage::Done { image } if image.id == "sha256:ff"));
        assert!(
            matches!(&messages[2], PullMessage::Error { message } if message.ends_with("not found"))
        );
        assert_eq!(messages[3], PullMessage::Other);
    }

    #[test]
    fn a_broken_line_is_an_error_naming_it() {
        let err = NdjsonLines::default().push(b"{nope\n").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("decoding the agent's progress line \"{nope\":"));
    }

    #[test]
    fn quiet_lines_report_each_layer_once_then_the_image() {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n",
            json!({"type": "resolved", "reference": "docker.io/library/busybox:1.36", "manifestDigest": "sha256:m",
                   "layers": [{"digest": A, "size": 1_234_567, "cached": false},
                              {"digest": B, "size": 10, "cached": true}]}),
            json!({"type": "progress", "digest": A, "received": 5, "total": 1_234_567}),
            json!({"type": "layerReady", "digest": A, "cached": false}),
            json!({"type": "layerReady", "digest": A, "cached": false}),
            json!({"type": "done", "image": {"id": "sha256:0123abcd", "names": [], "size": 1}}),
        );
        let mut quiet = QuietLines::default();
        let out: String = parse_all(&text).iter().map(|m| quiet.render(m)).collect();
        assert_eq!(
            out,
            "Pulling docker.io/library/busybox:1.36\n\
             sha256:aaaaaaaaaaaa: done 1.23MB\n\
             sha256:bbbbbbbbbbbb: already exists\n\
             Image is up to date for sha256:0123abcd\n"
        );
    }

    #[test]
    fn bar_templates_are_valid() {
        for template in [BAR, CACHED, DONE] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }

    #[test]
    fn bars_follow_progress_and_finish_each_layer() {
        let mut bars = Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            bars: HashMap::new(),
        };
        let messages = parse_all(&format!(
            "{}\n{}\n{}\n",
            json!({"type": "resolved", "reference": "r", "manifestDigest": "m",
                   "layers": [{"digest": A, "size": 100, "cached": false},
                              {"digest": B, "size": 10, "cached": true}]}),
            json!({"type": "progress", "digest": A, "received": 40, "total": 120}),
            json!({"type": "layerReady", "digest": A, "cached": false}),
        ));
        bars.show(&messages[0]);
        assert!(bars.bars[B].is_finished());
        assert!(!bars.bars[A].is_finished());
        bars.show(&messages[1]);
        assert_eq!(bars.bars[A].position(), 40);
        assert_eq!(bars.bars[A].length(), Some(120));
        bars.show(&messages[2]);
        assert!(bars.bars[A].is_finished());
    }

    #[test]
    fn pruned_lines_name_each_image_and_the_total() {
        let images = vec![
            ImageInfo {
                id: "sha256:aa".into(),
                names: vec!["docker.io/library/busybox:latest".into(), "x:1".into()],
                size: 12_300_000,
            },
            ImageInfo {
                id: "bb".into(),
                names: vec![],
                size: 1000,
            },
        ];
        assert_eq!(
            pruned_lines(&images),
            "Deleted: docker.io/library/busybox:latest\n\
             Deleted: x:1\n\
             Deleted: sha256:bb\n\
             Total reclaimed space: 12.3MB\n"
        );
        assert_eq!(pruned_lines(&[]), "Total reclaimed space: 0B\n");
    }
}
