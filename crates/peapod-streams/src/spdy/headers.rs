//! SPDY/3 name/value header blocks: a 32-bit pair count, then 32-bit length-prefixed names
//! (lowercase) and values (several values of one name joined by NUL), compressed with zlib
//! primed with the SPDY/3 dictionary. Each direction of a session has ONE zlib stream for all its
//! header blocks, sync-flushed after each block, so a [`HeaderCompressor`] and a
//! [`HeaderDecompressor`] live as long as the session and must see every block in order.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::SpdyError;

/// The most a header block may decompress to. kubectl's blocks are a few dozen bytes; the bound
/// keeps a small compressed frame from inflating without limit, and keeps any accepted block
/// re-encodable within [`super::frame::MAX_CONTROL_FRAME_LENGTH`].
pub const MAX_HEADER_BLOCK_LENGTH: usize = 256 << 10;

/// Adler-32 of [`DICTIONARY`]: the DICTID every SPDY/3 zlib header announces.
pub const DICTIONARY_ADLER32: u32 = 0xe3c6_a7c2;

/// The zlib dictionary of SPDY/3 (section 2.6.10.1 of the draft), as moby/spdystream's
/// `spdy/dictionary.go` and Chromium's framer have it.
pub const DICTIONARY: &[u8; 1423] = b"\
    \x00\x00\x00\x07options\x00\x00\x00\x04head\x00\x00\x00\x04post\x00\x00\x00\x03put\
    \x00\x00\x00\x06delete\x00\x00\x00\x05trace\x00\x00\x00\x06accept\
    \x00\x00\x00\x0eaccept-charset\x00\x00\x00\x0faccept-encoding\
    \x00\x00\x00\x0faccept-language\x00\x00\x00\x0daccept-ranges\x00\x00\x00\x03age\
    \x00\x00\x00\x05allow\x00\x00\x00\x0dauthorization\x00\x00\x00\x0dcache-control\
    \x00\x00\x00\x0aconnection\x00\x00\x00\x0ccontent-base\
    \x00\x00\x00\x10content-encoding\x00\x00\x00\x10content-language\
    \x00\x00\x00\x0econtent-length\x00\x00\x00\x10content-location\
    \x00\x00\x00\x0bcontent-md5\x00\x00\x00\x0dcontent-range\x00\x00\x00\x0ccontent-type\
    \x00\x00\x00\x04date\x00\x00\x00\x04etag\x00\x00\x00\x06expect\
    \x00\x00\x00\x07expires\x00\x00\x00\x04from\x00\x00\x00\x04host\
    \x00\x00\x00\x08if-match\x00\x00\x00\x11if-modified-since\
    \x00\x00\x00\x0dif-none-match\x00\x00\x00\x08if-range\
    \x00\x00\x00\x13if-unmodified-since\x00\x00\x00\x0dlast-modified\
    \x00\x00\x00\x08location\x00\x00\x00\x0cmax-forwards\x00\x00\x00\x06pragma\
    \x00\x00\x00\x12proxy-authenticate\x00\x00\x00\x13proxy-authorization\
    \x00\x00\x00\x05range\x00\x00\x00\x07referer\x00\x00\x00\x0bretry-after\
    \x00\x00\x00\x06server\x00\x00\x00\x02te\x00\x00\x00\x07trailer\
    \x00\x00\x00\x11transfer-encoding\x00\x00\x00\x07upgrade\x00\x00\x00\x0auser-agent\
    \x00\x00\x00\x04vary\x00\x00\x00\x03via\x00\x00\x00\x07warning\
    \x00\x00\x00\x10www-authenticate\x00\x00\x00\x06method\x00\x00\x00\x03get\
    \x00\x00\x00\x06status\x00\x00\x00\x06200 OK\x00\x00\x00\x07version\
    \x00\x00\x00\x08HTTP/1.1\x00\x00\x00\x03url\x00\x00\x00\x06public\
    \x00\x00\x00\x0aset-cookie\x00\x00\x00\x0akeep-alive\x00\x00\x00\x06origin1001012012\
    02205206300302303304305306307402405406407408409410411412413414415416417502504505203 \
    Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 U\
    nauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503\
    \x20Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon\
    , Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,a\
    pplication/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age\
    =gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.\
";

