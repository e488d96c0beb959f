//! Server-side apply and field management, as kube-apiserver does them with
//! sigs.k8s.io/structured-merge-diff (`merge.Updater`) behind apimachinery's field manager
//! (`managedfields/internal`):
//!
//! - every create, update and patch records in `metadata.managedFields` an `Update` entry for
//!   its manager (the `fieldManager` parameter, else the User-Agent's first word) owning the
//!   fields it added or changed ([`FieldManager::update`]);
//! - an apply (`application/apply-patch+yaml`) merges the configuration into the object, gives
//!   the applier exactly the fields of its configuration, removes what it applied before and
//!   no longer does, and refuses to change fields other managers own unless forced
//!   ([`FieldManager::apply`]);
//! - kubectl's migration from client-side apply: conflicts of `kubectl` with fields its
//!   `last-applied-configuration` annotation holds unchanged are forced, and the annotation is
//!   kept up to date when `kubectl` applies.
//!
//! The modules: [`path`] and [`set`] (field paths, sets and FieldsV1), [`types`] (what is a
//! struct, a map, an atomic or associative list), [`typed`] (field sets of values, compare,
//! merge, remove), [`update`] (ownership), [`managed`] (the `managedFields` entries).

pub mod managed;
pub mod path;
pub mod set;
pub mod typed;
pub mod types;
pub mod update;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::http::StatusCode;
use peapod_api::decode::DuplicateField;
use peapod_api::field_validation::{FieldValidation, StrictFields};
use peapod_api::validation::{FieldError, FieldPath};
use serde_json::{json, Map, Value};

use self::managed::{Managed, Managers, VersionedSet, APPLY, UPDATE};
use self::path::{go_json, path_string, Pe};
use self::set::Set;
use self::typed::{drop_nulls, Walker};
use self::types::TypeSchema;
use self::update::{Conflicts, Updater};
use crate::registry::Kind;
use crate::status::ApiError;

/// kube's limit on a field manager's name.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;
/// At most this many `Update` entries are kept; older ones merge into `ancient-changes`.
const MAX_UPDATE_MANAGERS: usize = 10;
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The manager whose applies keep the last-applied annotation and may take over what
/// client-side apply owned.
const KUBECTL: &str = "kubectl";

/// The manager of a write: the `fieldManager` parameter, else the User-Agent's first token
/// (`kubectl-client-side-apply/v1.32.4 (linux/amd64) ...` gives `kubectl-client-side-apply`).
pub fn manager_or_user_agent(field_manager: Option<&str>, user_agent: Option<&str>) -> String {
    if let Some(manager) = field_manager.filter(|m| !m.is_empty()) {
        return manager.to_owned();
    }
    let first = user_agent
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or_default();
    let mut out = String::new();
    for c in first.chars().filter(|c| is_print(*c)) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

/// Go's `unicode.IsPrint`, near enough: no control characters, no spaces but ' '.
fn is_print(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace())
}

/// `ValidatePatchOptions` / `ValidateCreateOptions` / `ValidateUpdateOptions` for the
/// fieldManager and force parameters: 422 on `<kind>.meta.k8s.io ""`.
pub fn check_options(
    kind: &str,
    apply: Option<bool>,
    field_manager: Option<&str>,
    force: Option<bool>,
) -> Result<(), ApiError> {
    let path = FieldPath::new("fieldManager");
    let manager = field_manager.unwrap_or_default();
    let mut errors = Vec::new();
    match apply {
        Some(false) if force.is_some() => errors.push(FieldError::forbidden(
            &FieldPath::new("force"),
            "may not be specified for non-apply patch",
        )),
        Some(true) if manager.is_empty() => {
            errors.push(FieldError::required(&path, "is required for apply patch"))
        }
        _ => {}
    }
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errors.push(FieldError::too_long(&path, FIELD_MANAGER_MAX_LENGTH));
    }
    for (at, c) in manager.char_indices().filter(|(_, c)| !is_print(*c)) {
        let detail = format!("invalid character U+{:04X} (at position {at})", c as u32);
        errors.push(FieldError::invalid(&path, manager, &detail));
    }
    if errors.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid("meta.k8s.io", kind, "", errors))
}

