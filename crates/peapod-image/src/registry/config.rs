//! Where and how the puller may reach registries: the insecure (plain HTTP) list, the docker
//! config.json-format credentials file, and download concurrency.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use super::Keyring;

/// containerd's default `max_concurrent_downloads`.
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;

const ENV_INSECURE: &str = "PEAPOD_INSECURE_REGISTRIES";
const ENV_AUTH_FILE: &str = "PEAPOD_REGISTRY_AUTH_FILE";
const ENV_MAX_DOWNLOADS: &str = "PEAPOD_MAX_CONCURRENT_DOWNLOADS";
/// kubelet reads `<--root-dir>/config.json`; peapod's data dir plays that role.
const AUTH_FILE_NAME: &str = "config.json";

/// Why the registry configuration or the credentials file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum RegistryConfigError {
    #[error("invalid insecure registry {entry:?} in {ENV_INSECURE}: expected host[:port]")]
    InvalidInsecure { entry: String },
    #[error("invalid {name}={value:?}: expected a positive integer")]
    InvalidNumber { name: &'static str, value: String },
    #[error("reading registry auth file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid registry auth file{}: {source}", path_suffix(.path))]
    Json {
        path: Option<PathBuf>,
        #[source]
        source: serde_json::Error,
    },
    #[error("invalid credentials for {registry:?} in registry auth file{}: {reason}", path_suffix(.path))]
    InvalidAuth {
        path: Option<PathBuf>,
        registry: String,
        reason: String,
    },
}

fn path_suffix(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

/// How the puller reaches registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Registries (`host[:port]`) reached over plain HTTP besides localhost, 127.0.0.0/8, ::1.
    /// An entry without a port covers every port of that host.
    pub insecure: Vec<String>,
    /// docker config.json-format credentials file; a missing file means no credentials.
    pub auth_file: Option<PathBuf>,
    /// Blobs fetched at once per pull (containerd's default max_concurrent_downloads is 3).
    pub max_concurrent_downloads: usize,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            auth_file: None,
            max_concurrent_downloads: DEFAULT_MAX_CONCURRENT_DOWNLOADS,
        }
    }
}

impl RegistryConfig {
    /// PEAPOD_INSECURE_REGISTRIES (comma-separated host[:port]), PEAPOD_REGISTRY_AUTH_FILE
    /// (default `<data_dir>/config.json`, kubelet's --root-dir/config.json precedent) and
    /// PEAPOD_MAX_CONCURRENT_DOWNLOADS (default 3).
    pub fn from_env(data_dir: &Path) -> Result<RegistryConfig, RegistryConfigError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Ok(RegistryConfig {
            insecure: parse_insecure(&var(ENV_INSECURE).unwrap_or_default())?,
            auth_file: Some(
                var(ENV_AUTH_FILE).map_or_else(|| data_dir.join(AUTH_FILE_NAME), PathBuf::from),
            ),
            max_concurrent_downloads: match var(ENV_MAX_DOWNLOADS) {
                Some(value) => parse_positive(ENV_MAX_DOWNLOADS, &value)?,
                None => DEFAULT_MAX_CONCURRENT_DOWNLOADS,
            },
        })
    }

    /// Whether `registry` (`host[:port]`, as in a normalized reference) is reached over
    /// plain HTTP: loopback hosts always, others when listed as insecure.
    pub fn is_plain_http(&self, registry: &str) -> bool {
        let host = host_of(registry);
        is_loopback(host)
            || self
                .insecure
                .iter()
                .any(|entry| entry == registry || (!has_port(entry) && entry == host))
    }

    /// The node's keyring: the auth file's credentials, read now so that edits apply without
    /// a restart. Empty without a file.
    pub fn node_keyring(&self) -> Result<Keyring, RegistryConfigError> {
        let mut keyring = Keyring::default();
        let Some(path) = &self.auth_file else {
            return Ok(keyring);
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keyring),
            Err(source) => {
                return Err(RegistryConfigError::Read {
                    path: path.clone(),
                    source,
                })
            }
        };
        let config = DockerConfig::parse(&bytes).map_err(|e| e.with_path(path))?;
        keyring.add(&config).map_err(|e| e.with_path(path))?;
        Ok(keyring)
    }
}

fn parse_insecure(value: &str) -> Result<Vec<String>, RegistryConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let valid = !entry.contains(['/', ' ', '@']) && !host_of(entry).is_empty();
            if valid {
                Ok(entry.to_string())
            } else {
                Err(RegistryConfigError::InvalidInsecure {
                    entry: entry.into(),
                })
            }
        })
        .collect()
}

