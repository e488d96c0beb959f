//! Recognises layer and archive compression by magic bytes and decompresses transparently.

use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

/// How a tar stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Why a stream cannot be decompressed.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    #[error("unsupported compression {format}")]
    Unsupported { format: &'static str },
    #[error("reading compressed stream: {0}")]
    Io(#[from] io::Error),
}

const MAGIC_LEN: usize = 6;

impl Compression {
    /// Classifies the first bytes of a stream; formats we cannot read are errors.
    pub(crate) fn detect(head: &[u8]) -> Result<Compression, CompressionError> {
        match head {
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
            [b'B', b'Z', b'h', ..] => Err(CompressionError::Unsupported { format: "bzip2" }),
            [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => {
                Err(CompressionError::Unsupported { format: "xz" })
            }
            _ => Ok(Compression::None),
        }
    }

    /// The OCI layer media type for a tar with this compression.
    pub(crate) fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }

    /// The docker schema2 layer media type (docker has none for zstd; OCI's is used).
    pub(crate) fn docker_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.docker.image.rootfs.diff.tar",
            Compression::Gzip => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            Compression::Zstd => Compression::Zstd.oci_layer_media_type(),
        }
    }
}

/// Peeks at the magic bytes of `reader` and returns its compression.
pub(crate) fn sniff(reader: &mut impl Read) -> Result<(Compression, Vec<u8>), CompressionError> {
    let mut head = vec![0u8; MAGIC_LEN];
    let mut filled = 0;
    while filled < MAGIC_LEN {
        match reader.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    head.truncate(filled);
    Ok((Compression::detect(&head)?, head))
}

/// Wraps `reader` in the decompressor its magic bytes call for.
pub(crate) fn decompress<'a>(
    mut reader: impl Read + 'a,
) -> Result<Box<dyn Read + 'a>, CompressionError> {
    let (compression, head) = sniff(&mut reader)?;
    let whole = io::Cursor::new(head).chain(reader);
    Ok(match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => Box::new(MultiGzDecoder::new(whole)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(whole)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn roundtrip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        decompress(data).unwrap().read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn plain_gzip_and_zstd_are_read_back() {
        let payload = b"some tar bytes, not really".repeat(100);
        assert_eq!(roundtrip(&payload), payload);

        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&payload).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(Compression::detect(&gz).unwrap(), Compression::Gzip);
        assert_eq!(roundtrip(&gz), payload);

        let zst = zstd::encode_all(&payload[..], 3).unwrap();
        assert_eq!(Compression::detect(&zst).unwrap(), Compression::Zstd);
        assert_eq!(roundtrip(&zst), payload);
    }

    #[test]
    fn short_and_unsupported_streams() {
        assert_eq!(roundtrip(b"ab"), b"ab");
        assert_eq!(roundtrip(b""), b"");
        assert!(matches!(
            decompress(&b"BZh91AY&SY"[..]),
            Err(CompressionError::Unsupported { format: "bzip2" })
        ));
        assert!(matches!(
            decompress(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1][..]),
            Err(CompressionError::Unsupported { format: "xz" })
        ));
    }
}