/// Keys an applied configuration gives twice: refused under Strict, warned about under Warn.
pub fn duplicates(
    duplicates: &[DuplicateField],
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let fields = StrictFields {
        unknown: Vec::new(),
        duplicates: duplicates.to_vec(),
    };
    let Err(errors) = fields.check(FieldValidation::Ignore, FieldValidation::Strict) else {
        return Ok(Vec::new());
    };
    let text = format!("error converting YAML to JSON: {}", errors.join(", "));
    match validation {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "error strict decoding YAML: {text}"
        ))),
        FieldValidation::Warn => Ok(vec![text]),
        FieldValidation::Ignore => Ok(Vec::new()),
    }
}

/// The applied configuration's name and namespace must be the URL's (a configuration without
/// a name can only apply to an existing object).
pub fn check_name(
    config: &Value,
    url_name: &str,
    url_namespace: Option<&str>,
    creating: bool,
) -> Result<(), ApiError> {
    let text = |pointer: &str| config.pointer(pointer).and_then(Value::as_str);
    match text("/metadata/name") {
        Some(name) if !name.is_empty() && name != url_name => {
            Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                url_name
            )))
        }
        None | Some("") if creating => Err(ApiError::bad_request(format!(
            "the name of the object ({} based on URL) was undeterminable: name must be provided",
            url_name
        ))),
        _ => match (text("/metadata/namespace"), url_namespace) {
            (Some(given), Some(namespace)) if !given.is_empty() && given != namespace => {
                Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => Ok(()),
        },
    }
}

/// The field manager of one resource or subresource of a kind.
pub struct FieldManager {
    schema: Arc<TypeSchema>,
    group: String,
    version: String,
    kind: String,
    subresource: String,
    /// The fields the kind's strategy resets on this endpoint (status on the main resource,
    /// all but status on `/status`): never owned, never conflicting.
    ignored: Set,
}

impl FieldManager {
    pub fn new(kind: &Kind, subresource: Option<&str>) -> FieldManager {
        let schema = TypeSchema::cached(&kind.gvk.kind, kind.schema);
        let (group, version) = (&kind.gvk.group, &kind.gvk.version);
        let has_status = kind.has_subresource("status");
        FieldManager::with(
            schema,
            group,
            version,
            &kind.gvk.kind,
            has_status,
            subresource,
        )
    }

    /// The field manager of a kind given by its types and names.
    pub fn with(
        schema: Arc<TypeSchema>,
        group: &str,
        version: &str,
        kind: &str,
        has_status: bool,
        subresource: Option<&str>,
    ) -> FieldManager {
        let mut ignored = Set::new();
        match subresource {
            Some("status") => {
                let mut fields = schema.top_level_fields();
                if fields.is_empty() {
                    fields = vec!["metadata".into(), "spec".into()];
                }
                for field in fields.iter().filter(|f| *f != "status") {
                    ignored.insert(&[Pe::field(field)]);
                }
            }
            _ if has_status => ignored.insert(&[Pe::field("status")]),
            _ => {}
        }
        FieldManager {
            schema,
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            subresource: subresource.unwrap_or_default().to_owned(),
            ignored,
        }
    }

    fn api_version(&self) -> String {
        crate::registry::api_version(&self.group, &self.version)
    }