fn parse_positive(name: &'static str, value: &str) -> Result<usize, RegistryConfigError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(RegistryConfigError::InvalidNumber {
            name,
            value: value.into(),
        }),
    }
}

/// The host of `host[:port]`, without brackets for IPv6 (`[::1]:5000` → `::1`).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if registry.parse::<IpAddr>().is_ok() {
        return registry;
    }
    registry.split(':').next().unwrap_or(registry)
}

fn has_port(registry: &str) -> bool {
    match registry.strip_prefix('[') {
        Some(rest) => rest.contains("]:"),
        None => registry.parse::<IpAddr>().is_err() && registry.contains(':'),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// A user name and password for one registry. An empty user name pulls anonymously, as
/// containerd treats an empty auth config.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A docker config.json: `{"auths": {"host[:port][/path]" | "https://host/...": {"auth":
/// base64(user:pass)} | {"username", "password"}}}`. Other keys (credHelpers, ...) are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Clone, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthEntry(<redacted>)")
    }
}

impl DockerConfig {
    /// The config.json form (also a kubernetes.io/dockerconfigjson Secret's `.dockerconfigjson`).
    pub fn parse(bytes: &[u8]) -> Result<DockerConfig, RegistryConfigError> {
        serde_json::from_slice(bytes)
            .map_err(|source| RegistryConfigError::Json { path: None, source })
    }

    /// The legacy ~/.dockercfg form, the `auths` map itself (a kubernetes.io/dockercfg
    /// Secret's `.dockercfg`).
    pub fn parse_dockercfg(bytes: &[u8]) -> Result<DockerConfig, RegistryConfigError> {
        serde_json::from_slice(bytes)
            .map(|auths| DockerConfig { auths })
            .map_err(|source| RegistryConfigError::Json { path: None, source })
    }

    /// Every entry's location and credentials; like Go's unmarshalling of the file, one
    /// undecodable `auth` makes the whole config an error.
    pub(crate) fn entries(&self) -> Result<Vec<(&str, Credentials)>, RegistryConfigError> {
        self.auths
            .iter()
            .map(|(location, entry)| {
                entry
                    .credentials()
                    .map(|c| (location.as_str(), c))
                    .map_err(|reason| RegistryConfigError::InvalidAuth {
                        path: None,
                        registry: location.clone(),
                        reason,
                    })
            })
            .collect()
    }
}

impl RegistryConfigError {
    fn with_path(self, file: &Path) -> RegistryConfigError {
        match self {
            RegistryConfigError::Json { source, .. } => RegistryConfigError::Json {
                path: Some(file.to_path_buf()),
                source,
            },
            RegistryConfigError::InvalidAuth {
                registry, reason, ..
            } => RegistryConfigError::InvalidAuth {
                path: Some(file.to_path_buf()),
                registry,
                reason,
            },
            other => other,
        }
    }
}

impl AuthEntry {
    /// kubelet's DockerConfigEntry: `auth`, when set, overrides username and password.
    fn credentials(&self) -> Result<Credentials, String> {
        match self.auth.as_deref().filter(|a| !a.is_empty()) {
            Some(auth) => decode_auth(auth),
            None => Ok(Credentials {
                username: self.username.clone().unwrap_or_default(),
                password: self.password.clone().unwrap_or_default(),
            }),
        }
    }
}

