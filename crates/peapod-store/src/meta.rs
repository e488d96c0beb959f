//! The API server's ObjectMeta rules: what the system sets on create and what an update may change.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde_json::{json, Value};

/// Characters Kubernetes uses for generated name suffixes (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
const GENERATED_SUFFIX_LEN: usize = 5;
const MAX_NAME_LEN: usize = 63;

/// Sets the fields the system owns on a new object.
pub(crate) fn prepare_create(meta: &mut ObjectMeta, now: Timestamp) {
    meta.uid = Some(uuid::Uuid::new_v4().to_string());
    meta.creation_timestamp = Some(Time(now));
    meta.generation = Some(1);
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
}

/// `generateName` + 5 random characters, the prefix cut so the result stays a valid name.
pub(crate) fn generate_name(prefix: &str) -> String {
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
pub(crate) fn carry_over(new: &mut ObjectMeta, old: &ObjectMeta) -> Result<(), String> {
    if let (Some(given), Some(stored)) = (&new.uid, &old.uid) {
        if given != stored {
            return Err(format!(
                "metadata.uid: Invalid value: \"{given}\": field is immutable"
            ));
        }
    }
    new.name.clone_from(&old.name);
    new.namespace.clone_from(&old.namespace);
    new.uid.clone_from(&old.uid);
    new.creation_timestamp.clone_from(&old.creation_timestamp);
    new.generation = old.generation;
    // An update may set a deletion timestamp but never move or remove one.
    if old.deletion_timestamp.is_some() {
        new.deletion_timestamp.clone_from(&old.deletion_timestamp);
    }
    if new.deletion_grace_period_seconds.is_none() {
        new.deletion_grace_period_seconds = old.deletion_grace_period_seconds;
    }
    Ok(())
}

/// Bumps `metadata.generation` of `new` when its `spec` differs from `old`'s.
pub(crate) fn bump_generation(new: &mut Value, old: &Value) {
    if new.get("spec") == old.get("spec") {
        return;
    }
    let generation = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    metadata_mut(new).insert("generation".into(), json!(generation + 1));
}

/// Replaces `target`'s `status` with `source`'s (removing it when `source` has none).
pub(crate) fn copy_status(target: &mut Value, source: &Value) {
    let Some(fields) = target.as_object_mut() else {
        return;
    };
    match source.get("status") {
        Some(status) => fields.insert("status".into(), status.clone()),
        None => fields.remove("status"),
    };
}

pub(crate) fn set_resource_version(value: &mut Value, rv: u64) {
    metadata_mut(value).insert("resourceVersion".into(), json!(rv.to_string()));
}

fn metadata_mut(value: &mut Value) -> &mut serde_json::Map<String, Value> {
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

    fn stored_meta() -> ObjectMeta {
        let mut meta = ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            ..ObjectMeta::default()
        };
        prepare_create(&mut meta, Timestamp::UNIX_EPOCH);
        meta
    }

    #[test]
    fn create_sets_uid_generation_and_time() {
        let meta = stored_meta();
        assert_eq!(meta.uid.as_ref().map(String::len), Some(36));
        assert_eq!(meta.generation, Some(1));
        assert_eq!(meta.creation_timestamp, Some(Time(Timestamp::UNIX_EPOCH)));
        assert_ne!(stored_meta().uid, meta.uid);
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
        let old = stored_meta();
        let mut new = ObjectMeta {
            name: Some("web".into()),
            labels: Some([("a".to_string(), "b".to_string())].into()),
            generation: Some(7),
            ..ObjectMeta::default()
        };
        carry_over(&mut new, &old).unwrap();
        assert_eq!((&new.uid, new.generation), (&old.uid, Some(1)));
        assert_eq!(new.creation_timestamp, old.creation_timestamp);
        assert!(new.labels.is_some());
    }

    #[test]
    fn deletion_timestamp_can_be_set_but_not_moved() {
        let mut old = stored_meta();
        let mut new = old.clone();
        new.deletion_timestamp = Some(Time(Timestamp::from_second(10).unwrap()));
        new.deletion_grace_period_seconds = Some(30);
        carry_over(&mut new, &old).unwrap();
        assert!(new.deletion_timestamp.is_some());

        old = new.clone();
        let mut moved = old.clone();
        moved.deletion_timestamp = None;
        moved.deletion_grace_period_seconds = None;
        carry_over(&mut moved, &old).unwrap();
        assert_eq!(moved.deletion_timestamp, old.deletion_timestamp);
        assert_eq!(moved.deletion_grace_period_seconds, Some(30));
    }

    #[test]
    fn changing_the_uid_is_rejected() {
        let old = stored_meta();
        let mut new = old.clone();
        new.uid = Some("other".into());
        let err = carry_over(&mut new, &old).unwrap_err();
        assert!(err.contains("field is immutable"), "{err}");
    }

    #[test]
    fn generation_follows_spec_changes_only() {
        let old = json!({"metadata": {"generation": 3}, "spec": {"a": 1}});
        let mut same = json!({"metadata": {"generation": 3}, "spec": {"a": 1}, "status": {"x": 1}});
        bump_generation(&mut same, &old);
        assert_eq!(same["metadata"]["generation"], 3);
        let mut changed = json!({"metadata": {"generation": 3}, "spec": {"a": 2}});
        bump_generation(&mut changed, &old);
        assert_eq!(changed["metadata"]["generation"], 4);
    }

    #[test]
    fn status_is_copied_or_removed() {
        let mut target = json!({"spec": 1, "status": {"phase": "Pending"}});
        copy_status(&mut target, &json!({"status": {"phase": "Running"}}));
        assert_eq!(target["status"]["phase"], "Running");
        copy_status(&mut target, &json!({"spec": 2}));
        assert_eq!(target, json!({"spec": 1}));
    }

    #[test]
    fn resource_version_is_a_decimal_string() {
        let mut value = json!({"kind": "Pod"});
        set_resource_version(&mut value, 42);
        assert_eq!(value["metadata"]["resourceVersion"], "42");
    }
}