    fn updater(&self) -> Updater<'_> {
        Updater {
            walker: Walker::new(&self.schema),
            ignored: self.ignored.clone(),
        }
    }

    /// Records a create (`live` is `None`), update or non-apply patch by `manager` in `new`'s
    /// managedFields (kube's `UpdateNoErrors`). The managedFields a client sends are kept
    /// (`[]` or `[{}]` clears them), except on a subresource, where the stored ones count.
    pub fn update(&self, live: Option<&Value>, new: &mut Value, manager: &str) {
        let live_entries = live.and_then(|l| l.pointer("/metadata/managedFields"));
        let new_entries = new.pointer("/metadata/managedFields").cloned();
        let mut managed = if !self.subresource.is_empty() {
            managed::decode(live_entries).unwrap_or_default()
        } else if managed::is_reset(new_entries.as_ref()) {
            Managed::default()
        } else {
            match managed::decode(new_entries.as_ref()) {
                Ok(found) if !found.fields.is_empty() => found,
                _ => managed::decode(live_entries).unwrap_or_default(),
            }
        };
        set_managed_fields(new, None);
        // An object nobody has tracked yet stays untracked until it is applied to.
        if managed.fields.is_empty() && live.is_some() {
            return;
        }
        let live = live.map_or_else(|| self.schema.zero_object(), without_managed_fields);
        self.track_update(&live, new, &mut managed, manager);
        set_managed_fields(new, managed::encode(&managed));
    }

    /// The `Update` entry of `manager` takes what changed from `live` to `new`.
    fn track_update(&self, live: &Value, new: &Value, managed: &mut Managed, manager: &str) {
        const CURRENT: &str = "current-operation";
        let manager = if manager.is_empty() {
            "unknown"
        } else {
            manager
        };
        let id = managed::identifier(manager, UPDATE, &self.api_version(), &self.subresource);
        let version = self.api_version();
        self.updater()
            .update_managers(live, new, &version, &mut managed.fields, CURRENT);
        strip_meta(&mut managed.fields, CURRENT);
        if let Some(current) = managed.fields.remove(CURRENT) {
            let set = match managed.fields.get(&id) {
                Some(previous) => current.set.union(&previous.set),
                None => current.set,
            };
            managed
                .fields
                .insert(id.clone(), VersionedSet { set, ..current });
            managed.times.insert(id, managed::now());
        }
        managed::cap_update_managers(managed, MAX_UPDATE_MANAGERS);
    }

    /// Applies `config` for `manager` to `live` (`None`: the object is being created) and
    /// returns the new object with its managedFields.
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        let text = |name: &str| config.get(name).and_then(Value::as_str).unwrap_or_default();
        if text("apiVersion") != self.api_version() || text("kind") != self.kind {
            return Err(ApiError::bad_request(format!(
                "invalid object type: {}",
                gvk_string(text("apiVersion"), text("kind"))
            )));
        }
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let errors = Walker::new(&self.schema).validate(config);
        if !errors.is_empty() {
            return Err(ApiError::bad_request(format!(
                "failed to create typed patch object ({}): {}",
                gvk_nn(config),
                smd_errors(&errors)
            )));
        }
        let entries = live.and_then(|l| l.pointer("/metadata/managedFields"));
        let managed = managed::decode(entries).map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("failed to decode managed fields: {err}"),
            )
        })?;
        let live = live.map_or_else(|| self.schema.zero_object(), without_managed_fields);
        let result = match self.apply_once(&live, config, managed.clone(), manager, force) {
            Err(conflicts) if manager == KUBECTL => {
                // Fields client-side apply set as its last-applied configuration says may be
                // taken over by kubectl's server-side apply.
                match self.allowed_by_last_applied(&live) {
                    Some(allowed) if conflicts.paths().difference(&allowed).is_empty() => {
                        self.apply_once(&live, config, managed, manager, true)
                    }
                    Some(allowed) => Err(Conflicts(
                        conflicts
                            .0
                            .into_iter()
                            .filter(|(_, path)| !allowed.has(path))
                            .collect(),
                    )),
                    None => Err(conflicts),
                }
            }
            other => other,
        };
        let (mut object, managed) = result.map_err(|c| conflict_error(&c))?;
        drop_nulls(&mut object);
        if manager == KUBECTL && last_applied(&object).is_some_and(|a| !a.is_empty()) {
            set_last_applied(&mut object, last_applied_of(config));
        }
        set_managed_fields(&mut object, managed::encode(&managed));
        Ok(object)
    }

    fn apply_once(
        &self,
        live: &Value,
        config: &Value,
        mut managed: Managed,
        manager: &str,
        force: bool,
    ) -> Result<(Value, Managed), Conflicts> {
        if managed.fields.is_empty() {
            // What exists before the first apply belongs to "before-first-apply".
            let zero = self.schema.zero_object();
            self.track_update(&zero, live, &mut managed, "before-first-apply");
        }
        let id = managed::identifier(manager, APPLY, "", &self.subresource);
        let version = self.api_version();
        let new = self
            .updater()
            .apply(live, config, &version, &mut managed.fields, &id, force)?;
        strip_meta(&mut managed.fields, &id);
        let object = match new {
            Some(object) => {
                managed.times.insert(id, managed::now());
                object
            }
            None => live.clone(),
        };
        Ok((object, managed))
    }

    /// The fields of the last-applied annotation of `live` that `live` still holds as given.
    fn allowed_by_last_applied(&self, live: &Value) -> Option<Set> {
        let text = last_applied(live).filter(|a| !a.is_empty())?;
        let applied: Value = serde_json::from_str(text).ok()?;
        if applied.get("apiVersion").and_then(Value::as_str) != Some(&self.api_version()) {
            return None;
        }
        let walker = Walker::new(&self.schema);
        let compare = walker.compare(&applied, live);
        Some(
            walker
                .field_set(&applied)
                .difference(&compare.modified)
                .difference(&compare.added)
                .difference(&compare.removed),
        )
    }
}