/// Header names and values in the order first seen; names are kept lowercase, as on the wire,
/// and looked up case-insensitively (Go's `http.Header` canonicalizes the same names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Vec<String>)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values(name)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    /// Every value of `name`.
    pub fn get_all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.values(name)
            .into_iter()
            .flat_map(|values| values.iter().map(String::as_str))
    }

    /// Sets `name` to the single `value`.
    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        match self.position(name) {
            Some(index) => self.entries[index].1 = vec![value.into()],
            None => self
                .entries
                .push((name.to_ascii_lowercase(), vec![value.into()])),
        }
    }

    /// Adds `value` to those of `name`.
    pub fn append(&mut self, name: &str, value: impl Into<String>) {
        match self.position(name) {
            Some(index) => self.entries[index].1.push(value.into()),
            None => self
                .entries
                .push((name.to_ascii_lowercase(), vec![value.into()])),
        }
    }

    /// Every (name, value) pair, names lowercase.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().flat_map(|(name, values)| {
            values
                .iter()
                .map(move |value| (name.as_str(), value.as_str()))
        })
    }

    /// How many distinct names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(existing, _)| existing.eq_ignore_ascii_case(name))
    }

    fn values(&self, name: &str) -> Option<&Vec<String>> {
        self.position(name).map(|index| &self.entries[index].1)
    }
}

impl<N: AsRef<str>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Headers {
        let mut headers = Headers::new();
        for (name, value) in pairs {
            headers.append(name.as_ref(), value);
        }
        headers
    }
}

/// Appends the uncompressed block of `headers` to `out`.
pub fn encode_block(headers: &Headers, out: &mut Vec<u8>) {
    put_length(out, headers.entries.len());
    for (name, values) in &headers.entries {
        put_length(out, name.len());
        out.extend_from_slice(name.as_bytes());
        let value_length = values.iter().map(String::len).sum::<usize>() + values.len() - 1;
        put_length(out, value_length);
        for (index, value) in values.iter().enumerate() {
            if index > 0 {
                out.push(0);
            }
            out.extend_from_slice(value.as_bytes());
        }
    }
}

/// Parses an uncompressed block. Names are lowercased and NUL-joined values split, as Go's
/// framer does; a name repeated across pairs (which the spec forbids) adds to its values.
pub fn parse_block(mut block: &[u8]) -> Result<Headers, SpdyError> {
    let count = take_length(&mut block)?;
    if count > block.len() / 8 {
        return Err(SpdyError::HeaderBlock(
            "more pairs announced than the block holds",
        ));
    }
    let mut headers = Headers::new();
    for _ in 0..count {
        let name = take_string(&mut block)?;
        let value = take_string(&mut block)?;
        for part in value.split('\0') {
            headers.append(name, part);
        }
    }
    if !block.is_empty() {
        return Err(SpdyError::HeaderBlock("bytes after the last pair"));
    }
    Ok(headers)
}

fn put_length(out: &mut Vec<u8>, length: usize) {
    let length = u32::try_from(length).expect("header blocks are far below 4 GiB");
    out.extend_from_slice(&length.to_be_bytes());
}

fn take_length(block: &mut &[u8]) -> Result<usize, SpdyError> {
    let Some((length, rest)) = block.split_first_chunk::<4>() else {
        return Err(SpdyError::HeaderBlock("truncated length"));
    };
    *block = rest;
    Ok(u32::from_be_bytes(*length) as usize)
}

fn take_string<'a>(block: &mut &'a [u8]) -> Result<&'a str, SpdyError> {
    let length = take_length(block)?;
    if length > block.len() {
        return Err(SpdyError::HeaderBlock("string runs past the block"));
    }
    let (bytes, rest) = block.split_at(length);
    *block = rest;
    std::str::from_utf8(bytes).map_err(|_| SpdyError::HeaderBlock("name or value is not UTF-8"))
}

/// The sending side's zlib stream.
pub struct HeaderCompressor {
    zlib: Compress,
    block: Vec<u8>,
}

impl std::fmt::Debug for HeaderCompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderCompressor").finish_non_exhaustive()
    }
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        HeaderCompressor::new()
    }
}

impl HeaderCompressor {
    /// Go's framer compresses at `zlib.BestCompression`; so do we (blocks are tiny).
    pub fn new() -> HeaderCompressor {
        let mut zlib = Compress::new(Compression::best(), true);
        zlib.set_dictionary(DICTIONARY)
            .expect("a fresh deflate stream takes a dictionary");
        HeaderCompressor {
            zlib,
            block: Vec::new(),
        }
    }

