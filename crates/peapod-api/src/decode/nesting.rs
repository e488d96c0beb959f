//! A linear pre-scan of YAML input for flow collections (`[`, `{`) nested deeper than the
//! decoder accepts. libyaml's scanner walks its whole stack of flow levels for every token, so
//! a deep flow nest costs the square of its size (100 000 `[` took 28 s) before the decoder's
//! recursion limit answers; the scan gives the same answer at once.
//!
//! The scan only counts brackets it can tell open a flow collection: inside a flow collection
//! every bracket outside quotes does, in block context only one that starts a node. Block
//! scalars and comments are skipped. What it cannot tell (a continuation line of a multi-line
//! plain scalar starting with `[`) could only make a document with well over a hundred
//! unclosed brackets in its text fail early; anything it misses still meets the decoder's own
//! limit, only slower.

/// serde_yaml_ng's recursion limit, which any deeper flow nest exceeds.
pub const MAX_DEPTH: usize = 128;

/// Where the first bracket beyond [`MAX_DEPTH`] is: the 0-based document, 1-based line and
/// column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub document: usize,
    pub line: usize,
    pub column: usize,
}

/// Fails at the first flow collection nested deeper than [`MAX_DEPTH`].
pub fn check(input: &[u8]) -> Result<(), TooDeep> {
    Scanner::new(input).run()
}

struct Scanner<'a> {
    input: &'a [u8],
    pos: usize,
    line: usize,
    /// 1-based character column of `pos`.
    column: usize,
    document: usize,
    /// Whether the current document has content yet, so that its `---` opens no new one.
    started: bool,
    depth: usize,
    /// Only indentation so far on this line.
    at_line_start: bool,
    /// The next token may start a node (after `- `, `: `, `? `, `[`, `,` or at a line start).
    expect_node: bool,
    /// The next plain token starts a block entry, whose column bounds a block scalar.
    entry_start: bool,
    /// 0-based column of the current block entry; a block scalar's lines are indented more.
    entry_indent: usize,
}

impl<'a> Scanner<'a> {
    fn new(input: &'a [u8]) -> Self {
        Scanner {
            input,
            pos: 0,
            line: 1,
            column: 1,
            document: 0,
            started: false,
            depth: 0,
            at_line_start: true,
            expect_node: true,
            entry_start: true,
            entry_indent: 0,
        }
    }

    fn run(mut self) -> Result<(), TooDeep> {
        while let Some(byte) = self.peek(0) {
            self.step(byte)?;
        }
        Ok(())
    }

    fn step(&mut self, byte: u8) -> Result<(), TooDeep> {
        match byte {
            b'\n' => self.newline(),
            b' ' | b'\t' | b'\r' => self.advance(),
            b'#' if self.after_space() => self.skip_line(),
            b'-' if self.at_document_marker() => self.document_start(),
            b'%' if self.at_line_start && self.depth == 0 && !self.started => self.skip_line(),
            b'[' | b'{' if self.depth > 0 || self.expect_node => return self.open(),
            b']' | b'}' if self.depth > 0 => self.close(),
            b'"' | b'\'' if self.expect_node => self.skip_quoted(byte),
            b'|' | b'>' if self.depth == 0 && self.expect_node => self.skip_block_scalar(),
            b'&' | b'!' if self.expect_node => self.skip_token(),
            b'-' | b'?' if self.depth == 0 && self.expect_node && self.space_follows(1) => {
                self.indicator();
                self.entry_start = true;
            }
            b':' if self.depth > 0 || self.space_follows(1) => self.indicator(),
            b',' if self.depth > 0 => self.indicator(),
            _ => self.plain(),
        }
        Ok(())
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.input.get(self.pos + ahead).copied()
    }

    fn advance(&mut self) {
        let byte = self.input[self.pos];
        self.pos += 1;
        // UTF-8 continuation bytes belong to the character before.
        if byte & 0xC0 != 0x80 {
            self.column += 1;
        }
        if byte != b' ' && byte != b'\t' && byte != b'\r' {
            self.at_line_start = false;
        }
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
        self.column = 1;
        self.at_line_start = true;
        if self.depth == 0 {
            self.expect_node = true;
            self.entry_start = true;
        }
    }

    fn after_space(&self) -> bool {
        self.pos == 0 || matches!(self.input[self.pos - 1], b' ' | b'\t' | b'\n' | b'\r')
    }

    fn space_follows(&self, ahead: usize) -> bool {
        self.peek(ahead)
            .is_none_or(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    }

    fn at_document_marker(&self) -> bool {
        self.column == 1 && self.input[self.pos..].starts_with(b"---") && self.space_follows(3)
    }

    fn document_start(&mut self) {
        if self.started {
            self.document += 1;
        }
        self.started = true;
        self.depth = 0;
        for _ in 0..3 {
            self.advance();
        }
        self.expect_node = true;
    }

    fn open(&mut self) -> Result<(), TooDeep> {
        self.begin_token();
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(TooDeep {
                document: self.document,
                line: self.line,
                column: self.column,
            });
        }
        self.advance();
        self.expect_node = true;
        Ok(())
    }

