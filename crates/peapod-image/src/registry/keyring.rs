//! kubelet's docker keyring (pkg/credentialprovider BasicDockerKeyring): credentials indexed
//! by registry location (`host[:port][/path]`, globs allowed in the host), and the lookup of
//! every credential whose location matches an image's repository, most specific first.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use super::{Credentials, DockerConfig, RegistryConfigError};

/// Docker Hub's location once `https://index.docker.io/v1/` loses its `/v1/`.
const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

/// Registry credentials by location.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    /// The locations, deduplicated and in reverse lexical order so that `quay.io/org` comes
    /// before `quay.io`.
    index: Vec<String>,
    credentials: HashMap<String, Vec<Credentials>>,
}

impl Keyring {
    /// Adds every entry of `config`; an entry whose location is not a URL is skipped, as the
    /// kubelet skips it. An undecodable entry fails the whole config.
    pub fn add(&mut self, config: &DockerConfig) -> Result<(), RegistryConfigError> {
        for (location, credentials) in config.entries()? {
            let Some(key) = location_key(location) else {
                tracing::warn!(entry = location, "invalid registry location, ignored");
                continue;
            };
            self.credentials
                .entry(key.clone())
                .or_default()
                .push(credentials);
            if !self.index.contains(&key) {
                self.index.push(key);
            }
        }
        self.index.sort_by(|a, b| b.cmp(a));
        Ok(())
    }

    /// Every credential for `image`, a repository name without tag (`docker.io/library/busybox`):
    /// those of each matching location, most specific location first; Docker Hub's
    /// `index.docker.io` credentials for a Docker Hub image when nothing else matched.
    pub fn lookup(&self, image: &str) -> Vec<Credentials> {
        let found: Vec<Credentials> = self
            .index
            .iter()
            .filter(|location| urls_match(location, image))
            .flat_map(|location| self.credentials[location].iter().cloned())
            .collect();
        if found.is_empty() && is_default_registry_match(image) {
            return self
                .credentials
                .get(DEFAULT_REGISTRY_HOST)
                .cloned()
                .unwrap_or_default();
        }
        found
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// A short digest naming a list of credentials without revealing them, for keys and logs;
/// None for no credentials.
pub fn fingerprint(credentials: &[Credentials]) -> Option<String> {
    if credentials.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    for c in credentials {
        for part in [&c.username, &c.password] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
    }
    Some(hex::encode(&hasher.finalize()[..8]))
}

/// The keyring's key for an auths entry: scheme dropped, `/v1/` and `/v2/` path prefixes read
/// as the registry root, a path kept otherwise.
fn location_key(location: &str) -> Option<String> {
    let url = SchemelessUrl::parse(strip_scheme(location))?;
    let path = if url.path.starts_with("/v1/") || url.path.starts_with("/v2/") {
        &url.path[3..]
    } else {
        url.path
    };
    if path.is_empty() || path == "/" {
        Some(url.host.to_string())
    } else {
        Some(format!("{}{path}", url.host))
    }
}

fn strip_scheme(location: &str) -> &str {
    location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))
        .unwrap_or(location)
}

/// Whether `image` is pulled from Docker Hub, judged by its first component as docker does.
fn is_default_registry_match(image: &str) -> bool {
    let (first, rest) = match image.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (image, None),
    };
    if first.is_empty() {
        return false;
    }
    rest.is_none()
        || first == "docker.io"
        || first == DEFAULT_REGISTRY_HOST
        || !first.contains(['.', ':'])
}

/// A URL without scheme, split as Go's url.Parse splits `https://` + it.
struct SchemelessUrl<'a> {
    host: &'a str,
    path: &'a str,
}

impl<'a> SchemelessUrl<'a> {
    fn parse(url: &'a str) -> Option<SchemelessUrl<'a>> {
        let url = url.split(['?', '#']).next().unwrap_or(url);
        let (authority, path) = match url.find('/') {
            Some(i) => url.split_at(i),
            None => (url, ""),
        };
        let host = authority.rsplit('@').next().unwrap_or(authority);
        valid_host(host).then_some(SchemelessUrl { host, path })
    }

    /// The host's dot-separated parts and its port ("" without one), as net.SplitHostPort
    /// splits it (a host it cannot split is all host).
    fn parts(&self) -> (Vec<&'a str>, &'a str) {
        let (host, port) = split_host_port(self.host).unwrap_or((self.host, ""));
        (host.split('.').collect(), port)
    }
}

fn split_host_port(host: &str) -> Option<(&str, &str)> {
    if let Some(rest) = host.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        return Some((inner, after.strip_prefix(':')?));
    }
    match host.matches(':').count() {
        1 => host.split_once(':'),
        _ => None,
    }
}

