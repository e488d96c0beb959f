//! The JSON documents of the OCI image-spec and docker-save archives, as far as peapod reads
//! or writes them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ImageConfig;

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

pub(crate) const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
pub(crate) const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub(crate) fn new(media_type: &str, digest: String, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

/// An OCI image index or docker manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    pub manifests: Vec<Descriptor>,
}

/// An OCI image manifest or docker schema2 manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// Only what tells an index from a manifest when a descriptor has no media type.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Probe {
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Option<serde_json::Value>,
}

/// The image configuration blob.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ExecConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// The `config` object inside the image configuration (docker's capitalised keys).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ExecConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
}

impl ConfigFile {
    pub(crate) fn image_config(&self) -> ImageConfig {
        let exec = self.config.clone().unwrap_or_default();
        let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
        ImageConfig {
            entrypoint: exec.entrypoint,
            cmd: exec.cmd,
            env: exec.env.unwrap_or_default(),
            working_dir: non_empty(exec.working_dir),
            user: non_empty(exec.user),
            stop_signal: non_empty(exec.stop_signal),
        }
    }

    pub(crate) fn for_import(config: &ImageConfig, diff_id: String) -> ConfigFile {
        let (os, architecture) = host_platform();
        ConfigFile {
            architecture: architecture.into(),
            os: os.into(),
            config: Some(ExecConfig {
                entrypoint: config.entrypoint.clone(),
                cmd: config.cmd.clone(),
                env: (!config.env.is_empty()).then(|| config.env.clone()),
                working_dir: config.working_dir.clone(),
                user: config.user.clone(),
                stop_signal: config.stop_signal.clone(),
            }),
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: vec![diff_id],
            },
        }
    }
}

/// One entry of a docker-save `manifest.json`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DockerSaveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
}

/// Whether a media type names an image index (OCI index or docker manifest list).
pub(crate) fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// The media type of a manifest document: the descriptor's when it has one, else the
/// document's own `mediaType`, else guessed from its shape (an index has `manifests`).
pub(crate) fn document_media_type(
    declared: &str,
    bytes: &[u8],
) -> Result<String, serde_json::Error> {
    if !declared.is_empty() {
        return Ok(declared.to_string());
    }
    let probe: Probe = serde_json::from_slice(bytes)?;
    Ok(probe.media_type.unwrap_or_else(|| match probe.manifests {
        Some(_) => OCI_INDEX.into(),
        None => OCI_MANIFEST.into(),
    }))
}

/// The manifest of an index to use on this host, as containerd's default platform matcher
/// would pick it: the first for linux on this architecture; else the first without a platform.
pub(crate) fn select_platform(index: &Index) -> Option<&Descriptor> {
    let (os, architecture) = host_platform();
    let matching = index.manifests.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == os && p.architecture == architecture)
    });
    matching.or_else(|| index.manifests.iter().find(|d| d.platform.is_none()))
}

/// The (os, architecture) of this host in OCI/GOARCH spelling.
pub(crate) fn host_platform() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    ("linux", arch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_with_nulls_and_empty_strings() {
        let json = r#"{"architecture":"amd64","os":"linux",
            "config":{"Env":null,"Cmd":["sh"],"Entrypoint":null,"WorkingDir":"","User":"",
                      "StopSignal":"SIGQUIT","Labels":{"a":"b"}},
            "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},"history":[]}"#;
        let config: ConfigFile = serde_json::from_str(json).unwrap();
        assert_eq!(
            config.image_config(),
            ImageConfig {
                cmd: Some(vec!["sh".into()]),
                stop_signal: Some("SIGQUIT".into()),
                ..ImageConfig::default()
            }
        );
        assert_eq!(config.rootfs.diff_ids, ["sha256:aa"]);
    }

    #[test]
    fn import_config_round_trips() {
        let wanted = ImageConfig {
            entrypoint: Some(vec!["/bin/app".into()]),
            cmd: None,
            env: vec!["PATH=/bin".into()],
            working_dir: Some("/srv".into()),
            user: Some("1000:1000".into()),
            stop_signal: None,
        };
        let file = ConfigFile::for_import(&wanted, "sha256:bb".into());
        let json = serde_json::to_string(&file).unwrap();
        assert!(json.contains(r#""Entrypoint":["/bin/app"]"#), "{json}");
        let back: ConfigFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back.image_config(), wanted);
        assert_eq!(back.os, "linux");
    }
}
