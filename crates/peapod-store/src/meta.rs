//! The API server's ObjectMeta rules on JSON objects: what the system sets on create, what an
//! update may change, and how deletion is marked.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{json, Map, Value};

/// Characters Kubernetes uses for generated name suffixes (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const GENERATED_SUFFIX_LEN: usize = 5;
const MAX_NAME_LEN: usize = 63;

/// Metadata an update can never change: always taken from the stored object.
const SYSTEM_FIELDS: [&str; 5] = [
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "generation",
];

/// `metadata.<name>` of `value`, treating JSON null as absent.
pub(crate) fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .get("metadata")?
        .get(name)
        .filter(|found| !found.is_null())
}

/// `metadata.<name>` of `value` when it is a string.
pub(crate) fn str_field<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    field(value, name)?.as_str()
}

/// Sets the fields the system owns on a new object. A generation is kept as given: whether a
/// kind has one is its API server strategy's to say, as in kube-apiserver. So is a uid: the API
/// server assigns it before the kind's PrepareForCreate (kube's BeforeCreate), which may use it
/// (a Job's generated selector); writers that give none get a fresh one.
pub(crate) fn prepare_create(value: &mut Value, now: Timestamp) {
    let metadata = metadata_mut(value);
    let uid_given = metadata
        .get("uid")
        .and_then(Value::as_str)
        .is_some_and(|uid| !uid.is_empty());
    if !uid_given {
        metadata.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    }
    metadata.insert("creationTimestamp".into(), time(now));
    metadata.remove("deletionTimestamp");
    metadata.remove("deletionGracePeriodSeconds");
}

/// `generateName` + 5 random characters, the prefix cut so the result stays a valid name.
pub fn generate_name(prefix: &str) -> String {
    let keep = prefix
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .take_while(|&end| end <= MAX_NAME_LEN - GENERATED_SUFFIX_LEN)
        .last()
        .unwrap_or(0);
    let random = uuid::Uuid::new_v4();
    let suffix: String = random.as_bytes()[..GENERATED_SUFFIX_LEN]
        .iter()
        .map(|b| NAME_ALPHABET[*b as usize % NAME_ALPHABET.len()] as char)
        .collect();
    format!("{}{suffix}", &prefix[..keep])
}

/// Keeps the system-owned metadata of `old` on an updated object; errors name an immutable field.
pub(crate) fn carry_over(new: &mut Value, old: &Value) -> Result<(), String> {
    if let (Some(given), Some(stored)) = (str_field(new, "uid"), str_field(old, "uid")) {
        if given != stored {
            return Err(format!(
                "metadata.uid: Invalid value: \"{given}\": field is immutable"
            ));
        }
    }
    let grace_given = field(new, "deletionGracePeriodSeconds").is_some();
    let metadata = metadata_mut(new);
    for name in SYSTEM_FIELDS {
        copy_field(metadata, old, name);
    }
    // An update may set a deletion timestamp but never move or remove one.
    if field(old, "deletionTimestamp").is_some() {
        copy_field(metadata, old, "deletionTimestamp");
    }
    if !grace_given {
        copy_field(metadata, old, "deletionGracePeriodSeconds");
    }
    Ok(())
}

/// Bumps `metadata.generation` of `new` when `old` has one and the update is a `new_generation`
/// (the kind's rule: a `spec` change for most) or starts the deletion, as kube's strategies and
/// `BeforeDelete` / `markAsDeleting` do. Kinds without a generation never get one here.
pub(crate) fn bump_generation(new: &mut Value, old: &Value, new_generation: bool) {
    let starts_deletion =
        field(old, "deletionTimestamp").is_none() && field(new, "deletionTimestamp").is_some();
    if new_generation || starts_deletion {
        bump_existing_generation(new, generation(old));
    }
}

fn generation(value: &Value) -> Option<i64> {
    field(value, "generation")
        .and_then(Value::as_i64)
        .filter(|generation| *generation > 0)
}

/// Sets `metadata.generation` of `value` to one more than `current`, if there is one.
fn bump_existing_generation(value: &mut Value, current: Option<i64>) {
    if let Some(current) = current {
        metadata_mut(value).insert("generation".into(), json!(current + 1));
    }
}

pub(crate) fn has_finalizers(value: &Value) -> bool {
    field(value, "finalizers")
        .and_then(Value::as_array)
        .is_some_and(|finalizers| !finalizers.is_empty())
}

/// Whether an update of an object being deleted takes away its last finalizer, after which the
/// object goes, as kube-apiserver's store deletes it during the update (the generic
/// `ShouldDeleteDuringUpdate`: not while a graceful deletion is under way, whose owner removes
/// the object). A kind may add its own condition (see `Store::update_raw_with`).
pub(crate) fn empties_finalizers(new: &Value, old: &Value) -> bool {
    let grace = field(old, "deletionGracePeriodSeconds").and_then(Value::as_i64);
    field(old, "deletionTimestamp").is_some()
        && grace.is_none_or(|seconds| seconds == 0)
        && has_finalizers(old)
        && !has_finalizers(new)
}