/// kubelet's decodeDockerConfigFieldAuth: padded or unpadded standard base64 of
/// `username:password`.
fn decode_auth(field: &str) -> Result<Credentials, String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    // Go's decoders skip newlines.
    let field: String = field
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n'))
        .collect();
    let engine = if field.trim().ends_with('=') {
        &STANDARD
    } else {
        &STANDARD_NO_PAD
    };
    let decoded = engine
        .decode(&field)
        .map_err(|e| format!("auth is not base64: {e}"))?;
    let decoded = String::from_utf8_lossy(&decoded);
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| "must be formatted as base64(username:password)".to_string())?;
    Ok(Credentials {
        username: username.into(),
        password: password.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key `docker login` writes for Docker Hub.
    const DOCKER_HUB_LEGACY_KEY: &str = "https://index.docker.io/v1/";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn creds(user: &str, pass: &str) -> Vec<Credentials> {
        vec![Credentials {
            username: user.into(),
            password: pass.into(),
        }]
    }

    fn lookup(config: &DockerConfig, image: &str) -> Vec<Credentials> {
        let mut keyring = Keyring::default();
        keyring.add(config).unwrap();
        keyring.lookup(image)
    }

    #[test]
    fn auth_file_forms() {
        let json = format!(
            r#"{{"auths": {{
                "{DOCKER_HUB_LEGACY_KEY}": {{"auth": "{}"}},
                "127.0.0.1:5000": {{"username": "u", "password": "p:w"}},
                "https://ghcr.io/v2/": {{"auth": "{}"}},
                "unpadded.example": {{"auth": "{}"}},
                "empty.example": {{}}
            }}, "credHelpers": {{"x": "y"}}}}"#,
            b64("hub:secret"),
            b64("gh:tok:en"),
            b64("ab:c").trim_end_matches('='),
        );
        let config = DockerConfig::parse(json.as_bytes()).unwrap();
        assert_eq!(
            lookup(&config, "docker.io/library/busybox"),
            creds("hub", "secret")
        );
        assert_eq!(lookup(&config, "127.0.0.1:5000/x"), creds("u", "p:w"));
        assert_eq!(lookup(&config, "ghcr.io/org/app"), creds("gh", "tok:en"));
        assert_eq!(lookup(&config, "unpadded.example/a"), creds("ab", "c"));
        assert_eq!(lookup(&config, "127.0.0.1:5001/x"), []);
        assert_eq!(lookup(&config, "quay.io/x"), []);
        // An entry without credentials still matches: the pull goes anonymous.
        let empty = lookup(&config, "empty.example/a");
        assert!(empty.len() == 1 && empty[0].is_anonymous(), "{empty:?}");
    }

    #[test]
    fn dockercfg_is_the_map_itself() {
        let json = format!(r#"{{"r.example": {{"auth": "{}"}}}}"#, b64("a:b"));
        let config = DockerConfig::parse_dockercfg(json.as_bytes()).unwrap();
        assert_eq!(lookup(&config, "r.example/x"), creds("a", "b"));
    }

    #[test]
    fn bad_auth_files_are_errors() {
        assert!(DockerConfig::parse(b"{not json").is_err());
        let config = DockerConfig::parse(br#"{"auths": {"r.example": {"auth": "!!"}}}"#).unwrap();
        assert!(Keyring::default().add(&config).is_err());
        let no_colon = format!(
            r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
            b64("x")
        );
        let config = DockerConfig::parse(no_colon.as_bytes()).unwrap();
        let err = Keyring::default().add(&config).unwrap_err().to_string();
        assert!(
            err.contains("must be formatted as base64(username:password)"),
            "{err}"
        );
    }

    #[test]
    fn the_auth_file_is_read_at_each_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let config = RegistryConfig {
            auth_file: Some(path.clone()),
            ..RegistryConfig::default()
        };
        assert_eq!(config.node_keyring().unwrap().lookup("r.example/x"), []);
        std::fs::write(
            &path,
            r#"{"auths": {"r.example": {"username": "a", "password": "b"}}}"#,
        )
        .unwrap();
        assert_eq!(
            config.node_keyring().unwrap().lookup("r.example/x"),
            creds("a", "b")
        );
        std::fs::write(&path, "[").unwrap();
        let err = config.node_keyring().unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    #[test]
    fn plain_http_for_loopback_and_listed_registries() {
        let config = RegistryConfig {
            insecure: vec!["reg.lan:5000".into(), "10.0.0.7".into()],
            ..RegistryConfig::default()
        };
        for plain in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.3.2.1",
            "[::1]:5000",
            "reg.lan:5000",
            "10.0.0.7",
            "10.0.0.7:443",
        ] {
            assert!(config.is_plain_http(plain), "{plain}");
        }
        for tls in [
            "docker.io",
            "reg.lan",
            "reg.lan:5001",
            "10.0.0.8",
            "localhost.example:5000",
            "128.0.0.1",
        ] {
            assert!(!config.is_plain_http(tls), "{tls}");
        }
    }

    #[test]
    fn insecure_list_parsing() {
        assert_eq!(parse_insecure(" a:1 , b ,,").unwrap(), ["a:1", "b"]);
        assert!(parse_insecure("http://a:1").is_err());
        assert_eq!(parse_positive(ENV_MAX_DOWNLOADS, "4").unwrap(), 4);
        assert!(parse_positive(ENV_MAX_DOWNLOADS, "0").is_err());
    }
}