    /// Appends the compressed block of `headers` to `out`, sync-flushed so the peer can decode
    /// it without the blocks that follow.
    pub fn compress(&mut self, headers: &Headers, out: &mut Vec<u8>) -> Result<(), SpdyError> {
        self.block.clear();
        encode_block(headers, &mut self.block);
        let mut input = &self.block[..];
        loop {
            out.reserve(input.len() + 64);
            let consumed_before = self.zlib.total_in();
            self.zlib
                .compress_vec(input, out, FlushCompress::Sync)
                .map_err(|e| SpdyError::Compression(e.to_string()))?;
            input = &input[(self.zlib.total_in() - consumed_before) as usize..];
            // A sync flush is complete once deflate stops with output space to spare.
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }
}

/// The receiving side's zlib stream.
pub struct HeaderDecompressor {
    zlib: Decompress,
    block: Vec<u8>,
}

impl std::fmt::Debug for HeaderDecompressor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderDecompressor").finish_non_exhaustive()
    }
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        HeaderDecompressor::new()
    }
}

impl HeaderDecompressor {
    pub fn new() -> HeaderDecompressor {
        HeaderDecompressor {
            zlib: Decompress::new(true),
            block: Vec::new(),
        }
    }

    /// Decompresses one frame's block (all of `compressed`) and parses it.
    pub fn decompress(&mut self, compressed: &[u8]) -> Result<Headers, SpdyError> {
        self.block.clear();
        let mut input = compressed;
        loop {
            self.block
                .reserve((input.len() * 4).clamp(256, MAX_HEADER_BLOCK_LENGTH + 1));
            let (consumed, produced) = self.inflate(input)?;
            input = &input[consumed..];
            if self.block.len() > MAX_HEADER_BLOCK_LENGTH {
                return Err(SpdyError::HeaderBlockTooLarge {
                    max: MAX_HEADER_BLOCK_LENGTH,
                });
            }
            if input.is_empty() && self.block.len() < self.block.capacity() {
                break;
            }
            if consumed == 0 && produced == 0 && self.block.len() < self.block.capacity() {
                return Err(SpdyError::Compression("inflate made no progress".into()));
            }
        }
        parse_block(&self.block)
    }

