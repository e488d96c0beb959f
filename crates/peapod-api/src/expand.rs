//! Kubernetes `$(VAR)` expansion (third_party/forked/golang/expansion) for command,
//! args, env values and subPathExpr.

const OPERATOR: char = '$';
const OPENER: char = '(';
const CLOSER: char = ')';

/// `$(VAR)` is replaced when `lookup` knows `VAR` and left verbatim otherwise;
/// `$$` escapes to `$`; any other `$` is kept.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find(OPERATOR) {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if after.is_empty() {
            out.push(OPERATOR);
            rest = after;
            break;
        }
        let (text, consumed) = read_reference(after, &lookup);
        out.push_str(&text);
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// Reads what follows a `$`: the expansion text and how many bytes it consumed.
fn read_reference(after: &str, lookup: &impl Fn(&str) -> Option<String>) -> (String, usize) {
    let first = after.chars().next().unwrap_or(OPERATOR);
    match first {
        OPERATOR => (OPERATOR.to_string(), 1),
        OPENER => match after.find(CLOSER) {
            Some(end) => {
                let name = &after[1..end];
                let value = lookup(name).unwrap_or_else(|| format!("$({name})"));
                (value, end + 1)
            }
            // An unterminated reference is kept as text.
            None => (format!("{OPERATOR}{OPENER}"), 1),
        },
        other => (format!("{OPERATOR}{other}"), other.len_utf8()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "VAR_A" => Some("A".to_string()),
            "VAR_B" => Some("B".to_string()),
            "VAR_EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn cases_from_kubernetes() {
        let cases = [
            ("$(VAR_A)", "A"),
            ("___$(VAR_B)___", "___B___"),
            ("$(VAR_A)-$(VAR_A)", "A-A"),
            ("foo\\$(VAR_A)", "foo\\A"),
            ("$$(VAR_A)", "$(VAR_A)"),
            ("$$$(VAR_A)", "$A"),
            ("$(VAR_EMPTY)", ""),
            ("$(UNKNOWN)", "$(UNKNOWN)"),
            ("$(VAR_A", "$(VAR_A"),
            ("$VAR_A", "$VAR_A"),
            ("$", "$"),
            ("foo$", "foo$"),
            ("$$", "$"),
            ("$()", "$()"),
            ("$é$(VAR_B)", "$éB"),
            ("$(VAR_A)$(VAR_B", "A$(VAR_B"),
            ("no refs", "no refs"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, vars), want, "input {input:?}");
        }
    }
}
