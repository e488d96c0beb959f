//! Tables shaped like kubectl's table printer: upper-case headers, columns padded by 3.

use crate::tabwriter::TABLE;

/// Align rows like kubectl's tabwriter (min width 6, padding 3, left aligned, last column
/// unpadded). Each row ends with a newline.
pub fn align(rows: &[Vec<String>]) -> String {
    TABLE.format(&tabbed(rows))
}

/// Generic table for other listings (images): upper-cased header + rows, aligned.
/// No rows gives "" (the CLI prints its own "No resources found" line), as `pod_table` does.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut all = Vec::with_capacity(rows.len() + 1);
    all.push(header.iter().map(|h| h.to_uppercase()).collect());
    all.extend_from_slice(rows);
    align(&all)
}

/// For -o name: "pod/NAME" (the kind lower-cased, as kubectl prints it).
pub fn object_name(kind: &str, name: &str) -> String {
    format!("{}/{}", kind.to_lowercase(), name)
}

/// Aligns rows that arrive over time (`get -w`): like kubectl's RememberWidths tabwriter,
/// a column never gets narrower than it was in an earlier batch.
#[derive(Debug, Default, Clone)]
pub struct TableStream {
    widths: Vec<usize>,
}

impl TableStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Aligns this batch (e.g. header + first rows, then one row per watch event).
    pub fn render(&mut self, rows: &[Vec<String>]) -> String {
        TABLE.format_remembering(&tabbed(rows), &mut self.widths)
    }
}

/// Tabs or newlines inside a cell would break the layout, so they become spaces.
fn tabbed(rows: &[Vec<String>]) -> String {
    let mut text = String::new();
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn table_upper_cases_header_and_aligns() {
        let out = table(
            &["Repository", "Tag"],
            &[row(&["docker.io/library/nginx", "latest"])],
        );
        assert_eq!(
            out,
            "REPOSITORY                TAG\ndocker.io/library/nginx   latest\n"
        );
    }

    #[test]
    fn empty_table_is_empty() {
        assert_eq!(table(&["a"], &[]), "");
    }

    #[test]
    fn object_name_lower_cases_kind() {
        assert_eq!(object_name("Pod", "web"), "pod/web");
        assert_eq!(object_name("pod", "web"), "pod/web");
    }

    #[test]
    fn cells_with_tabs_do_not_split_columns() {
        assert_eq!(align(&[row(&["a\tb", "c"])]), "a b   c\n");
    }

    #[test]
    fn stream_keeps_earlier_widths() {
        let mut stream = TableStream::new();
        let first = stream.render(&[row(&["NAME", "STATUS"]), row(&["long-pod-name", "Running"])]);
        assert_eq!(first, "NAME            STATUS\nlong-pod-name   Running\n");
        assert_eq!(
            stream.render(&[row(&["a", "Pending"])]),
            "a               Pending\n"
        );
    }
}
