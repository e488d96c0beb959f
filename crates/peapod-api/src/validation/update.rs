//! ValidatePodUpdate: what may change in a running pod (container images,
//! activeDeadlineSeconds set or lowered, added tolerations, labels/annotations).

use k8s_openapi::api::core::v1::{Container, PodSpec, Toleration};
use serde_json::Value;

use super::{names, FieldError, FieldPath};

const UPDATABLE_FIELDS: &[&str] = &[
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

/// The spec-level update errors; `new` must already be valid on its own.
pub fn validate_spec_update(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let spec_path = FieldPath::new("spec");
    let mut errs = Vec::new();
    let container_lists = [
        (
            "containers",
            new.containers.as_slice(),
            old.containers.as_slice(),
        ),
        (
            "initContainers",
            new.init_containers.as_deref().unwrap_or_default(),
            old.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (field, new_list, old_list) in container_lists {
        let path = spec_path.child(field);
        if new_list.len() != old_list.len() {
            let detail = "pod updates may not add or remove containers";
            errs.push(FieldError::forbidden(&path, detail));
            return errs;
        }
        errs.extend(image_updates(new_list, &path));
    }
    if let Some(e) =
        active_deadline_update(new.active_deadline_seconds, old.active_deadline_seconds)
    {
        errs.push(e);
        return errs;
    }
    errs.extend(toleration_updates(
        new.tolerations.as_deref().unwrap_or_default(),
        old.tolerations.as_deref().unwrap_or_default(),
    ));
    errs.extend(unchanged_elsewhere(new, old));
    errs
}

fn image_updates(containers: &[Container], path: &FieldPath) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let image = c.image.as_deref().unwrap_or_default();
        if image.is_empty() {
            errs.push(FieldError::required(&path.index(i).child("image"), ""));
        }
    }
    errs
}

/// Only nil → positive, or positive → lower (non-negative).
fn active_deadline_update(new: Option<i64>, old: Option<i64>) -> Option<FieldError> {
    let path = FieldPath::new("spec").child("activeDeadlineSeconds");
    match (new, old) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            let detail = names::inclusive_range_error(0, i64::from(i32::MAX));
            Some(FieldError::invalid(&path, n, &detail))
        }
        (Some(n), Some(o)) if o < n => Some(FieldError::invalid(
            &path,
            n,
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => Some(FieldError::invalid(
            &path,
            None::<i64>,
            "must not update from a positive integer to nil value",
        )),
        _ => None,
    }
}

/// Existing tolerations may only change their tolerationSeconds.
fn toleration_updates(new: &[Toleration], old: &[Toleration]) -> Vec<FieldError> {
    let kept = old.iter().all(|o| {
        new.iter().any(|n| {
            let mut o = o.clone();
            o.toleration_seconds = n.toleration_seconds;
            &o == n
        })
    });
    if kept {
        return Vec::new();
    }
    let path = FieldPath::new("spec").child("tolerations");
    let detail = "existing toleration can not be modified except its tolerationSeconds";
    vec![FieldError::forbidden(&path, detail)]
}

/// Puts the updatable fields of `new` back to `old`'s values; any remaining
/// difference is forbidden.
fn munge(new: &PodSpec, old: &PodSpec) -> PodSpec {
    let mut munged = new.clone();
    let restore_images = |new: &mut [Container], old: &[Container]| {
        for (n, o) in new.iter_mut().zip(old) {
            n.image.clone_from(&o.image);
        }
    };
    restore_images(&mut munged.containers, &old.containers);
    if let (Some(n), Some(o)) = (&mut munged.init_containers, &old.init_containers) {
        restore_images(n, o);
    }
    munged.active_deadline_seconds = old.active_deadline_seconds;
    munged.tolerations.clone_from(&old.tolerations);
    munged.scheduling_gates.clone_from(&old.scheduling_gates);
    let old_grace = old.termination_grace_period_seconds;
    if old_grace.is_some_and(|g| g < 0) && munged.termination_grace_period_seconds == Some(1) {
        munged.termination_grace_period_seconds = old_grace;
    }
    munged
}

fn unchanged_elsewhere(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let munged = serde_json::to_value(munge(new, old)).unwrap_or(Value::Null);
    let old = serde_json::to_value(old).unwrap_or(Value::Null);
    if munged == old {
        return Vec::new();
    }
    let mut lines = Vec::new();
    diff(&old, &munged, "spec", &mut lines);
    let detail = format!(
        "pod updates may not change fields other than {}\n{}",
        UPDATABLE_FIELDS.join(","),
        lines.join("\n")
    );
    vec![FieldError::forbidden(&FieldPath::new("spec"), &detail)]
}

/// `- path: old` / `+ path: new` lines for every differing leaf.
fn diff(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut keys: Vec<&String> = o.keys().chain(n.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (ov, nv) = (
                    o.get(k).unwrap_or(&Value::Null),
                    n.get(k).unwrap_or(&Value::Null),
                );
                diff(ov, nv, &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                diff(ov, nv, &format!("{path}[{i}]"), out);
            }
        }
        _ if old == new => {}
        _ => {
            if !old.is_null() {
                out.push(format!("- {path}: {old}"));
            }
            if !new.is_null() {
                out.push(format!("+ {path}: {new}"));
            }
        }
    }
}