    fn close(&mut self) {
        self.depth -= 1;
        self.advance();
        self.expect_node = false;
    }

    fn indicator(&mut self) {
        self.begin_token();
        self.advance();
        self.expect_node = true;
    }

    fn plain(&mut self) {
        if self.depth == 0 && self.entry_start {
            self.entry_indent = self.column - 1;
        }
        self.begin_token();
        self.advance();
        self.expect_node = false;
    }

    fn begin_token(&mut self) {
        if self.at_line_start && self.depth == 0 {
            self.entry_indent = self.column - 1;
        }
        self.started = true;
        self.entry_start = false;
    }

    /// Past the rest of the line, leaving the newline.
    fn skip_line(&mut self) {
        while self.peek(0).is_some_and(|b| b != b'\n') {
            self.advance();
        }
    }

    /// Past an anchor or tag; the node it decorates may still follow.
    fn skip_token(&mut self) {
        self.begin_token();
        while self.peek(0).is_some_and(|b| !b.is_ascii_whitespace()) {
            self.advance();
        }
    }

    /// Past a single- (`''` escapes a quote) or double-quoted (`\` escapes) scalar.
    fn skip_quoted(&mut self, quote: u8) {
        self.begin_token();
        self.advance();
        while let Some(byte) = self.peek(0) {
            match byte {
                b'\n' => self.newline(),
                b'\\' if quote == b'"' => {
                    self.advance();
                    if self.peek(0).is_some_and(|b| b != b'\n') {
                        self.advance();
                    }
                }
                b'\'' if quote == b'\'' && self.peek(1) == Some(b'\'') => {
                    self.advance();
                    self.advance();
                }
                b if b == quote => {
                    self.advance();
                    break;
                }
                _ => self.advance(),
            }
        }
        self.expect_node = false;
    }

    /// Past a literal or folded scalar: its header line, then every line that is blank or
    /// indented more than the entry it belongs to.
    fn skip_block_scalar(&mut self) {
        self.begin_token();
        self.skip_line();
        while self.peek(0) == Some(b'\n') {
            let next = &self.input[self.pos + 1..];
            let line = next.split(|b| *b == b'\n').next().unwrap_or_default();
            let indent = line.iter().take_while(|b| **b == b' ').count();
            let blank = line.iter().all(u8::is_ascii_whitespace);
            if !blank && indent <= self.entry_indent {
                break;
            }
            self.newline();
            self.skip_line();
        }
        self.expect_node = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_error(text: &str) -> Option<TooDeep> {
        check(text.as_bytes()).err()
    }

    #[test]
    fn a_flow_nest_deeper_than_the_limit_fails_at_the_first_bracket_too_many() {
        let text = format!("a: {}", "[".repeat(MAX_DEPTH + 1));
        assert_eq!(
            depth_error(&text),
            Some(TooDeep {
                document: 0,
                line: 1,
                column: 4 + MAX_DEPTH
            })
        );
        assert_eq!(depth_error(&"[".repeat(MAX_DEPTH)), None);
    }

    #[test]
    fn a_hundred_thousand_brackets_fail_at_once() {
        let text = "{a: ".repeat(100_000);
        let started = std::time::Instant::now();
        assert!(depth_error(&text).is_some());
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn the_document_is_counted_by_its_markers() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        let err = depth_error(&format!("---\nkind: Pod\n---\n# c\n---\nx: {deep}\n")).unwrap();
        assert_eq!((err.document, err.line), (2, 6));
        let err = depth_error(&format!("kind: Pod\n---\n{deep}\n")).unwrap();
        assert_eq!(err.document, 1);
    }

    #[test]
    fn closed_collections_do_not_add_up() {
        let text = "a: [[x], {b: [c]}]\n".repeat(1000);
        assert_eq!(depth_error(&text), None);
    }

    #[test]
    fn brackets_in_scalars_comments_and_block_scalars_are_text() {
        let many = "[".repeat(MAX_DEPTH + 1);
        for text in [
            format!("command: echo {many}\n"),
            format!("a: \"{many}\"\nb: '{many}'\n"),
            format!("a: [\"{many}\", 'it''s {many}']\n"),
            format!("a: x # {many}\n# {many}\n"),
            format!("script: |\n  {many}\n\n  {many}\nnext: [1]\n"),
            format!("- name: c\n  args: >-\n    {many}\n  image: x\n"),
            format!("- |\n  {many}\n- x\n"),
            format!("key{many}: v\n"),
        ] {
            assert_eq!(depth_error(&text), None, "{text}");
        }
    }

    #[test]
    fn a_block_scalar_ends_where_its_entry_continues() {
        let deep = "[".repeat(MAX_DEPTH + 1);
        let text = format!("- name: c\n  cmd: |\n    text\n  args: {deep}\n");
        assert_eq!(depth_error(&text).map(|e| e.line), Some(4));
    }

    #[test]
    fn anchors_and_tags_may_precede_a_collection() {
        let text = format!("a: &x !!seq {}", "[".repeat(MAX_DEPTH + 1));
        assert!(depth_error(&text).is_some());
    }
}
