//! `metadata.managedFields` (apimachinery's `managedfields/internal/managedfields.go` and
//! `capmanagers.go`): each entry becomes a versioned field set under a manager identifier, the
//! JSON of the entry without its fields, time and (for appliers) API version, so that one
//! manager applying and updating holds two entries, and one per subresource.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::path::go_json;
use super::set::Set;

pub const APPLY: &str = "Apply";
pub const UPDATE: &str = "Update";

/// A manager's fields, the API version it used, and whether it applied them.
#[derive(Clone, Debug, PartialEq)]
pub struct VersionedSet {
    pub set: Set,
    pub api_version: String,
    pub applied: bool,
}

/// The field sets by manager identifier.
pub type Managers = BTreeMap<String, VersionedSet>;

/// The field sets and the time of each manager's last change.
#[derive(Clone, Debug, Default)]
pub struct Managed {
    pub fields: Managers,
    pub times: BTreeMap<String, String>,
}

/// The identifier of a manager (`BuildManagerIdentifier`).
pub fn identifier(manager: &str, operation: &str, api_version: &str, subresource: &str) -> String {
    let mut id = format!(
        "{{\"manager\":{},\"operation\":{}",
        go_json(&json!(manager)),
        go_json(&json!(operation))
    );
    if operation != APPLY && !api_version.is_empty() {
        id.push_str(&format!(",\"apiVersion\":{}", go_json(&json!(api_version))));
    }
    if !subresource.is_empty() {
        id.push_str(&format!(
            ",\"subresource\":{}",
            go_json(&json!(subresource))
        ));
    }
    id.push('}');
    id
}

/// The parts of an identifier: manager, operation, apiVersion and subresource (`None` for a
/// plain name, as tests use).
pub fn parts(id: &str) -> Option<(String, String, String, String)> {
    let value: Value = serde_json::from_str(id).ok()?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    value.is_object().then(|| {
        (
            field("manager"),
            field("operation"),
            field("apiVersion"),
            field("subresource"),
        )
    })
}

/// How a conflict names a manager: `"kubectl-client-side-apply" using v1`, `"kubectl"`,
/// `"kubelet" with subresource "status" using v1` (kube's `printManager`).
pub fn print_manager(id: &str) -> String {
    let quote = |s: &str| peapod_api::validation::go_quote(s);
    let Some((manager, operation, api_version, subresource)) = parts(id) else {
        return quote(id);
    };
    let mut text = quote(&manager);
    if !subresource.is_empty() {
        text.push_str(&format!(" with subresource {}", quote(&subresource)));
    }
    if operation == UPDATE {
        text.push_str(&format!(" using {api_version}"));
    }
    text
}

/// The time of an entry as kube writes it (RFC 3339, seconds, UTC).
pub fn now() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn seconds(time: Option<&String>) -> i64 {
    time.and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(0, |t| t.as_second())
}

/// Whether a client asks to clear the managed fields: an empty list, or one empty entry.
pub fn is_reset(entries: Option<&Value>) -> bool {
    match entries.and_then(Value::as_array).map(Vec::as_slice) {
        Some([]) => true,
        Some([Value::Object(entry)]) => entry.values().all(|v| match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Object(m) => m.is_empty(),
            _ => false,
        }),
        _ => false,
    }
}

/// Decodes `metadata.managedFields` (absent reads as none).
pub fn decode(entries: Option<&Value>) -> Result<Managed, String> {
    let mut managed = Managed::default();
    let entries = match entries {
        None | Some(Value::Null) => return Ok(managed),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err("managedFields must be a list".into()),
    };
    for (index, entry) in entries.iter().enumerate() {
        let field = |name: &str| entry.get(name).and_then(Value::as_str).unwrap_or("");
        let operation = field("operation");
        if operation != APPLY && operation != UPDATE {
            return Err("operation must be `Apply` or `Update`".into());
        }
        if field("apiVersion").is_empty() {
            return Err("apiVersion must not be empty".into());
        }
        match field("fieldsType") {
            "FieldsV1" => {}
            "" => {
                return Err(format!(
                    "missing fieldsType in managed fields entry {index}"
                ))
            }
            other => {
                return Err(format!(
                    "invalid fieldsType {} in managed fields entry {index}",
                    peapod_api::validation::go_quote(other)
                ))
            }
        }
        let id = identifier(
            field("manager"),
            operation,
            field("apiVersion"),
            field("subresource"),
        );
        let fields = entry.get("fieldsV1").cloned().unwrap_or_else(|| json!({}));
        let set = Set::from_fields_v1(&fields)
            .map_err(|err| format!("error decoding versioned set: error decoding set: {err}"))?;
        let versioned = VersionedSet {
            set,
            api_version: field("apiVersion").to_owned(),
            applied: operation == APPLY,
        };
        managed.fields.insert(id.clone(), versioned);
        match entry.get("time").and_then(Value::as_str) {
            Some(time) => managed.times.insert(id, time.to_owned()),
            None => managed.times.remove(&id),
        };
    }
    Ok(managed)
}

