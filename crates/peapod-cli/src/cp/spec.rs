//! kubectl cp's file specs, `[[NAMESPACE/]POD:]PATH`, and the lexical path rules it applies
//! to them: Go's `path.Clean`, `Dir`, `Base` and `Join` (on a Linux client, `filepath`'s are
//! the same), and its own trimming of slashes and `../` shortcuts.

use super::CpError;

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSpec {
    Local(String),
    Remote(RemoteFile),
}

/// A path in a pod's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// `None` when the spec names none (the `-n` namespace then).
    pub namespace: Option<String>,
    pub pod: String,
    pub path: String,
}

impl FileSpec {
    /// kubectl's `extractFileSpec`: the first `:` ends the pod; `NAMESPACE/POD` before it.
    pub fn parse(arg: &str) -> Result<FileSpec, CpError> {
        let Some((pod, file)) = arg.split_once(':') else {
            return Ok(FileSpec::Local(strip_trailing_slash(arg).to_string()));
        };
        let path = strip_trailing_slash(file).replace('\\', "/");
        let (namespace, pod) = match pod.split('/').collect::<Vec<_>>()[..] {
            [""] => return Err(CpError::SpecFormat),
            [pod] => (None, pod),
            [namespace, pod] => (Some(namespace).filter(|ns| !ns.is_empty()), pod),
            _ => return Err(CpError::SpecFormat),
        };
        Ok(FileSpec::Remote(RemoteFile {
            namespace: namespace.map(str::to_string),
            pod: pod.to_string(),
            path,
        }))
    }

    pub fn path(&self) -> &str {
        match self {
            FileSpec::Local(path) => path,
            FileSpec::Remote(remote) => &remote.path,
        }
    }
}

/// One trailing slash goes (not the root's).
pub fn strip_trailing_slash(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    }
}

/// tar strips the leading `/` (and `\`) of member names; so does kubectl.
pub fn strip_leading_slashes(path: &str) -> &str {
    path.trim_start_matches(['/', '\\'])
}

/// kubectl's `stripPathShortcuts`: leading `../` go, as does a lone `.` or `..`, then one
/// leading `/`.
pub fn strip_path_shortcuts(path: &str) -> String {
    let mut stripped = path;
    while let Some(rest) = stripped.strip_prefix("../") {
        stripped = rest;
    }
    if stripped == "." || stripped == ".." {
        return String::new();
    }
    stripped.strip_prefix('/').unwrap_or(stripped).to_string()
}

/// Go's `path.Clean`: the shortest lexically equivalent path.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|last| *last != "..") => {
                parts.pop();
            }
            ".." if rooted => {}
            part => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Dir`: all but the last element, cleaned.
pub fn dir(path: &str) -> String {
    let end = path.rfind('/').map_or(0, |slash| slash + 1);
    clean(&path[..end])
}

/// Go's `path.Base`: the last element; `.` for an empty path, `/` for the root.
pub fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `path.Join`: the non-empty elements joined with `/`, cleaned.
pub fn join(first: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean(second),
        (false, true) => clean(first),
        (false, false) => clean(&format!("{first}/{second}")),
    }
}

/// kubectl's `isRelative`: `target` is `base` or beneath it, lexically (Go's `filepath.Rel`
/// gives no `../`).
pub fn is_within(base: &str, target: &str) -> bool {
    let (base, target) = (clean(base), clean(target));
    if base == target {
        return true;
    }
    match base.as_str() {
        "." => target != ".." && !target.starts_with("../") && !target.starts_with('/'),
        "/" => target.starts_with('/'),
        _ => target.starts_with(&format!("{base}/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(namespace: Option<&str>, pod: &str, path: &str) -> FileSpec {
        FileSpec::Remote(RemoteFile {
            namespace: namespace.map(str::to_string),
            pod: pod.into(),
            path: path.into(),
        })
    }

    #[test]
    fn specs_are_split_as_kubectl_splits_them() {
        assert_eq!(
            FileSpec::parse("./dir/").unwrap(),
            FileSpec::Local("./dir".into())
        );
        assert_eq!(FileSpec::parse("/").unwrap(), FileSpec::Local("/".into()));
        assert_eq!(
            FileSpec::parse("web:/tmp/x/").unwrap(),
            remote(None, "web", "/tmp/x")
        );
        assert_eq!(
            FileSpec::parse("team/web:a\\b").unwrap(),
            remote(Some("team"), "web", "a/b")
        );
        assert_eq!(FileSpec::parse("web:").unwrap(), remote(None, "web", ""));
        assert_eq!(
            FileSpec::parse("web:a:b").unwrap(),
            remote(None, "web", "a:b")
        );
        for bad in [":x", "a/b/c:x"] {
            let err = FileSpec::parse(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                "filespec must match the canonical format: [[namespace/]pod:]file/path"
            );
        }
    }

    #[test]
    fn paths_follow_gos_lexical_rules() {
        for (path, cleaned) in [
            ("", "."),
            ("a//b/./c/..", "a/b"),
            ("/../x", "/x"),
            ("../../x", "../../x"),
            ("a/../..", ".."),
            ("/", "/"),
        ] {
            assert_eq!(clean(path), cleaned, "{path}");
        }
        assert_eq!(
            (dir("/tmp/x"), dir("x"), dir("/x"), dir("")),
            ("/tmp".into(), ".".into(), "/".into(), ".".into())
        );
        assert_eq!(
            (base("/tmp/x/"), base("/"), base("")),
            ("x".into(), "/".into(), ".".into())
        );
        assert_eq!(
            (join("dir", "a"), join("d", "../../e"), join("", "")),
            ("dir/a".into(), "../e".into(), String::new())
        );
    }

    #[test]
    fn shortcuts_and_slashes_are_stripped_as_kubectl_strips_them() {
        assert_eq!(strip_path_shortcuts("../../tmp/x"), "tmp/x");
        assert_eq!(strip_path_shortcuts(".."), "");
        assert_eq!(strip_path_shortcuts("."), "");
        assert_eq!(strip_leading_slashes("//tmp/x"), "tmp/x");
    }

    #[test]
    fn targets_outside_the_destination_are_not_within_it() {
        assert!(is_within("out", "out/a/b"));
        assert!(is_within("out", "out"));
        assert!(!is_within("out", "outside/a"));
        assert!(!is_within("out", "etc/passwd"));
        assert!(is_within(".", "a"));
        assert!(!is_within(".", "../a"));
        assert!(is_within("/", "/etc"));
        assert!(is_within("../x", "../x/y"));
    }
}
