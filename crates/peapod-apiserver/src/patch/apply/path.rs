//! Field paths (structured-merge-diff's `fieldpath.PathElement` and `Path`): a field of a map,
//! an entry of an associative list by its keys, a member of a set by its value, or an index.
//! Elements are ordered as SMD orders them (field < key < value < index), which is the order
//! of FieldsV1 and of conflict listings.

use std::cmp::Ordering;
use std::fmt;

use peapod_api::validation::go_quote;
use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug)]
pub enum Pe {
    /// `f:name`, `.name`: a field of a map or struct.
    Field(String),
    /// `k:{"name":"c"}`, `[name="c"]`: the entry of an associative list with these keys
    /// (sorted by name).
    Key(Vec<(String, Value)>),
    /// `v:"a"`, `[="a"]`: the member of a set with this value.
    Value(Value),
    /// `i:0`, `[0]`: an index (only in paths SMD builds for lists it cannot key).
    Index(usize),
}

/// A path from the object root.
pub type Path = Vec<Pe>;

impl Pe {
    pub fn field(name: &str) -> Pe {
        Pe::Field(name.to_owned())
    }

    /// The field name, for field elements.
    pub fn name(&self) -> Option<&str> {
        match self {
            Pe::Field(name) => Some(name),
            _ => None,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Pe::Field(_) => 0,
            Pe::Key(_) => 1,
            Pe::Value(_) => 2,
            Pe::Index(_) => 3,
        }
    }

    /// The FieldsV1 key of this element (`f:`, `k:`, `v:`, `i:`).
    pub fn serialize(&self) -> String {
        match self {
            Pe::Field(name) => format!("f:{name}"),
            Pe::Key(fields) => {
                let map: serde_json::Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", go_json(&Value::Object(map)))
            }
            Pe::Value(value) => format!("v:{}", go_json(value)),
            Pe::Index(index) => format!("i:{index}"),
        }
    }

    /// Reads a FieldsV1 key; `Ok(None)` for an element type this version does not know (SMD
    /// drops those too).
    pub fn deserialize(text: &str) -> Result<Option<Pe>, String> {
        let bytes = text.as_bytes();
        if bytes.len() < 2 {
            return Err("key must be 2 characters long:".into());
        }
        if bytes[1] != b':' {
            return Err(format!("missing colon: {text}"));
        }
        let rest = &text[2..];
        let parse = |rest: &str| {
            serde_json::from_str::<Value>(rest).map_err(|err| format!("{text}: {err}"))
        };
        Ok(Some(match bytes[0] {
            b'f' => Pe::Field(rest.to_owned()),
            b'v' => Pe::Value(parse(rest)?),
            b'k' => match parse(rest)? {
                Value::Object(map) => Pe::Key(map.into_iter().collect()),
                _ => return Err(format!("{text}: a key must be a JSON object")),
            },
            b'i' => Pe::Index(rest.parse().map_err(|err| format!("{text}: {err}"))?),
            _ => return Ok(None),
        }))
    }
}

impl Ord for Pe {
    fn cmp(&self, other: &Pe) -> Ordering {
        match (self, other) {
            (Pe::Field(a), Pe::Field(b)) => a.cmp(b),
            (Pe::Key(a), Pe::Key(b)) => compare_fields(a, b),
            (Pe::Value(a), Pe::Value(b)) => compare_values(a, b),
            (Pe::Index(a), Pe::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for Pe {
    fn partial_cmp(&self, other: &Pe) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Pe {
    fn eq(&self, other: &Pe) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pe {}

/// SMD's `PathElement.String()`: `.name`, `[name="c",protocol="TCP"]`, `[="a"]`, `[0]`.
impl fmt::Display for Pe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pe::Field(name) => write!(f, ".{name}"),
            Pe::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name}={}", to_string(value)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            Pe::Value(value) => write!(f, "[={}]", to_string(value)),
            Pe::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path as SMD prints it: `.spec.containers[name="c"].image`.
pub fn path_string(path: &[Pe]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// SMD's `value.ToString`.
fn to_string(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::String(s) => go_quote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(to_string).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", to_string(v)))
            .collect(),
    }
}

fn compare_fields(a: &[(String, Value)], b: &[(String, Value)]) -> Ordering {
    for ((an, av), (bn, bv)) in a.iter().zip(b) {
        let order = an.cmp(bn).then_with(|| compare_values(av, bv));
        if order != Ordering::Equal {
            return order;
        }
    }
    a.len().cmp(&b.len())
}

/// SMD's total order of values: numbers (ints and floats compared numerically), then strings,
/// booleans, lists, maps, null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x.partial_cmp(&y).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (x, y) in x.iter().zip(y) {
                let order = compare_values(x, y);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            // value.MapCompare: the union of keys in lexical order, a side running out or
            // lacking the key deciding.
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for (i, key) in keys.into_iter().enumerate() {
                let order = match (x.get(key), y.get(key)) {
                    _ if i == x.len() => Ordering::Less,
                    _ if i == y.len() => Ordering::Greater,
                    (None, _) => Ordering::Greater,
                    (_, None) => Ordering::Less,
                    (Some(a), Some(b)) => compare_values(a, b),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
            Ordering::Equal
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Whether two values are equal as SMD compares them (`1` equals `1.0`).
pub fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => compare_values(a, b) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| values_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| values_equal(v, w)))
        }
        _ => a == b,
    }
}

/// JSON as Go's encoding/json writes it: compact, map keys sorted, `<`, `>`, `&`, U+2028 and
/// U+2029 escaped.
pub fn go_json(value: &Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}