/// Go's url.Parse refuses a non-numeric port and characters a host cannot hold.
fn valid_host(host: &str) -> bool {
    let chars_ok = host.bytes().all(|b| {
        !b.is_ascii() || b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"%".contains(&b)
    });
    let port = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[i + 1..],
        _ => "",
    };
    chars_ok && port.bytes().all(|b| b.is_ascii_digit())
}

/// kubelet's URLsMatch: same port, same number of host parts, each host part matching its
/// glob, and the glob's path a prefix of the target's.
fn urls_match(glob: &str, target: &str) -> bool {
    let (Some(glob), Some(target)) = (SchemelessUrl::parse(glob), SchemelessUrl::parse(target))
    else {
        return false;
    };
    let (glob_parts, glob_port) = glob.parts();
    let (target_parts, target_port) = target.parts();
    glob_port == target_port
        && glob_parts.len() == target_parts.len()
        && target.path.starts_with(glob.path)
        && glob_parts
            .iter()
            .zip(&target_parts)
            .all(|(pattern, part)| glob_matches(pattern, part))
}

/// Go's filepath.Match for one host part: `*`, `?`, `[a-z]`, `[^...]` and `\` escapes; a
/// malformed pattern matches nothing.
fn glob_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    matches_from(&pattern, &name)
}

fn matches_from(pattern: &[char], name: &[char]) -> bool {
    let Some((&first, rest)) = pattern.split_first() else {
        return name.is_empty();
    };
    match first {
        '*' => (0..=name.len()).any(|skip| matches_from(rest, &name[skip..])),
        '?' => !name.is_empty() && matches_from(rest, &name[1..]),
        '[' => match (name.split_first(), class(rest)) {
            (Some((&c, tail)), Some((class, after))) => {
                class.contains(c) && matches_from(after, tail)
            }
            _ => false,
        },
        '\\' => match rest.split_first() {
            Some((literal, after)) => {
                name.first() == Some(literal) && matches_from(after, &name[1..])
            }
            None => false,
        },
        literal => name.first() == Some(&literal) && matches_from(rest, &name[1..]),
    }
}

/// A bracket expression's ranges, whether it is negated.
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }
}

/// Parses the class after `[`; the class and the pattern after its `]`.
fn class(pattern: &[char]) -> Option<(Class, &[char])> {
    let (negated, mut rest) = match pattern.split_first() {
        Some(('^', rest)) => (true, rest),
        _ => (false, pattern),
    };
    let mut ranges = Vec::new();
    loop {
        if let Some((']', after)) = rest.split_first() {
            if !ranges.is_empty() {
                return Some((Class { negated, ranges }, after));
            }
        }
        let (lo, after) = class_char(rest)?;
        rest = after;
        let mut hi = lo;
        if let Some(('-', after)) = rest.split_first() {
            (hi, rest) = class_char(after)?;
        }
        ranges.push((lo, hi));
    }
}

