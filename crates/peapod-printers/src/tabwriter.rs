//! Go `text/tabwriter` column layout, so tables and describe text line up exactly as kubectl's.
//!
//! Cells are tab-terminated; the last cell of a line takes no part in alignment. A column is a
//! run of consecutive lines that all have a cell there, and each run gets its own width.

/// Layout settings: `minwidth` and `padding` of Go's `tabwriter.Writer` (pad character ' ').
#[derive(Debug, Clone, Copy)]
pub(crate) struct TabWriter {
    min_width: usize,
    padding: usize,
}

/// kubectl's table printer: minwidth 6, padding 3.
pub(crate) const TABLE: TabWriter = TabWriter {
    min_width: 6,
    padding: 3,
};
/// kubectl describe's `tabbedString`: minwidth 0, padding 2.
pub(crate) const DESCRIBE: TabWriter = TabWriter {
    min_width: 0,
    padding: 2,
};

struct Layout<'a> {
    lines: Vec<Vec<&'a str>>,
    last_unterminated: bool,
}

impl TabWriter {
    /// Lays out `text` in one flush.
    pub(crate) fn format(&self, text: &str) -> String {
        self.layout(text, None)
    }

    /// Lays out `text`, never narrowing a column below the width in `remembered`, and records
    /// the widths used (liggitt/tabwriter's RememberWidths, which kubectl uses for `get -w`).
    pub(crate) fn format_remembering(&self, text: &str, remembered: &mut Vec<usize>) -> String {
        self.layout(text, Some(remembered))
    }

    fn layout(&self, text: &str, remembered: Option<&mut Vec<usize>>) -> String {
        let layout = Layout::parse(text);
        let mut out = String::with_capacity(text.len() * 2);
        let mut widths = Vec::new();
        self.format_block(
            &layout,
            0,
            layout.lines.len(),
            &mut widths,
            remembered,
            &mut out,
        );
        out
    }

    fn format_block(
        &self,
        layout: &Layout,
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        mut remembered: Option<&mut Vec<usize>>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if !has_column(&layout.lines[this], column) {
                this += 1;
                continue;
            }
            write_lines(layout, line0, this, widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 && has_column(&layout.lines[this], column) {
                width = width.max(cell_width(layout.lines[this][column]) + self.padding);
                this += 1;
            }
            if let Some(remembered) = remembered.as_deref_mut() {
                width = remember(remembered, column, width);
            }
            widths.push(width);
            self.format_block(layout, line0, this, widths, remembered.as_deref_mut(), out);
            widths.pop();
            line0 = this;
        }
        write_lines(layout, line0, line1, widths, out);
    }
}

impl<'a> Layout<'a> {
    fn parse(text: &'a str) -> Self {
        let last_unterminated = !text.is_empty() && !text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines = if text.is_empty() {
            Vec::new()
        } else {
            body.split('\n')
                .map(|line| line.split('\t').collect())
                .collect()
        };
        Layout {
            lines,
            last_unterminated,
        }
    }
}

/// A line's last cell is not tab-terminated, so it never belongs to a column.
fn has_column(line: &[&str], column: usize) -> bool {
    column + 1 < line.len()
}

fn cell_width(cell: &str) -> usize {
    cell.chars().count()
}

fn remember(remembered: &mut Vec<usize>, column: usize, width: usize) -> usize {
    if remembered.len() <= column {
        remembered.resize(column + 1, 0);
    }
    let width = width.max(remembered[column]);
    remembered[column] = width;
    width
}

fn write_lines(layout: &Layout, line0: usize, line1: usize, widths: &[usize], out: &mut String) {
    for index in line0..line1 {
        let line = &layout.lines[index];
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(width) = widths.get(j).filter(|_| j + 1 < line.len()) {
                let pad = width.saturating_sub(cell_width(cell));
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        let is_last = index + 1 == layout.lines.len();
        if !(is_last && layout.last_unterminated) {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_get_min_width_and_padding() {
        let text = "NAME\tREADY\tAGE\nnginx\t1/1\t5m\n";
        assert_eq!(
            TABLE.format(text),
            "NAME    READY   AGE\nnginx   1/1     5m\n"
        );
    }

    #[test]
    fn last_cell_is_not_padded() {
        assert_eq!(
            TABLE.format("a\tlong-last-cell\nb\tc\n"),
            "a     long-last-cell\nb     c\n"
        );
    }

    #[test]
    fn a_line_without_tabs_ends_the_column_block() {
        let text = "Name:\tx\nContainers:\n  c:\n    Restart Count:\t0\n    Image:\tnginx\n";
        let want =
            "Name:  x\nContainers:\n  c:\n    Restart Count:  0\n    Image:          nginx\n";
        assert_eq!(DESCRIBE.format(text), want);
    }

    #[test]
    fn nested_columns_align_within_their_own_run() {
        let text = "Events:\n  Type\tReason\tMessage\n  Normal\tPulled\tok\n";
        let want = "Events:\n  Type    Reason  Message\n  Normal  Pulled  ok\n";
        assert_eq!(DESCRIBE.format(text), want);
    }

    #[test]
    fn separate_blocks_do_not_share_widths() {
        let text = "A-long-key:\tx\nbreak\nB:\ty\n";
        assert_eq!(DESCRIBE.format(text), "A-long-key:  x\nbreak\nB:  y\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        assert_eq!(DESCRIBE.format("é\tx\nab\ty\n"), "é   x\nab  y\n");
    }

    #[test]
    fn unterminated_last_line_keeps_no_newline() {
        assert_eq!(TABLE.format("a\tb"), "a     b");
    }

    #[test]
    fn remembered_widths_never_shrink() {
        let mut remembered = Vec::new();
        TABLE.format_remembering("a-very-long-name\tx\n", &mut remembered);
        let later = TABLE.format_remembering("b\ty\n", &mut remembered);
        assert_eq!(later, format!("b{}y\n", " ".repeat(18)));
    }
}