impl TypeSchema {
    /// The fields of the kind's root (none when untyped).
    pub fn top_level_fields(&self) -> Vec<String> {
        match self.atom(self.root(), None, &[]) {
            Some(types::Atom::Struct { fields, .. }) => fields.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }
}

/// kube's answer to conflicts: 409 with one `FieldManagerConflict` cause each.
fn conflict_error(conflicts: &Conflicts) -> ApiError {
    let causes: Vec<Value> = conflicts
        .0
        .iter()
        .map(|(manager, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with {}", managed::print_manager(manager)),
                "field": path_string(path),
            })
        })
        .collect();
    let message = match conflicts.0.as_slice() {
        [(manager, path)] => format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            managed::print_manager(manager),
            path_string(path)
        ),
        all => {
            let mut lines = Vec::new();
            let mut managers: Vec<&String> = all.iter().map(|(m, _)| m).collect();
            managers.dedup();
            for manager in managers {
                lines.push(format!(
                    "conflicts with {}:",
                    managed::print_manager(manager)
                ));
                for (_, path) in all.iter().filter(|(m, _)| m == manager) {
                    lines.push(format!("- {}", path_string(path)));
                }
            }
            format!(
                "Apply failed with {} conflicts: {}",
                all.len(),
                lines.join("\n")
            )
        }
    };
    ApiError::new(StatusCode::CONFLICT, "Conflict", message).with_details(json!({"causes": causes}))
}

/// Removes from `manager`'s set what is never owned: type and system metadata.
fn strip_meta(managers: &mut Managers, manager: &str) {
    let Some(versioned) = managers.get_mut(manager) else {
        return;
    };
    let mut strip = Set::new();
    strip.insert(&[Pe::field("apiVersion")]);
    strip.insert(&[Pe::field("kind")]);
    strip.insert(&[Pe::field("metadata")]);
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        strip.insert(&[Pe::field("metadata"), Pe::field(field)]);
    }
    versioned.set = versioned.set.difference(&strip);
    if versioned.set.is_empty() {
        managers.remove(manager);
    }
}

fn empty() -> Value {
    Value::Object(Map::new())
}

fn without_managed_fields(object: &Value) -> Value {
    let mut object = object.clone();
    set_managed_fields(&mut object, None);
    object
}

/// Sets (or, with `None`, removes) `metadata.managedFields`.
fn set_managed_fields(object: &mut Value, entries: Option<Value>) {
    let Some(fields) = object.as_object_mut() else {
        return;
    };
    match entries {
        Some(entries) => {
            let metadata = fields.entry("metadata").or_insert_with(empty);
            if let Some(metadata) = metadata.as_object_mut() {
                metadata.insert("managedFields".into(), entries);
            }
        }
        None => {
            if let Some(metadata) = fields.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.remove("managedFields");
            }
        }
    }
}

fn last_applied(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()
}

fn set_last_applied(object: &mut Value, text: String) {
    if let Some(annotations) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.insert(LAST_APPLIED.into(), Value::String(text));
    }
}

/// The configuration as the last-applied annotation holds it: without that annotation,
/// encoded as Go's JSON encoder writes it (with its trailing newline).
fn last_applied_of(config: &Value) -> String {
    let mut config = config.clone();
    if let Some(annotations) = config
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        annotations.remove(LAST_APPLIED);
    }
    format!("{}\n", go_json(&config))
}

/// `schema.GroupVersionKind.String()`: `/v1, Kind=ConfigMap`, `apps/v1, Kind=Deployment`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// `namespace/name; group/version, Kind=kind` of an object, as kube names it in errors.
fn gvk_nn(object: &Value) -> String {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    format!(
        "{}/{}; {}",
        text("/metadata/namespace"),
        text("/metadata/name"),
        gvk_string(text("/apiVersion"), text("/kind"))
    )
}

/// SMD's `ValidationErrors.Error()`.
fn smd_errors(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        all => {
            let lines: Vec<String> = all.iter().map(|e| format!("  {e}")).collect();
            format!("errors:\n{}", lines.join("\n"))
        }
    }
}