/// The `managedFields` list, sorted as kube sorts it (`None` when no manager is left).
pub fn encode(managed: &Managed) -> Option<Value> {
    if managed.fields.is_empty() {
        return None;
    }
    let mut entries: Vec<(String, i64, Map<String, Value>)> = Vec::new();
    for (id, versioned) in &managed.fields {
        let (manager, operation, _, subresource) =
            parts(id).unwrap_or_else(|| (id.clone(), UPDATE.into(), String::new(), String::new()));
        let operation = if versioned.applied {
            APPLY.into()
        } else {
            operation
        };
        let mut entry = Map::new();
        entry.insert("manager".into(), json!(manager));
        entry.insert("operation".into(), json!(operation));
        entry.insert("apiVersion".into(), json!(versioned.api_version));
        let time = managed.times.get(id);
        if let Some(time) = time {
            entry.insert("time".into(), json!(time));
        }
        entry.insert("fieldsType".into(), json!("FieldsV1"));
        entry.insert("fieldsV1".into(), versioned.set.to_fields_v1());
        if !subresource.is_empty() {
            entry.insert("subresource".into(), json!(subresource));
        }
        entries.push((operation, seconds(time), entry));
    }
    entries.sort_by(|(op_a, time_a, a), (op_b, time_b, b)| {
        let text = |e: &Map<String, Value>, name: &str| {
            e.get(name).and_then(Value::as_str).unwrap_or("").to_owned()
        };
        op_a.cmp(op_b)
            .then(time_a.cmp(time_b))
            .then_with(|| text(a, "manager").cmp(&text(b, "manager")))
            .then_with(|| text(a, "apiVersion").cmp(&text(b, "apiVersion")))
            .then_with(|| text(a, "subresource").cmp(&text(b, "subresource")))
    });
    Some(Value::Array(
        entries
            .into_iter()
            .map(|(_, _, e)| Value::Object(e))
            .collect(),
    ))
}

/// At most `max` entries from updates: the oldest are merged, per API version, into an
/// `ancient-changes` entry (`capManagersManager`).
pub fn cap_update_managers(managed: &mut Managed, max: usize) {
    let mut updaters: Vec<String> = managed
        .fields
        .iter()
        .filter(|(_, v)| !v.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= max {
        return;
    }
    updaters.sort_by(|a, b| {
        seconds(managed.times.get(a))
            .cmp(&seconds(managed.times.get(b)))
            .then_with(|| a.cmp(b))
    });
    let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
    let mut length = updaters.len();
    for manager in updaters {
        if length <= max {
            break;
        }
        let Some(versioned) = managed.fields.get(&manager).cloned() else {
            continue;
        };
        let version = versioned.api_version.clone();
        let bucket = identifier("ancient-changes", UPDATE, &version, "");
        match first_of_version.get(&version) {
            Some(first) => {
                if !managed.fields.contains_key(&bucket) {
                    if let Some(moved) = managed.fields.remove(first) {
                        managed.fields.insert(bucket.clone(), moved);
                    }
                }
                let merged = match managed.fields.get(&bucket) {
                    Some(existing) => existing.set.union(&versioned.set),
                    None => versioned.set.clone(),
                };
                managed.fields.insert(
                    bucket.clone(),
                    VersionedSet {
                        set: merged,
                        ..versioned
                    },
                );
                managed.fields.remove(&manager);
                length -= 1;
                match managed.times.get(&manager).cloned() {
                    Some(time) => managed.times.insert(bucket, time),
                    None => managed.times.remove(&bucket),
                };
            }
            None => {
                first_of_version.insert(version, manager);
            }
        }
    }
}
