//! Where and how the puller may reach registries: the insecure (plain HTTP) list, the docker
//! config.json-format credentials file, and download concurrency.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

/// containerd's default `max_concurrent_downloads`.
pub const DEFAULT_MAX_CONCURRENT_DOWNLOADS: usize = 3;

const ENV_INSECURE: &str = "PEAPOD_INSECURE_REGISTRIES";
const ENV_AUTH_FILE: &str = "PEAPOD_REGISTRY_AUTH_FILE";
const ENV_MAX_DOWNLOADS: &str = "PEAPOD_MAX_CONCURRENT_DOWNLOADS";
/// kubelet reads `<--root-dir>/config.json`; peapod's data dir plays that role.
const AUTH_FILE_NAME: &str = "config.json";
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

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

    /// The credentials for `registry` from the auth file, read now so that edits apply
    /// without a restart. None without a file or an entry.
    pub fn credentials_for(
        &self,
        registry: &str,
    ) -> Result<Option<Credentials>, RegistryConfigError> {
        let Some(path) = &self.auth_file else {
            return Ok(None);
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(RegistryConfigError::Read {
                    path: path.clone(),
                    source,
                })
            }
        };
        DockerConfig::parse(&bytes)
            .map_err(|e| e.with_path(path))?
            .lookup(registry)
            .map_err(|e| e.with_path(path))
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

/// A user name and password for one registry.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A docker config.json: `{"auths": {"host[:port]" | "https://host/...": {"auth":
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
    pub fn parse(bytes: &[u8]) -> Result<DockerConfig, RegistryConfigError> {
        serde_json::from_slice(bytes)
            .map_err(|source| RegistryConfigError::Json { path: None, source })
    }

    /// The credentials for `registry` (`host[:port]`); Docker Hub is also found under
    /// "https://index.docker.io/v1/". Entries that cannot be decoded are skipped.
    pub fn credentials_for(&self, registry: &str) -> Option<Credentials> {
        self.lookup(registry).ok().flatten()
    }

    /// Like `credentials_for`, but an undecodable entry for `registry` is an error.
    fn lookup(&self, registry: &str) -> Result<Option<Credentials>, RegistryConfigError> {
        let wanted = |key: &str| {
            let host = key_host(key);
            host == registry
                || (DOCKER_HUB_HOSTS.contains(&registry) && DOCKER_HUB_HOSTS.contains(&host))
        };
        let exact = self.auths.iter().find(|(key, _)| key_host(key) == registry);
        let entry = exact.or_else(|| self.auths.iter().find(|(key, _)| wanted(key)));
        let Some((_, entry)) = entry else {
            return Ok(None);
        };
        entry
            .credentials()
            .map_err(|reason| RegistryConfigError::InvalidAuth {
                path: None,
                registry: registry.into(),
                reason,
            })
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

/// The `host[:port]` of an auths key, which may be a URL (`https://index.docker.io/v1/`).
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

impl AuthEntry {
    fn credentials(&self) -> Result<Option<Credentials>, String> {
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| format!("auth is not base64: {e}"))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| "auth is not utf-8".to_string())?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| "auth is not base64(username:password)".to_string())?;
            return Ok(Some(Credentials {
                username: username.into(),
                password: password.into(),
            }));
        }
        match (&self.username, &self.password) {
            (Some(username), Some(password)) => Ok(Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            })),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key `docker login` writes for Docker Hub.
    const DOCKER_HUB_LEGACY_KEY: &str = "https://index.docker.io/v1/";

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn creds(user: &str, pass: &str) -> Option<Credentials> {
        Some(Credentials {
            username: user.into(),
            password: pass.into(),
        })
    }

    #[test]
    fn auth_file_forms() {
        let json = format!(
            r#"{{"auths": {{
                "{DOCKER_HUB_LEGACY_KEY}": {{"auth": "{}"}},
                "127.0.0.1:5000": {{"username": "u", "password": "p:w"}},
                "https://ghcr.io/v2/": {{"auth": "{}"}},
                "empty.example": {{}}
            }}, "credHelpers": {{"x": "y"}}}}"#,
            b64("hub:secret"),
            b64("gh:tok:en")
        );
        let config = DockerConfig::parse(json.as_bytes()).unwrap();
        assert_eq!(config.credentials_for("docker.io"), creds("hub", "secret"));
        assert_eq!(config.credentials_for("127.0.0.1:5000"), creds("u", "p:w"));
        assert_eq!(config.credentials_for("ghcr.io"), creds("gh", "tok:en"));
        assert_eq!(config.credentials_for("127.0.0.1:5001"), None);
        assert_eq!(config.credentials_for("empty.example"), None);
        assert_eq!(config.credentials_for("quay.io"), None);
    }

    #[test]
    fn exact_docker_hub_key_wins_over_the_legacy_one() {
        let json = format!(
            r#"{{"auths": {{"{DOCKER_HUB_LEGACY_KEY}": {{"auth": "{}"}}, "docker.io": {{"auth": "{}"}}}}}}"#,
            b64("old:1"),
            b64("new:2")
        );
        let config = DockerConfig::parse(json.as_bytes()).unwrap();
        assert_eq!(config.credentials_for("docker.io"), creds("new", "2"));
    }

    #[test]
    fn bad_auth_files_are_errors() {
        assert!(DockerConfig::parse(b"{not json").is_err());
        let config = DockerConfig::parse(br#"{"auths": {"r.example": {"auth": "!!"}}}"#).unwrap();
        assert!(config.lookup("r.example").is_err());
        assert_eq!(config.credentials_for("r.example"), None);
        let no_colon = format!(
            r#"{{"auths": {{"r.example": {{"auth": "{}"}}}}}}"#,
            b64("x")
        );
        let config = DockerConfig::parse(no_colon.as_bytes()).unwrap();
        assert!(config.lookup("r.example").is_err());
    }

    #[test]
    fn the_auth_file_is_read_at_each_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let config = RegistryConfig {
            auth_file: Some(path.clone()),
            ..RegistryConfig::default()
        };
        assert_eq!(config.credentials_for("r.example").unwrap(), None);
        std::fs::write(
            &path,
            r#"{"auths": {"r.example": {"username": "a", "password": "b"}}}"#,
        )
        .unwrap();
        assert_eq!(
            config.credentials_for("r.example").unwrap(),
            creds("a", "b")
        );
        std::fs::write(&path, "[").unwrap();
        let err = config.credentials_for("r.example").unwrap_err().to_string();
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
