//! Field errors and the aggregate "is invalid" error, printed exactly like
//! Kubernetes' `field.Error` and `errors.NewInvalid`.

use std::fmt;

use super::path::FieldPath;

/// The kind of a field error; `Display` gives Kubernetes' wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Required,
    Invalid,
    Duplicate,
    NotFound,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::NotFound => "Not found",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
        })
    }
}

/// One validation error. `value` is already rendered as Kubernetes renders the bad
/// value: strings quoted (`"web"`), numbers bare (`70000`); `None` prints no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub kind: ErrorKind,
    pub value: Option<String>,
    pub detail: String,
}

/// A bad value as Kubernetes would print it.
pub trait BadValue {
    fn render(&self) -> String;
}

impl BadValue for str {
    fn render(&self) -> String {
        go_quote(self)
    }
}

impl BadValue for String {
    fn render(&self) -> String {
        go_quote(self)
    }
}

macro_rules! bare_bad_value {
    ($($t:ty),*) => {$(
        impl BadValue for $t {
            fn render(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
bare_bad_value!(i32, i64, u16, usize, bool);

/// Structs: Kubernetes prints Go's `%#v` of its internal type (with pointer
/// addresses); peapod prints the object's JSON instead.
impl BadValue for serde_json::Value {
    fn render(&self) -> String {
        self.to_string()
    }
}

impl<T: BadValue + ?Sized> BadValue for &T {
    fn render(&self) -> String {
        (**self).render()
    }
}

impl<T: BadValue> BadValue for Option<T> {
    fn render(&self) -> String {
        match self {
            Some(v) => v.render(),
            None => "null".to_string(),
        }
    }
}

/// Go's `%q` (strconv.Quote) for the strings Kubernetes manifests contain.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl FieldError {
    fn new(path: &FieldPath, kind: ErrorKind, value: Option<String>, detail: &str) -> Self {
        Self {
            path: path.to_string(),
            kind,
            value,
            detail: detail.to_string(),
        }
    }

    pub fn required(path: &FieldPath, detail: &str) -> Self {
        Self::new(path, ErrorKind::Required, None, detail)
    }

    pub fn invalid(path: &FieldPath, value: impl BadValue, detail: &str) -> Self {
        Self::new(path, ErrorKind::Invalid, Some(value.render()), detail)
    }

    pub fn duplicate(path: &FieldPath, value: impl BadValue) -> Self {
        Self::new(path, ErrorKind::Duplicate, Some(value.render()), "")
    }

    pub fn not_found(path: &FieldPath, value: impl BadValue) -> Self {
        Self::new(path, ErrorKind::NotFound, Some(value.render()), "")
    }

    pub fn not_supported(path: &FieldPath, value: impl BadValue, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(path, ErrorKind::NotSupported, Some(value.render()), &detail)
    }

    pub fn forbidden(path: &FieldPath, detail: &str) -> Self {
        Self::new(path, ErrorKind::Forbidden, None, detail)
    }

    /// Go's `field.TooMany`: a list longer than `max` items.
    pub fn too_many(path: &FieldPath, actual: usize, max: usize) -> Self {
        let items = if max == 1 { "item" } else { "items" };
        let detail = format!("must have at most {max} {items}");
        Self::new(path, ErrorKind::TooMany, Some(actual.to_string()), &detail)
    }

    /// Go's `field.Invalid` with `field.OmitValueType{}`: the value left out of the message.
    pub fn invalid_omitting_value(path: &FieldPath, detail: &str) -> Self {
        Self::new(path, ErrorKind::Invalid, None, detail)
    }

    pub fn too_long(path: &FieldPath, max_bytes: usize) -> Self {
        let detail = format!("may not be more than {max_bytes} bytes");
        Self::new(path, ErrorKind::TooLong, None, &detail)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind)?;
        let shows_value = !matches!(
            self.kind,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong
        );
        if let (true, Some(value)) = (shows_value, &self.value) {
            write!(f, ": {value}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// All errors for one object: `Pod "x" is invalid: [err1, err2]`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    pub kind: String,
    pub name: String,
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// `Ok` when `errors` is empty.
    pub fn check(kind: &str, name: &str, errors: Vec<FieldError>) -> Result<(), Self> {
        if errors.is_empty() {
            return Ok(());
        }
        Err(Self {
            kind: kind.to_string(),
            name: name.to_string(),
            errors,
        })
    }

    /// Messages with duplicates removed, as Kubernetes' aggregate does.
    fn unique_messages(&self) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        self.errors
            .iter()
            .map(ToString::to_string)
            .filter(|m| seen.insert(m.clone()))
            .collect()
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} is invalid", self.kind, go_quote(&self.name))?;
        match self.unique_messages().as_slice() {
            [] => Ok(()),
            [one] => write!(f, ": {one}"),
            many => write!(f, ": [{}]", many.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn containers(i: usize) -> FieldPath {
        FieldPath::new("spec").child("containers").index(i)
    }

    #[test]
    fn displays_each_kind_like_kubernetes() {
        let dup = FieldError::duplicate(&containers(1).child("name"), "web");
        assert_eq!(
            dup.to_string(),
            r#"spec.containers[1].name: Duplicate value: "web""#
        );
        let req = FieldError::required(&containers(0).child("image"), "");
        assert_eq!(req.to_string(), "spec.containers[0].image: Required value");
        let nf = FieldError::not_found(
            &containers(0).child("volumeMounts").index(0).child("name"),
            "data",
        );
        assert_eq!(
            nf.to_string(),
            r#"spec.containers[0].volumeMounts[0].name: Not found: "data""#
        );
        let ns = FieldError::not_supported(
            &FieldPath::new("spec").child("restartPolicy"),
            "Sometimes",
            &["Always", "OnFailure", "Never"],
        );
        assert_eq!(
            ns.to_string(),
            r#"spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#
        );
        let inv = FieldError::invalid(&containers(0).child("ports").index(0), 70000, "x");
        assert_eq!(
            inv.to_string(),
            "spec.containers[0].ports[0]: Invalid value: 70000: x"
        );
        let fb = FieldError::forbidden(&FieldPath::new("spec"), "nope");
        assert_eq!(fb.to_string(), "spec: Forbidden: nope");
        let tl = FieldError::too_long(&FieldPath::new("metadata").child("annotations"), 262144);
        assert_eq!(
            tl.to_string(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn aggregate_brackets_only_multiple_errors() {
        let one = FieldError::required(&FieldPath::new("spec").child("containers"), "");
        let single = ValidationErrors::check("Pod", "x", vec![one.clone()]).unwrap_err();
        assert_eq!(
            single.to_string(),
            r#"Pod "x" is invalid: spec.containers: Required value"#
        );
        let other = FieldError::required(&FieldPath::new("metadata").child("name"), "");
        let many = ValidationErrors::check("Pod", "x", vec![one.clone(), other, one]).unwrap_err();
        assert_eq!(
            many.to_string(),
            r#"Pod "x" is invalid: [spec.containers: Required value, metadata.name: Required value]"#
        );
        assert!(ValidationErrors::check("Pod", "x", vec![]).is_ok());
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
    }
}