fn class_char(pattern: &[char]) -> Option<(char, &[char])> {
    let (&c, rest) = pattern.split_first()?;
    let (c, rest) = match c {
        '-' | ']' => return None,
        '\\' => {
            let (&escaped, rest) = rest.split_first()?;
            (escaped, rest)
        }
        c => (c, rest),
    };
    (!rest.is_empty()).then_some((c, rest))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn creds(user: &str) -> Credentials {
        Credentials {
            username: user.into(),
            password: format!("{user}-pw"),
        }
    }

    fn keyring(entries: &[(&str, &str)]) -> Keyring {
        let auths: serde_json::Map<String, serde_json::Value> = entries
            .iter()
            .map(|(location, user)| {
                let auth =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-pw"));
                (location.to_string(), serde_json::json!({"auth": auth}))
            })
            .collect();
        let json = serde_json::json!({ "auths": auths }).to_string();
        let mut keyring = Keyring::default();
        keyring
            .add(&DockerConfig::parse(json.as_bytes()).unwrap())
            .unwrap();
        keyring
    }

    fn users(found: Vec<Credentials>) -> Vec<String> {
        found.into_iter().map(|c| c.username).collect()
    }

    #[test]
    fn urls_match_table() {
        // keyring_test.go TestURLsMatch.
        let table = [
            ("*.kubernetes.io", "prefix.kubernetes.io", true),
            ("prefix.*.io", "prefix.kubernetes.io", true),
            ("prefix.kubernetes.*", "prefix.kubernetes.io", true),
            ("*-good.kubernetes.io", "prefix-good.kubernetes.io", true),
            ("*.kubernetes.io/blah", "prefix.kubernetes.io/blah", true),
            ("prefix.*.io/foo", "prefix.kubernetes.io/foo/bar", true),
            (
                "*.kubernetes.io:1111/blah",
                "prefix.kubernetes.io:1111/blah",
                true,
            ),
            (
                "prefix.*.io:1111/foo",
                "prefix.kubernetes.io:1111/foo/bar",
                true,
            ),
            ("*.kubernetes.io", "kubernetes.io", false),
            ("*.*.kubernetes.io", "prefix.kubernetes.io", false),
            ("*.*.kubernetes.io", "kubernetes.io", false),
            ("*kubernetes.io", "a.kubernetes.io", false),
            ("*kubernetes.io", "kubernetes.io", true),
            ("*.*.*.kubernetes.io", "a.b.c.kubernetes.io", true),
            ("kubernetes.io", "kubernetes.com", false),
            ("k*.io", "quay.io", false),
            (
                "*.kubernetes.io:1234/blah",
                "prefix.kubernetes.io:1111/blah",
                false,
            ),
            (
                "prefix.*.io/foo",
                "prefix.kubernetes.io:1111/foo/bar",
                false,
            ),
        ];
        for (glob, target, expected) in table {
            assert_eq!(urls_match(glob, target), expected, "{glob} vs {target}");
        }
    }

    #[test]
    fn globs_in_auth_file_keys_hit() {
        // keyring_test.go TestDockerKeyringForGlob.
        let table = [
            ("https://hello.kubernetes.io", "hello.kubernetes.io"),
            ("https://*.docker.io", "prefix.docker.io"),
            ("https://prefix.*.io", "prefix.docker.io"),
            ("https://prefix.docker.*", "prefix.docker.io"),
            ("https://*.docker.io/path", "prefix.docker.io/path"),
            ("https://prefix.*.io/path", "prefix.docker.io/path/subpath"),
            ("https://prefix.docker.*/path", "prefix.docker.io/path"),
            ("https://*.docker.io:8888", "prefix.docker.io:8888"),
            ("https://prefix.*.io:8888", "prefix.docker.io:8888"),
            ("https://prefix.docker.*:8888", "prefix.docker.io:8888"),
            (
                "https://*.docker.io/path:1111",
                "prefix.docker.io/path:1111",
            ),
            ("https://*.docker.io/v1/", "prefix.docker.io/path:1111"),
            ("https://*.docker.io/v2/", "prefix.docker.io/path:1111"),
            (
                "https://prefix.docker.*/path:1111",
                "prefix.docker.io/path:1111",
            ),
            ("prefix.docker.io:1111", "prefix.docker.io:1111/path"),
            ("*.docker.io:1111", "prefix.docker.io:1111/path"),
        ];
        for (location, target) in table {
            let found = keyring(&[(location, "foo")]).lookup(&format!("{target}/foo/bar"));
            assert_eq!(found, [creds("foo")], "{location} for {target}");
        }
    }

    #[test]
    fn non_matching_keys_miss() {
        // keyring_test.go TestKeyringMiss and TestKeyringMissWithDockerHubCredentials.
        let table = [
            ("https://hello.kubernetes.io", "world.mesos.org/foo/bar"),
            ("https://*.docker.com", "prefix.docker.io"),
            ("https://suffix.*.io", "prefix.docker.io"),
            ("https://prefix.docker.c*", "prefix.docker.io"),
            (
                "https://prefix.*.io/path:1111",
                "prefix.docker.io/path/subpath:1111",
            ),
            ("suffix.*.io", "prefix.docker.io"),
            ("https://index.docker.io/v1/", "world.mesos.org/foo/bar"),
        ];
        for (location, target) in table {
            let found = keyring(&[(location, "foo")]).lookup(&format!("{target}/foo/bar"));
            assert_eq!(found, [], "{location} for {target}");
        }
    }

    #[test]
    fn docker_hub_credentials_serve_docker_hub_images() {
        // TestKeyringHitWith{Unqualified,UnqualifiedLibrary,Qualified}DockerHub.
        let hub = keyring(&[("https://index.docker.io/v1/", "foo")]);
        for image in [
            "google/docker-registry",
            "jenkins",
            "index.docker.io/v1//google/docker-registry",
            "docker.io/library/busybox",
        ] {
            assert_eq!(hub.lookup(image), [creds("foo")], "{image}");
        }
        // A docker.io key matches docker.io images itself; the legacy key is then unused.
        let both = keyring(&[("https://index.docker.io/v1/", "old"), ("docker.io", "new")]);
        assert_eq!(users(both.lookup("docker.io/library/busybox")), ["new"]);
    }

    #[test]
    fn default_registry_match() {
        // TestIsDefaultRegistryMatch.
        for (image, expected) in [
            ("foo/bar", true),
            ("docker.io/foo/bar", true),
            ("index.docker.io/foo/bar", true),
            ("foo", true),
            ("", false),
            ("registry.tld/foo/bar", false),
            ("registry:5000/foo/bar", false),
            ("myhostdocker.io/foo/bar", false),
        ] {
            assert_eq!(is_default_registry_match(image), expected, "{image:?}");
        }
    }

    #[test]
    fn every_match_most_specific_first() {
        // TestDockerKeyringLookup.
        let keyring = keyring(&[
            ("bar.example.com/pong", "grace"),
            ("bar.example.com", "ada"),
        ]);
        let table: [(&str, &[&str]); 7] = [
            ("bar.example.com", &["ada"]),
            ("bar.example.com/pong", &["grace", "ada"]),
            ("bar.example.com/ping", &["ada"]),
            ("bar.example.com/pongz", &["grace", "ada"]),
            ("bar.example.com/pong/pang", &["grace", "ada"]),
            ("example.com", &[]),
            ("foo.example.com", &[]),
        ];
        for (image, expected) in table {
            assert_eq!(users(keyring.lookup(image)), expected, "{image}");
        }
    }

    #[test]
    fn scheme_and_version_path_match_the_whole_host() {
        // TestIssue3797.
        let keyring = keyring(&[("https://quay.io/v1/", "rex")]);
        for image in ["quay.io", "quay.io/foo", "quay.io/foo/bar"] {
            assert_eq!(users(keyring.lookup(image)), ["rex"], "{image}");
        }
    }

    #[test]
    fn entries_from_several_configs_share_one_index() {
        let mut keyring = keyring(&[("127.0.0.1:5000", "a")]);
        let other = r#"{"auths": {"127.0.0.1:5000/team": {"username": "b", "password": "x"},
            "127.0.0.1:5000": {"username": "c", "password": "y"}}}"#;
        keyring
            .add(&DockerConfig::parse(other.as_bytes()).unwrap())
            .unwrap();
        assert_eq!(
            users(keyring.lookup("127.0.0.1:5000/team/app")),
            ["b", "a", "c"]
        );
        assert_eq!(users(keyring.lookup("127.0.0.1:5000/other")), ["a", "c"]);
        assert_eq!(
            users(keyring.lookup("127.0.0.1:5001/other")),
            Vec::<String>::new()
        );
        assert_eq!(
            users(keyring.lookup("127.0.0.1/other")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn host_globs_follow_go_filepath_match() {
        for (pattern, name, expected) in [
            ("reg?", "reg1", true),
            ("reg?", "reg", false),
            ("r[a-c]g", "rbg", true),
            ("r[^a-c]g", "rbg", false),
            ("r[^a-c]g", "rzg", true),
            ("r\\*g", "r*g", true),
            ("r\\*g", "rxg", false),
            ("r[a", "ra", false),
            ("r[]g", "r]g", false),
        ] {
            assert_eq!(glob_matches(pattern, name), expected, "{pattern} vs {name}");
        }
    }

    #[test]
    fn invalid_locations_are_skipped() {
        let keyring = keyring(&[("reg.example:port", "bad"), ("reg example", "space")]);
        assert!(keyring.is_empty());
    }

    #[test]
    fn fingerprints_name_credentials_without_showing_them() {
        assert_eq!(fingerprint(&[]), None);
        let a = fingerprint(&[creds("alice")]).unwrap();
        assert_eq!(a.len(), 16);
        assert!(!a.contains("alice"));
        assert_eq!(fingerprint(&[creds("alice")]).unwrap(), a);
        assert_ne!(fingerprint(&[creds("bob")]).unwrap(), a);
        assert_ne!(fingerprint(&[creds("alice"), creds("bob")]).unwrap(), a);
    }
}
