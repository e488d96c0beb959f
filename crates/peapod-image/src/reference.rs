//! Image references parsed and normalised the way containerd's CRI does
//! (distribution/reference `ParseDockerRef`): `busybox` → `docker.io/library/busybox:latest`.

use std::fmt;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("reference is empty")]
    Empty,
    #[error("invalid repository name {reference:?}: cannot specify 64-byte hexadecimal strings")]
    HexIdentifier { reference: String },
    #[error("invalid reference {reference:?}: repository name {repository:?} must be lowercase")]
    Uppercase {
        reference: String,
        repository: String,
    },
    #[error("invalid reference format {reference:?}")]
    InvalidFormat { reference: String },
    #[error("invalid reference {reference:?}: repository name must not be longer than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong { reference: String },
    #[error("invalid tag {tag:?} in reference {reference:?}")]
    InvalidTag { reference: String, tag: String },
    #[error("invalid digest {digest:?} in reference {reference:?}")]
    InvalidDigest { reference: String, digest: String },
}

/// A fully qualified image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// e.g. `docker.io`, `ghcr.io`, `localhost:5000`.
    pub registry: String,
    /// e.g. `library/busybox`.
    pub repository: String,
    /// `latest` when neither tag nor digest was given; `None` when a digest is present.
    pub tag: Option<String>,
    /// e.g. `sha256:<hex>`.
    pub digest: Option<String>,
}

/// Parses and normalises like containerd: default registry and `library/` added, `latest`
/// added when there is no tag or digest, and the tag dropped when a digest is present.
pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
    if s.is_empty() {
        return Err(ReferenceError::Empty);
    }
    if is_hex_identifier(s) {
        return Err(ReferenceError::HexIdentifier {
            reference: s.into(),
        });
    }
    let (registry, remainder) = split_domain(s);
    let (name_and_tag, digest) = match remainder.split_once('@') {
        Some((left, digest)) => (left, Some(digest)),
        None => (remainder.as_str(), None),
    };
    let (repository, tag) = match name_and_tag.split_once(':') {
        Some((repo, tag)) => (repo, Some(tag)),
        None => (name_and_tag, None),
    };
    if repository.to_lowercase() != repository {
        return Err(ReferenceError::Uppercase {
            reference: s.into(),
            repository: repository.into(),
        });
    }
    let invalid = || ReferenceError::InvalidFormat {
        reference: s.into(),
    };
    if !is_valid_domain(&registry) || !is_valid_path(repository) {
        return Err(invalid());
    }
    if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong {
            reference: s.into(),
        });
    }
    if let Some(tag) = tag.filter(|t| !is_valid_tag(t)) {
        return Err(ReferenceError::InvalidTag {
            reference: s.into(),
            tag: tag.into(),
        });
    }
    if let Some(digest) = digest.filter(|d| !is_valid_digest(d)) {
        return Err(ReferenceError::InvalidDigest {
            reference: s.into(),
            digest: digest.into(),
        });
    }
    let tag = match (tag, digest) {
        (_, Some(_)) => None,
        (Some(tag), None) => Some(tag.to_string()),
        (None, None) => Some("latest".to_string()),
    };
    Ok(Reference {
        registry,
        repository: repository.into(),
        tag,
        digest: digest.map(str::to_string),
    })
}

impl Reference {
    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The full form, e.g. `docker.io/library/busybox:latest`.
    pub fn normalized(&self) -> String {
        format!("{}{}", self.name(), self.suffix())
    }

    /// The short form docker prints, e.g. `busybox:latest` or `ghcr.io/org/app:1.2`.
    pub fn familiar(&self) -> String {
        let name = if self.registry == DEFAULT_DOMAIN {
            match self.repository.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        };
        format!("{name}{}", self.suffix())
    }