    /// One inflate step into the spare room of `self.block`: (bytes consumed, bytes produced).
    /// The first block's zlib header asks for the dictionary, which is checked and supplied.
    fn inflate(&mut self, input: &[u8]) -> Result<(usize, usize), SpdyError> {
        let (in_before, out_before) = (self.zlib.total_in(), self.block.len());
        let result = self
            .zlib
            .decompress_vec(input, &mut self.block, FlushDecompress::Sync);
        let consumed = (self.zlib.total_in() - in_before) as usize;
        let produced = self.block.len() - out_before;
        match result {
            Ok(Status::Ok | Status::BufError) => Ok((consumed, produced)),
            Ok(Status::StreamEnd) => Err(SpdyError::Compression(
                "the header zlib stream ended mid-session".into(),
            )),
            Err(e) => match e.needs_dictionary() {
                Some(DICTIONARY_ADLER32) => {
                    self.zlib
                        .set_dictionary(DICTIONARY)
                        .map_err(|e| SpdyError::Compression(e.to_string()))?;
                    Ok((consumed, produced))
                }
                Some(other) => Err(SpdyError::Compression(format!(
                    "unknown dictionary {other:#010x}"
                ))),
                None => Err(SpdyError::Compression(e.to_string())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kube_headers(stream_type: &str) -> Headers {
        [
            ("streamType", stream_type),
            ("port", "8080"),
            ("requestID", "0"),
        ]
        .into_iter()
        .collect()
    }

    /// The dictionary's DICTID as every SPDY/3 zlib header carries it (`38 ea e3 c6 a7 c2` in
    /// Chromium's fixtures), and its length as moby/spdystream's `spdy/dictionary.go` has it.
    #[test]
    fn dictionary_matches_the_spec_checksum() {
        assert_eq!(DICTIONARY.len(), 1423);
        let mut check = Compress::new(Compression::default(), true);
        assert_eq!(
            check.set_dictionary(DICTIONARY).unwrap(),
            DICTIONARY_ADLER32
        );
        assert_eq!(adler32(DICTIONARY), 0xe3c6_a7c2);
    }

    fn adler32(bytes: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for byte in bytes {
            a = (a + u32::from(*byte)) % 65521;
            b = (b + a) % 65521;
        }
        b << 16 | a
    }

    #[test]
    fn the_first_block_announces_the_dictionary() {
        let mut compressor = HeaderCompressor::new();
        let mut out = Vec::new();
        compressor
            .compress(&kube_headers("data"), &mut out)
            .unwrap();
        // CMF/FLG with FDICT (Go writes 78 f9 at BestCompression), then the DICTID.
        assert_eq!(&out[..6], &[0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
        // A sync flush ends every block.
        assert_eq!(&out[out.len() - 4..], &[0x00, 0x00, 0xff, 0xff]);
    }

    #[test]
    fn blocks_use_lowercase_names_and_nul_joined_values() {
        let mut headers = kube_headers("error");
        headers.append("Port", "9090");
        let mut block = Vec::new();
        encode_block(&headers, &mut block);
        let mut expected = vec![0, 0, 0, 3];
        for (name, value) in [
            ("streamtype", &b"error"[..]),
            ("port", b"8080\x009090"),
            ("requestid", b"0"),
        ] {
            expected.extend_from_slice(&(name.len() as u32).to_be_bytes());
            expected.extend_from_slice(name.as_bytes());
            expected.extend_from_slice(&(value.len() as u32).to_be_bytes());
            expected.extend_from_slice(value);
        }
        assert_eq!(block, expected);
        let parsed = parse_block(&block).unwrap();
        assert_eq!(parsed, headers);
        assert_eq!(parsed.get("STREAMTYPE"), Some("error"));
        assert_eq!(parsed.get_all("port").collect::<Vec<_>>(), ["8080", "9090"]);
    }

    #[test]
    fn one_context_spans_many_blocks() {
        let mut compressor = HeaderCompressor::new();
        let mut decompressor = HeaderDecompressor::new();
        let mut sizes = Vec::new();
        let mut second = Vec::new();
        for (index, stream_type) in ["error", "data", "error", "data"].into_iter().enumerate() {
            let mut block = Vec::new();
            compressor
                .compress(&kube_headers(stream_type), &mut block)
                .unwrap();
            sizes.push(block.len());
            assert_eq!(
                decompressor.decompress(&block).unwrap(),
                kube_headers(stream_type)
            );
            if index == 1 {
                second = block;
            }
        }
        // Later blocks refer back to earlier ones, so they shrink...
        assert!(sizes[2] < sizes[0], "{sizes:?}");
        // ...and cannot be read without them.
        assert!(HeaderDecompressor::new().decompress(&second).is_err());
    }

    /// Chromium's compressed SYN_REPLY block (bar: foo, foo: bar), from another zlib.
    #[test]
    fn decompresses_a_block_from_another_implementation() {
        const BLOCK: &[u8] = &[
            0x38, 0xea, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xe5, 0x0e, 0x50, 0xc2, 0x4b, 0x4a, 0x04,
            0xe5, 0x0b, 0x66, 0x80, 0x00, 0x4a, 0xcb, 0xcf, 0x07, 0x08, 0x20, 0x10, 0x95, 0x96,
            0x9f, 0x0f, 0xa2, 0x00, 0x02, 0x28, 0x29, 0xb1, 0x08, 0x20, 0x80, 0x00, 0x00, 0x00,
            0x00, 0xff, 0xff,
        ];
        let headers = HeaderDecompressor::new().decompress(BLOCK).unwrap();
        assert_eq!(
            headers,
            [("bar", "foo"), ("foo", "bar")].into_iter().collect()
        );
    }

    #[test]
    fn a_block_that_inflates_too_far_is_refused() {
        let mut headers = Headers::new();
        headers.insert("big", "x".repeat(MAX_HEADER_BLOCK_LENGTH));
        let mut block = Vec::new();
        HeaderCompressor::new()
            .compress(&headers, &mut block)
            .unwrap();
        assert!(block.len() < 4096, "repetitive data compresses");
        assert!(matches!(
            HeaderDecompressor::new().decompress(&block),
            Err(SpdyError::HeaderBlockTooLarge { .. })
        ));
    }

    #[test]
    fn malformed_blocks_are_typed_errors() {
        let cases: &[&[u8]] = &[
            &[0, 0],
            &[0, 0, 0, 1, 0, 0, 0, 9, b'a'],
            &[0xff, 0xff, 0xff, 0xff],
            &[0, 0, 0, 0, 1],
            &[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0, 0, 0, 0],
        ];
        for case in cases {
            assert!(
                matches!(parse_block(case), Err(SpdyError::HeaderBlock(_))),
                "{case:?}"
            );
        }
    }
}