/// Marks an object with finalizers as being deleted: deletionTimestamp now and a grace period
/// of 0, each only if not set already; starting the deletion bumps an existing generation.
pub(crate) fn mark_deleting(value: &mut Value, now: Timestamp) {
    if field(value, "deletionTimestamp").is_none() {
        let current = generation(value);
        bump_existing_generation(value, current);
    }
    let metadata = metadata_mut(value);
    if metadata.get("deletionTimestamp").is_none_or(Value::is_null) {
        metadata.insert("deletionTimestamp".into(), time(now));
    }
    if metadata
        .get("deletionGracePeriodSeconds")
        .is_none_or(Value::is_null)
    {
        metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
    }
}

pub(crate) fn set_name(value: &mut Value, name: &str) {
    metadata_mut(value).insert("name".into(), json!(name));
}

/// Sets `metadata.namespace`, or removes it for cluster-scoped kinds.
pub(crate) fn set_namespace(value: &mut Value, namespace: Option<&str>) {
    let metadata = metadata_mut(value);
    match namespace {
        Some(namespace) => metadata.insert("namespace".into(), json!(namespace)),
        None => metadata.remove("namespace"),
    };
}

pub(crate) fn set_resource_version(value: &mut Value, rv: u64) {
    metadata_mut(value).insert("resourceVersion".into(), json!(rv.to_string()));
}

pub(crate) fn clear_resource_version(value: &mut Value) {
    metadata_mut(value).remove("resourceVersion");
}

/// A timestamp as Kubernetes writes it (RFC 3339, whole seconds).
fn time(at: Timestamp) -> Value {
    serde_json::to_value(Time(at)).unwrap_or_else(|_| json!(at.to_string()))
}

fn copy_field(metadata: &mut Map<String, Value>, old: &Value, name: &str) {
    match field(old, name) {
        Some(stored) => metadata.insert(name.into(), stored.clone()),
        None => metadata.remove(name),
    };
}