    fn suffix(&self) -> String {
        let mut out = String::new();
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// distribution/reference `splitDockerDomain`: the first path element is a registry only
/// when it looks like a host (has `.` or `:`, or is `localhost`) and is not upper case.
fn split_domain(s: &str) -> (String, String) {
    let (domain, remainder) = match s.split_once('/') {
        Some((first, rest))
            if (first.contains(['.', ':']) || first == "localhost")
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), s.to_string()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let remainder = if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        format!("{OFFICIAL_REPO_PREFIX}{remainder}")
    } else {
        remainder
    };
    (domain, remainder)
}

fn is_valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rfind(':') {
        Some(i) if !domain[i..].contains(']') => (&domain[..i], Some(&domain[i + 1..])),
        _ => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty() && host.split('.').all(is_valid_domain_component)
}

fn is_valid_domain_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn is_valid_path(path: &str) -> bool {
    path.split('/').all(is_valid_path_component)
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_valid_path_component(c: &str) -> bool {
    let is_alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && is_alnum(bytes[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        let sep_start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += if bytes.get(i + 1) == Some(&b'_') {
                    2
                } else {
                    1
                }
            }
            b'-' => {
                while i < bytes.len() && bytes[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

/// `[\w][\w.-]{0,127}`
fn is_valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// Only algorithms go-digest can verify, each with its exact lowercase hex length.
fn is_valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == len && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalisation_table() {
        let cases = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/library/busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "ghcr.io/org/app:1.2",
                "ghcr.io/org/app:1.2",
                "ghcr.io/org/app:1.2",
            ),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            ("localhost/x:v1", "localhost/x:v1", "localhost/x:v1"),
            (
                "busybox:Tag_1.0-rc",
                "docker.io/library/busybox:Tag_1.0-rc",
                "busybox:Tag_1.0-rc",
            ),
            (
                "[::1]:5000/a/b",
                "[::1]:5000/a/b:latest",
                "[::1]:5000/a/b:latest",
            ),
        ];
        for (input, normalized, familiar) in cases {
            let r = parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.normalized(), normalized, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
    }

    #[test]
    fn digest_references_drop_the_tag() {
        let r = parse(&format!("repo@sha256:{HEX}")).unwrap();
        assert_eq!(r.registry, "docker.io");
        assert_eq!(r.repository, "library/repo");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(format!("sha256:{HEX}").as_str()));
        assert_eq!(
            r.normalized(),
            format!("docker.io/library/repo@sha256:{HEX}")
        );
        assert_eq!(r.familiar(), format!("repo@sha256:{HEX}"));
        let both = parse(&format!("ghcr.io/a/b:v1@sha256:{HEX}")).unwrap();
        assert_eq!(both.normalized(), format!("ghcr.io/a/b@sha256:{HEX}"));
    }

    #[test]
    fn parsed_fields() {
        let r = parse("ghcr.io/org/app:1.2").unwrap();
        assert_eq!(
            r,
            Reference {
                registry: "ghcr.io".into(),
                repository: "org/app".into(),
                tag: Some("1.2".into()),
                digest: None
            }
        );
        assert_eq!(r.name(), "ghcr.io/org/app");
    }

    #[test]
    fn uppercase_repository_refused() {
        assert!(matches!(
            parse("Busybox"),
            Err(ReferenceError::Uppercase { .. })
        ));
        assert!(matches!(
            parse("docker.io/Library/busybox"),
            Err(ReferenceError::Uppercase { .. })
        ));
        // An upper-case first element is taken as a registry host, as in distribution/reference.
        assert_eq!(parse("FOO/bar").unwrap().normalized(), "FOO/bar:latest");
    }

    #[test]
    fn malformed_references_refused() {
        assert_eq!(parse(""), Err(ReferenceError::Empty));
        assert!(matches!(
            parse(HEX),
            Err(ReferenceError::HexIdentifier { .. })
        ));
        for bad in [
            "a__-b", "a..b", "-a", "a/", "/a", "a//b", "a:", "ex ample", "a___b",
        ] {
            assert!(parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(matches!(
            parse("a:-x"),
            Err(ReferenceError::InvalidTag { .. })
        ));
        assert!(matches!(
            parse("a@sha256:abc"),
            Err(ReferenceError::InvalidDigest { .. })
        ));
        assert!(matches!(
            parse(&format!("a@md5:{HEX}")),
            Err(ReferenceError::InvalidDigest { .. })
        ));
        let long = format!("ghcr.io/{}", "a".repeat(250));
        assert!(matches!(
            parse(&long),
            Err(ReferenceError::NameTooLong { .. })
        ));
    }

    #[test]
    fn separators_follow_the_grammar() {
        for good in ["a.b", "a_b", "a__b", "a-b", "a---b", "a-b.c_d__e"] {
            assert!(parse(good).is_ok(), "{good} should parse");
        }
    }
}
