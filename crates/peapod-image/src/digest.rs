//! sha256 content digests: parsing "sha256:<hex>" and hashing streams on the fly.

use std::fmt;
use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::ImageError;

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Digest {
    hex: String,
}

impl Digest {
    pub(crate) fn parse(s: &str) -> Result<Digest, ImageError> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            return Err(ImageError::InvalidDigest { digest: s.into() });
        };
        if algorithm != "sha256" {
            return Err(ImageError::UnsupportedDigest { digest: s.into() });
        }
        Digest::from_hex(hex).ok_or_else(|| ImageError::InvalidDigest { digest: s.into() })
    }

    /// Accepts only the canonical encoding so that one blob has one file name.
    pub(crate) fn from_hex(hex: &str) -> Option<Digest> {
        let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| Digest { hex: hex.into() })
    }

    #[cfg(test)]
    pub(crate) fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    pub(crate) fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Passes bytes through while hashing and counting them.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream so the digest covers all of it.
    pub(crate) fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let hex = hex::encode(self.hasher.finalize());
        Ok((Digest { hex }, self.count))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_canonical_sha256_only() {
        let d = Digest::parse(&format!("sha256:{EMPTY}")).unwrap();
        assert_eq!(d.hex(), EMPTY);
        assert_eq!(d.to_string(), format!("sha256:{EMPTY}"));
        assert!(matches!(
            Digest::parse(&format!("sha512:{EMPTY}")),
            Err(ImageError::UnsupportedDigest { .. })
        ));
        assert!(Digest::parse(&format!("sha256:{}", EMPTY.to_uppercase())).is_err());
        assert!(Digest::parse("sha256:abc").is_err());
        assert!(Digest::parse(EMPTY).is_err());
    }

    #[test]
    fn hashing_reader_covers_unread_tail() {
        let mut r = HashingReader::new(&b"hello world"[..]);
        let mut first = [0u8; 5];
        r.read_exact(&mut first).unwrap();
        let (digest, size) = r.finish().unwrap();
        assert_eq!(size, 11);
        assert_eq!(digest, Digest::of(b"hello world"));
        assert_eq!(Digest::of(b"").hex(), EMPTY);
    }
}