pub(crate) fn metadata_mut(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    let fields = value
        .as_object_mut()
        .expect("value was just made an object");
    let metadata = fields.entry("metadata").or_insert_with(|| json!({}));
    if !metadata.is_object() {
        *metadata = json!({});
    }
    metadata
        .as_object_mut()
        .expect("metadata was just made an object")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> Value {
        let mut value = json!({"metadata": {"name": "web", "namespace": "default"}});
        prepare_create(&mut value, Timestamp::UNIX_EPOCH);
        value
    }

    #[test]
    fn create_sets_uid_and_time_and_keeps_a_given_generation() {
        let value = stored();
        assert_eq!(str_field(&value, "uid").map(str::len), Some(36));
        assert!(field(&value, "generation").is_none());
        let mut tracked = json!({"metadata": {"name": "web", "generation": 1}});
        prepare_create(&mut tracked, Timestamp::UNIX_EPOCH);
        assert_eq!(tracked["metadata"]["generation"], 1);
        assert_eq!(
            value["metadata"]["creationTimestamp"],
            "1970-01-01T00:00:00Z"
        );
        assert_ne!(str_field(&stored(), "uid"), str_field(&value, "uid"));
        let mut given = json!({"metadata": {"name": "web", "uid": "assigned"}});
        prepare_create(&mut given, Timestamp::UNIX_EPOCH);
        assert_eq!(str_field(&given, "uid"), Some("assigned"));
    }

    #[test]
    fn generated_names_have_a_five_char_suffix() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        assert!(name[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
        assert_eq!(generate_name(&"x".repeat(80)).len(), MAX_NAME_LEN);
    }

    #[test]
    fn update_keeps_system_fields() {
        let old = stored();
        let mut new = json!({"metadata": {"name": "other", "labels": {"a": "b"}, "generation": 7}});
        carry_over(&mut new, &old).unwrap();
        assert_eq!(new["metadata"]["uid"], old["metadata"]["uid"]);
        assert!(field(&new, "generation").is_none(), "{new}");
        let mut tracked = old.clone();
        metadata_mut(&mut tracked).insert("generation".into(), json!(3));
        carry_over(&mut new, &tracked).unwrap();
        assert_eq!(new["metadata"]["generation"], 3);
        assert_eq!(new["metadata"]["name"], "web");
        assert_eq!(new["metadata"]["namespace"], "default");
        assert_eq!(
            new["metadata"]["creationTimestamp"],
            old["metadata"]["creationTimestamp"]
        );
        assert_eq!(new["metadata"]["labels"]["a"], "b");
    }

    #[test]
    fn deletion_timestamp_can_be_set_but_not_moved() {
        let old = stored();
        let mut new = old.clone();
        let meta = metadata_mut(&mut new);
        meta.insert("deletionTimestamp".into(), json!("1970-01-01T00:00:10Z"));
        meta.insert("deletionGracePeriodSeconds".into(), json!(30));
        carry_over(&mut new, &old).unwrap();
        assert!(field(&new, "deletionTimestamp").is_some());

        let old = new;
        let mut moved = old.clone();
        metadata_mut(&mut moved).insert("deletionTimestamp".into(), Value::Null);
        metadata_mut(&mut moved).remove("deletionGracePeriodSeconds");
        carry_over(&mut moved, &old).unwrap();
        assert_eq!(
            moved["metadata"]["deletionTimestamp"],
            old["metadata"]["deletionTimestamp"]
        );
        assert_eq!(moved["metadata"]["deletionGracePeriodSeconds"], 30);
    }

    #[test]
    fn changing_the_uid_is_rejected() {
        let old = stored();
        let mut new = old.clone();
        metadata_mut(&mut new).insert("uid".into(), json!("other"));
        let err = carry_over(&mut new, &old).unwrap_err();
        assert!(err.contains("field is immutable"), "{err}");
    }

    #[test]
    fn generation_follows_spec_changes_only() {
        let old = json!({"metadata": {"generation": 3}, "spec": {"a": 1}});
        let mut same = json!({"metadata": {"generation": 3}, "spec": {"a": 1}, "status": {"x": 1}});
        bump_generation(&mut same, &old, false);
        assert_eq!(same["metadata"]["generation"], 3);
        let mut changed = json!({"metadata": {"generation": 3}, "spec": {"a": 2}});
        bump_generation(&mut changed, &old, true);
        assert_eq!(changed["metadata"]["generation"], 4);
        let mut deleting =
            json!({"metadata": {"generation": 3, "deletionTimestamp": "t"}, "spec": {"a": 1}});
        bump_generation(&mut deleting, &old, false);
        assert_eq!(deleting["metadata"]["generation"], 4);
    }

    #[test]
    fn kinds_without_a_generation_never_get_one() {
        let old = json!({"metadata": {}, "spec": {"a": 1}});
        let mut changed = json!({"metadata": {}, "spec": {"a": 2}});
        bump_generation(&mut changed, &old, true);
        assert!(field(&changed, "generation").is_none());
        let mut deleting = json!({"metadata": {"finalizers": ["x"]}});
        mark_deleting(&mut deleting, Timestamp::UNIX_EPOCH);
        assert!(field(&deleting, "generation").is_none());
    }

    #[test]
    fn deletion_marks_only_unset_fields() {
        let mut value = json!({"metadata": {"finalizers": ["x"]}});
        mark_deleting(&mut value, Timestamp::UNIX_EPOCH);
        assert_eq!(
            value["metadata"]["deletionTimestamp"],
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(value["metadata"]["deletionGracePeriodSeconds"], 0);
        let before = value.clone();
        mark_deleting(&mut value, Timestamp::from_second(99).unwrap());
        assert_eq!(value, before);

        let mut tracked = json!({"metadata": {"finalizers": ["x"], "generation": 2}});
        mark_deleting(&mut tracked, Timestamp::UNIX_EPOCH);
        mark_deleting(&mut tracked, Timestamp::UNIX_EPOCH);
        assert_eq!(tracked["metadata"]["generation"], 3, "bumped once");
    }

    #[test]
    fn only_taking_the_last_finalizer_of_a_deleting_object_empties_it() {
        let deleting = json!({"metadata": {"deletionTimestamp": "t", "finalizers": ["x"]}});
        let emptied = json!({"metadata": {"deletionTimestamp": "t", "finalizers": []}});
        assert!(empties_finalizers(&emptied, &deleting));
        assert!(!empties_finalizers(&deleting, &deleting));
        let live = json!({"metadata": {"finalizers": ["x"]}});
        assert!(!empties_finalizers(&json!({}), &live));
        // A graceful deletion (timestamp, no finalizers) stays until it is deleted.
        assert!(!empties_finalizers(&emptied, &emptied));
        // So does one whose grace period runs, when its last finalizer goes.
        let graceful = json!({"metadata": {
            "deletionTimestamp": "t", "deletionGracePeriodSeconds": 30, "finalizers": ["x"],
        }});
        assert!(!empties_finalizers(&emptied, &graceful));
    }

    #[test]
    fn resource_version_is_a_decimal_string() {
        let mut value = json!({"kind": "Pod"});
        set_resource_version(&mut value, 42);
        assert_eq!(value["metadata"]["resourceVersion"], "42");
        clear_resource_version(&mut value);
        assert_eq!(value["metadata"], json!({}));
    }
}
