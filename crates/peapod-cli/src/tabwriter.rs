//! Go's `text/tabwriter` as kubectl describe's `tabbedString` sets it (minwidth 0, padding 2):
//! cells are tab-terminated, a column is a run of consecutive lines that have a cell there,
//! and each run is as wide as its widest cell plus the padding. The last cell of a line never
//! takes part.

const PADDING: usize = 2;

/// `text` laid out in one flush.
pub fn describe(text: &str) -> String {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if text.is_empty() {
        return String::new();
    }
    let lines: Vec<Vec<&str>> = body.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    block(&lines, 0, lines.len(), &mut Vec::new(), &mut out);
    if !text.ends_with('\n') {
        out.pop();
    }
    out
}

/// A line's last cell is not tab-terminated, so it never belongs to a column.
fn has_column(line: &[&str], column: usize) -> bool {
    column + 1 < line.len()
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

/// Lays out lines `from..to`, whose columns before `widths.len()` are sized already.
fn block(
    lines: &[Vec<&str>],
    mut from: usize,
    to: usize,
    widths: &mut Vec<usize>,
    out: &mut String,
) {
    let column = widths.len();
    let mut this = from;
    while this < to {
        if !has_column(&lines[this], column) {
            this += 1;
            continue;
        }
        write(&lines[from..this], widths, out);
        from = this;
        let mut run = 0;
        while this < to && has_column(&lines[this], column) {
            run = run.max(width(lines[this][column]) + PADDING);
            this += 1;
        }
        widths.push(run);
        block(lines, from, this, widths, out);
        widths.pop();
        from = this;
    }
    write(&lines[from..to], widths, out);
}

fn write(lines: &[Vec<&str>], widths: &[usize], out: &mut String) {
    for line in lines {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(w) = widths.get(j).filter(|_| j + 1 < line.len()) {
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(width(cell))));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_without_tabs_ends_the_column_block() {
        let text = "Name:\tx\nContainers:\n  c:\n    Restart Count:\t0\n    Image:\tnginx\n";
        let want =
            "Name:  x\nContainers:\n  c:\n    Restart Count:  0\n    Image:          nginx\n";
        assert_eq!(describe(text), want);
    }

    #[test]
    fn nested_columns_align_within_their_own_run() {
        let text = "Events:\n  Type\tReason\tMessage\n  Normal\tPulled\tok\n";
        let want = "Events:\n  Type    Reason  Message\n  Normal  Pulled  ok\n";
        assert_eq!(describe(text), want);
        assert_eq!(describe("é\tx\nab\ty"), "é   x\nab  y");
        assert_eq!(describe(""), "");
    }
}
