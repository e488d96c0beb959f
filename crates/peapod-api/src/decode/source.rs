//! How a YAML node is written in its source. serde_yaml_ng resolves scalars by YAML 1.2 and
//! does not say whether one was quoted; its errors carry the line and column where the node
//! starts (its anchor or tag included), from which the source tells.

/// How a scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Unquoted and untagged: resolved by YAML 1.1 rules.
    Plain,
    /// Quoted, a block scalar (`|`, `>`), or tagged: taken as serde_yaml_ng took it.
    Other,
}

/// A YAML stream and where its lines start, counted as libyaml counts them.
pub struct Source<'a> {
    text: &'a [u8],
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(text: &'a [u8]) -> Self {
        let mut line_starts = vec![0];
        let mut at = 0;
        while at < text.len() {
            let width = match &text[at..] {
                [b'\r', b'\n', ..] | [0xC2, 0x85, ..] => 2,
                [b'\r' | b'\n', ..] => 1,
                [0xE2, 0x80, 0xA8 | 0xA9, ..] => 3,
                _ => {
                    at += 1;
                    continue;
                }
            };
            at += width;
            line_starts.push(at);
        }
        Source { text, line_starts }
    }

    /// The byte offset of a 1-based line and character column.
    pub fn offset(&self, line: usize, column: usize) -> usize {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        let skip = column.saturating_sub(1);
        // Columns count characters: skip that many UTF-8 leading bytes.
        rest.iter()
            .enumerate()
            .filter(|(_, byte)| **byte & 0xC0 != 0x80)
            .nth(skip)
            .map_or(self.text.len(), |(index, _)| start + index)
    }

    /// The style of the node starting at `offset` (past its anchor), and where its content is.
    pub fn node_at(&self, mut offset: usize) -> (Style, usize) {
        loop {
            match self.text.get(offset) {
                Some(b'&') => offset = self.skip_separation(self.skip_token(offset)),
                Some(b'!' | b'"' | b'\'' | b'|' | b'>') => return (Style::Other, offset),
                _ => return (Style::Plain, offset),
            }
        }
    }

    /// Whether the node at `offset` has go-yaml's merge tag (`!!merge`, or in full).
    pub fn has_merge_tag(&self, offset: usize) -> bool {
        let rest = &self.text[offset.min(self.text.len())..];
        [&b"!!merge"[..], b"!<tag:yaml.org,2002:merge>"]
            .iter()
            .any(|tag| rest.starts_with(tag) && rest.get(tag.len()).is_none_or(|b| is_blank(*b)))
    }

    /// The plain number token at `offset`.
    pub fn number_at(&self, offset: usize) -> &'a str {
        let text = &self.text[offset.min(self.text.len())..];
        let end = text
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || b"+-._".contains(b)))
            .unwrap_or(text.len());
        std::str::from_utf8(&text[..end]).unwrap_or_default()
    }

    fn skip_token(&self, offset: usize) -> usize {
        let rest = &self.text[offset..];
        offset + rest.iter().position(|b| is_blank(*b)).unwrap_or(rest.len())
    }

    /// Past spaces, line breaks and comments.
    fn skip_separation(&self, mut offset: usize) -> usize {
        while let Some(&byte) = self.text.get(offset) {
            if byte == b'#' {
                offset = self.skip_line(offset);
            } else if is_blank(byte) {
                offset += 1;
            } else {
                break;
            }
        }
        offset
    }

    fn skip_line(&self, offset: usize) -> usize {
        let rest = &self.text[offset..];
        offset
            + rest
                .iter()
                .position(|b| matches!(b, b'\n' | b'\r'))
                .unwrap_or(rest.len())
    }
}

fn is_blank(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// The 1-based line and column of " at line L column C", which serde_yaml_ng appends to an
/// error that has a position; an error at the very start of the stream has none appended.
pub fn error_location(message: &str) -> Option<(usize, usize)> {
    let (_, location) = message.rsplit_once(" at line ")?;
    let (line, column) = location.split_once(" column ")?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_characters_and_every_line_break() {
        let source = Source::new("a: é1\r\nb: x\rc: \u{2028}d".as_bytes());
        assert_eq!(source.offset(1, 5), 5);
        assert_eq!(source.offset(2, 4), 11);
        assert_eq!(source.offset(3, 1), 13);
        assert_eq!(source.offset(4, 1), 19);
        assert_eq!(source.offset(9, 1), source.text.len());
    }

    #[test]
    fn styles_look_past_anchors_and_comments() {
        let text = b"a: &x 0400\nb: &y # c\n  \"0400\"\nc: !!str 1\nd: |\n  1\ne: 1\n";
        let source = Source::new(text);
        assert_eq!(source.node_at(3), (Style::Plain, 6));
        assert_eq!(source.node_at(14).0, Style::Other);
        assert_eq!(source.node_at(33).0, Style::Other);
        assert_eq!(source.node_at(44).0, Style::Other);
        assert_eq!(source.node_at(53), (Style::Plain, 53));
        assert_eq!(source.number_at(6), "0400");
    }

    #[test]
    fn error_location_reads_the_suffix() {
        assert_eq!(error_location("x: m at line 12 column 3"), Some((12, 3)));
        assert_eq!(error_location("m"), None);
    }
}
