//! Strategic merge patch (`application/strategic-merge-patch+json`), the body `kubectl apply`,
//! `kubectl patch` and `kubectl edit` send: a JSON merge patch whose lists merge by key where
//! the kind's [`MergeSchema`] says so, plus the directives of apimachinery's `strategicpatch`:
//!
//! - `$patch: replace | delete | merge` in a map (replace it, empty it, merge it) or in a list
//!   entry (`replace` the whole list, `delete` the entries with that merge key);
//! - `$retainKeys: [..]`: drop the live map's keys not listed;
//! - `$setElementOrder/<list>: [..]`: the order of the merged list;
//! - `$deleteFromPrimitiveList/<list>: [..]`: values to remove from a list of primitives.
//!
//! Merged lists are ordered as apimachinery orders them: patch entries by
//! `$setElementOrder` (else by their order in the patch), live-only entries by their live
//! order, the two interleaved by live position; an entry new to the list goes before the
//! live-only entries it cannot be placed against. Directive keys never reach the result, and
//! values added whole are stripped of nulls and directives too.

use serde_json::{Map, Value};
use thiserror::Error;

use super::schema::{ListStrategy, MergeSchema};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch cannot be applied; messages are apimachinery's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatchError {
    #[error("invalid JSON document")]
    BadJsonDoc,
    #[error("map: {map} does not contain declared merge key: {key}")]
    NoMergeKey { map: String, key: String },
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    #[error("unknown patch type: {directive} in map: {map}")]
    BadPatchType { directive: String, map: String },
    #[error("invalid patch format of primitive list")]
    BadPrimitiveList,
    #[error("invalid patch format of retainKeys")]
    BadRetainKeys,
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrder,
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch { patch: String, order: String },
    #[error("lists of lists are not supported")]
    ListOfLists,
    #[error("list element types are not identical: {0}")]
    MixedElementTypes(String),
    #[error("cannot merge lists without merge key for type map")]
    MapsWithoutMergeKey,
}

type Result<T> = std::result::Result<T, PatchError>;

/// `original` with the strategic merge `patch` applied, lists merged as `schema` declares.
/// Both documents must be JSON objects (`null` counts as `{}`).
pub fn apply(
    original: &Value,
    patch: &Value,
    schema: &dyn MergeSchema,
) -> std::result::Result<Value, PatchError> {
    let merger = Merger { schema };
    let merged = merger.merge_map(object(original)?, object(patch)?, &mut Vec::new())?;
    Ok(Value::Object(merged))
}

fn object(document: &Value) -> Result<Map<String, Value>> {
    match document {
        Value::Object(map) => Ok(map.clone()),
        Value::Null => Ok(Map::new()),
        _ => Err(PatchError::BadJsonDoc),
    }
}

struct Merger<'a> {
    schema: &'a dyn MergeSchema,
}

type Path = Vec<String>;

impl Merger<'_> {
    fn strategy(&self, path: &Path) -> ListStrategy {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        self.schema.list_strategy(&path)
    }

    /// Merges map `patch` into `original`; `path` names the map.
    fn merge_map(
        &self,
        mut original: Map<String, Value>,
        mut patch: Map<String, Value>,
        path: &mut Path,
    ) -> Result<Map<String, Value>> {
        if let Some(directive) = patch.get(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => original = Map::new(),
                Some("delete") => return Ok(Map::new()),
                Some("merge") => {}
                _ => return Err(bad_patch_type(directive, &patch)),
            }
            patch.remove(DIRECTIVE);
        }
        apply_retain_keys(&mut original, &mut patch)?;
        self.merge_ordered_lists(&mut original, &mut patch, path)?;
        let mut deletions = Vec::new();
        for (key, value) in patch {
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                deletions.push((directive_target(&key, DELETE_FROM_PRIMITIVE_LIST)?, value));
            } else if value.is_null() {
                original.remove(&key);
            } else {
                path.push(key);
                self.merge_field(&mut original, value, path)?;
                path.pop();
            }
        }
        for (key, values) in deletions {
            delete_from_primitive_list(&mut original, &key, values)?;
        }
        Ok(original)
    }

    /// Merges `patch` into the field `path` names (its last element) of `map`.
    fn merge_field(
        &self,
        map: &mut Map<String, Value>,
        patch: Value,
        path: &mut Path,
    ) -> Result<()> {
        let key = path.last().expect("field path").clone();
        match map.get_mut(&key) {
            Some(slot) => *slot = self.merge_value(Some(std::mem::take(slot)), patch, path)?,
            None => {
                let value = self.merge_value(None, patch, path)?;
                map.insert(key, value);
            }
        }
        Ok(())
    }

    /// Values of different types (or a value with nothing live) are replaced by the patch.
    fn merge_value(&self, original: Option<Value>, patch: Value, path: &mut Path) -> Result<Value> {
        Ok(match (original, patch) {
            (Some(Value::Object(original)), Value::Object(patch)) => {
                Value::Object(self.merge_map(original, patch, path)?)
            }
            (_, Value::Object(patch)) => Value::Object(self.merge_map(Map::new(), patch, path)?),
            (Some(Value::Array(original)), Value::Array(patch)) => {
                Value::Array(self.merge_list(original, patch, path)?)
            }
            (_, Value::Array(patch)) => Value::Array(self.merge_list(Vec::new(), patch, path)?),
            (_, scalar) => scalar,
        })
    }

    fn merge_list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &mut Path,
    ) -> Result<Vec<Value>> {
        self.merge_list_tracked(original, patch, path, &mut LiveOrder::default())
    }

    /// Merges two lists as the field's strategy says; `live_order` learns the live order a
    /// `$setElementOrder` of this list is resolved against.
    fn merge_list_tracked(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        path: &mut Path,
        live_order: &mut LiveOrder,
    ) -> Result<Vec<Value>> {
        let key = match self.strategy(path) {
            ListStrategy::Replace => {
                return patch
                    .into_iter()
                    .map(|item| self.clean(item, path))
                    .collect();
            }
            ListStrategy::Merge { .. } if original.is_empty() && patch.is_empty() => {
                return Ok(original);
            }
            ListStrategy::Merge { key } => key,
        };
        match (element_kind(&[&original, &patch])?, key) {
            (Kind::Object, Some(key)) => self.merge_keyed(original, patch, key, path, live_order),
            (Kind::Object, None) => Err(PatchError::MapsWithoutMergeKey),
            (_, Some(_)) => {
                let first = original.iter().chain(&patch).next().unwrap_or(&Value::Null);
                Err(bad_arg(GO_MAP, first))
            }
            (_, None) => Ok(union(original, patch)),
        }
    }

    /// A value added whole: nulls and directives are resolved against nothing.
    fn clean(&self, value: Value, path: &mut Path) -> Result<Value> {
        match value {
            Value::Object(map) => Ok(Value::Object(self.merge_map(Map::new(), map, path)?)),
            Value::Array(items) => {
                let items = items.into_iter().map(|item| self.clean(item, path));
                Ok(Value::Array(items.collect::<Result<_>>()?))
            }
            scalar => Ok(scalar),
        }
    }

    /// Merges lists of maps by `key`, then orders the result (apimachinery's `mergeSlice`).
    fn merge_keyed(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        path: &mut Path,
        live_order: &mut LiveOrder,
    ) -> Result<Vec<Value>> {
        *live_order = LiveOrder::new(ids(&original, Some(key)));
        let (mut original, patch) =
            self.apply_list_directives(original, patch, key, path, live_order)?;
        let server_ids = ids(&original, Some(key));
        let patch_ids = order_ids(&patch, Some(key))?;
        for (item, id) in patch.into_iter().zip(&patch_ids) {
            let Value::Object(item) = item else {
                return Err(bad_arg(GO_MAP, &item));
            };
            match original.iter_mut().find(|live| live.get(key) == Some(id)) {
                Some(Value::Object(live)) => {
                    *live = self.merge_map(std::mem::take(live), item, path)?
                }
                _ => {
                    original.push(Value::Object(self.merge_map(Map::new(), item, path)?));
                    live_order.push(id);
                }
            }
        }
        let (patch_items, server_only) = partition(original, &patch_ids, Some(key))?;
        Ok(normalize_order(
            patch_items,
            server_only,
            &patch_ids,
            &server_ids,
            Some(key),
        ))
    }

    /// Resolves `$patch` entries: `delete` removes live entries by key, `replace` makes the
    /// patch's plain entries the whole list. Returns the live list and the plain entries.
    fn apply_list_directives(
        &self,
        mut original: Vec<Value>,
        patch: Vec<Value>,
        key: &str,
        path: &mut Path,
        live_order: &mut LiveOrder,
    ) -> Result<(Vec<Value>, Vec<Value>)> {
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Some(directive) = item.get(DIRECTIVE) else {
                plain.push(item);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let id = merge_key(&item, key)?;
                    original.retain(|live| live.get(key) != Some(id));
                    live_order.remove(id);
                }
                Some("replace") => replace = true,
                Some("merge") => {}
                _ => {
                    return Err(bad_patch_type(
                        directive,
                        item.as_object().expect("map entry"),
                    ))
                }
            }
        }
        if replace {
            let items = plain.into_iter().map(|item| self.clean(item, path));
            return Ok((items.collect::<Result<_>>()?, Vec::new()));
        }
        Ok((original, plain))
    }

    /// Handles every `$setElementOrder/<list>` of `patch`: merges that list (removing it from
    /// `patch`) and puts the result in the given order (apimachinery's `mergePatchIntoOriginal`).
    fn merge_ordered_lists(
        &self,
        original: &mut Map<String, Value>,
        patch: &mut Map<String, Value>,
        path: &mut Path,
    ) -> Result<()> {
        let directives: Vec<String> = patch
            .keys()
            .filter(|key| key.starts_with(SET_ELEMENT_ORDER))
            .cloned()
            .collect();
        for directive in directives {
            let order = patch.remove(&directive).expect("listed key");
            let name = directive_target(&directive, SET_ELEMENT_ORDER)?;
            path.push(name.clone());
            let ordered =
                self.merge_ordered_list(original.get(&name), patch.get(&name), order, path);
            path.pop();
            if let Some(list) = ordered? {
                original.insert(name.clone(), Value::Array(list));
                patch.remove(&name);
            }
        }
        Ok(())
    }

    /// The merged, ordered list; `None` when there is nothing to order (no list on either
    /// side, or a list the patch replaces anyway).
    fn merge_ordered_list(
        &self,
        live: Option<&Value>,
        patch: Option<&Value>,
        order: Value,
        path: &mut Path,
    ) -> Result<Option<Vec<Value>>> {
        let order = as_list(order)?;
        let live = live.map(|list| as_list(list.clone())).transpose()?;
        let patch = patch.map(|list| as_list(list.clone())).transpose()?;
        let ListStrategy::Merge { key } = self.strategy(path) else {
            return Ok(None);
        };
        validate_order(patch.as_deref().unwrap_or_default(), &order, key)?;
        let mut live_order = LiveOrder::new(ids(live.as_deref().unwrap_or_default(), key));
        let merged = match (live, patch) {
            (None, None) => return Ok(None),
            (Some(live), None) => live,
            (live, Some(patch)) => {
                self.merge_list_tracked(live.unwrap_or_default(), patch, path, &mut live_order)?
            }
        };
        let order_ids = order_ids(&order, key)?;
        let (patch_items, server_only) = partition(merged, &order_ids, key)?;
        Ok(Some(normalize_order(
            patch_items,
            server_only,
            &order_ids,
            &live_order.ids,
            key,
        )))
    }
}

/// The live order a `$setElementOrder` is resolved against. apimachinery deletes entries from
/// the live list in place and appends new ones to what remains, and then reads the live list
/// at its old length: entries shift left over deleted ones and the first new entries show
/// up in the freed tail. Mirroring that keeps `kubectl apply` orders identical.
#[derive(Debug, Default)]
struct LiveOrder {
    ids: Vec<Value>,
    len: usize,
}

impl LiveOrder {
    fn new(ids: Vec<Value>) -> Self {
        LiveOrder {
            len: ids.len(),
            ids,
        }
    }

    fn remove(&mut self, id: &Value) {
        while let Some(index) = self.ids[..self.len].iter().position(|live| live == id) {
            for at in index..self.len - 1 {
                self.ids[at] = self.ids[at + 1].clone();
            }
            self.len -= 1;
        }
    }

    fn push(&mut self, id: &Value) {
        if let Some(slot) = self.ids.get_mut(self.len) {
            *slot = id.clone();
        }
        self.len += 1;
    }
}

/// `$retainKeys`: the live map keeps only the listed keys, and the patch may set no others.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<()> {
    let Some(retained) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retained) = retained else {
        return Err(PatchError::BadRetainKeys);
    };
    let listed = |key: &str| retained.iter().any(|item| item.as_str() == Some(key));
    let unlisted = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !key.starts_with(SET_ELEMENT_ORDER)
            && !listed(key)
    });
    if unlisted {
        return Err(PatchError::BadRetainKeys);
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// The field a `$prefix/<field>` directive key names.
fn directive_target(key: &str, prefix: &str) -> Result<String> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(PatchError::BadPrimitiveList),
        _ => Err(PatchError::BadSetElementOrder),
    }
}

/// Removes `values` from the primitive list `key`; nothing to do when there is no list.
fn delete_from_primitive_list(
    map: &mut Map<String, Value>,
    key: &str,
    values: Value,
) -> Result<()> {
    if values.is_null() {
        return Ok(());
    }
    let values = as_list(values)?;
    if let Some(Value::Array(list)) = map.get_mut(key) {
        list.retain(|item| !values.contains(item));
    }
    Ok(())
}

/// The union of two primitive lists, ordered like every merged list.
fn union(original: Vec<Value>, patch: Vec<Value>) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for item in original.iter().chain(&patch) {
        if !merged.contains(item) {
            merged.push(item.clone());
        }
    }
    let (patch_items, server_only): (Vec<_>, Vec<_>) =
        merged.into_iter().partition(|item| patch.contains(item));
    normalize_order(patch_items, server_only, &patch, &original, None)
}

/// Checks that the patch's entries appear in `$setElementOrder` and in the same relative
/// order (entries carrying `$patch` are exempt).
fn validate_order(patch: &[Value], order: &[Value], key: Option<&str>) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut plain = Vec::with_capacity(patch.len());
    for item in patch {
        if key.is_some() && item.as_object().is_none() {
            return Err(bad_arg(GO_MAP, item));
        }
        if item.get(DIRECTIVE).is_none() {
            plain.push(item);
        }
    }
    let mut next = 0;
    for wanted in order {
        let Some(item) = plain.get(next) else { break };
        if same_entry(item, wanted, key)? {
            next += 1;
        }
    }
    if next < plain.len() {
        return Err(PatchError::OrderMismatch {
            patch: go_list(patch),
            order: go_list(order),
        });
    }
    Ok(())
}

fn same_entry(left: &Value, right: &Value, key: Option<&str>) -> Result<bool> {
    match key {
        None => Ok(left == right),
        Some(key) => {
            if right.as_object().is_none() {
                return Err(bad_arg(GO_MAP, right));
            }
            Ok(merge_key(left, key)? == merge_key(right, key)?)
        }
    }
}

/// Splits `merged` into the entries named in `order_ids` and the live-only rest.
fn partition(
    merged: Vec<Value>,
    order_ids: &[Value],
    key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let mut in_patch = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let id = match key {
            Some(key) => merge_key(&item, key)?,
            None => &item,
        };
        if order_ids.contains(id) {
            in_patch.push(item);
        } else {
            server_only.push(item);
        }
    }
    Ok((in_patch, server_only))
}

/// Sorts patch entries by `patch_order` and live-only entries by `server_order`, then
/// interleaves them: a live-only entry goes first only when both it and the patch entry it
/// is compared with are live, and it is live-earlier.
fn normalize_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Vec<Value> {
    let position = |order: &[Value], item: &Value| {
        let id = identity(item, key);
        order.iter().position(|candidate| *candidate == id)
    };
    patch_items.sort_by_key(|item| position(patch_order, item).unwrap_or(usize::MAX));
    server_only.sort_by_key(|item| position(server_order, item).unwrap_or(usize::MAX));
    let mut result = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!(
                (position(server_order, l), position(server_order, r)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        result.extend(if take_left { left.next() } else { right.next() });
    }
    result
}

/// What identifies a list entry: its merge key's value, or the primitive itself.
fn identity(item: &Value, key: Option<&str>) -> Value {
    match key {
        Some(key) => item.get(key).cloned().unwrap_or(Value::Null),
        None => item.clone(),
    }
}

fn ids(items: &[Value], key: Option<&str>) -> Vec<Value> {
    items.iter().map(|item| identity(item, key)).collect()
}

fn order_ids(order: &[Value], key: Option<&str>) -> Result<Vec<Value>> {
    match key {
        Some(key) => order
            .iter()
            .map(|item| merge_key(item, key).cloned())
            .collect(),
        None => Ok(order.to_vec()),
    }
}

fn merge_key<'v>(item: &'v Value, key: &str) -> Result<&'v Value> {
    let map = item.as_object().ok_or_else(|| bad_arg(GO_MAP, item))?;
    map.get(key).ok_or_else(|| PatchError::NoMergeKey {
        map: go_value(item),
        key: key.to_string(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Object,
}

/// The one kind of element the lists share (apimachinery's `sliceElementType`).
fn element_kind(lists: &[&[Value]]) -> Result<Kind> {
    let mut found = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let kind = match item {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Object(_) => Kind::Object,
            Value::Array(_) => return Err(PatchError::ListOfLists),
        };
        if found.is_some_and(|seen| seen != kind) {
            let lists = lists
                .iter()
                .map(|list| go_list(list))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(PatchError::MixedElementTypes(format!("[{lists}]")));
        }
        found = Some(kind);
    }
    Ok(found.unwrap_or(Kind::Null))
}

fn as_list(value: Value) -> Result<Vec<Value>> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(bad_arg(GO_LIST, &other)),
    }
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::BadPatchType {
        directive: go_value(directive),
        map: go_map(map),
    }
}

fn bad_arg(expected: &'static str, actual: &Value) -> PatchError {
    PatchError::BadArgType {
        expected,
        actual: go_type(actual),
    }
}

const GO_MAP: &str = "map[string]interface {}";
const GO_LIST: &str = "[]interface {}";

/// The Go type apimachinery would name for a decoded JSON value.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(number) if number.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => GO_LIST,
        Value::Object(_) => GO_MAP,
    }
}

/// A value as Go's `%v` prints the decoded JSON, so messages read like apimachinery's.
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::String(text) => text.clone(),
        Value::Array(items) => go_list(items),
        Value::Object(map) => go_map(map),
        other => other.to_string(),
    }
}

fn go_list(items: &[Value]) -> String {
    let items: Vec<String> = items.iter().map(go_value).collect();
    format!("[{}]", items.join(" "))
}

fn go_map(map: &Map<String, Value>) -> String {
    let mut entries: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}:{}", go_value(v)))
        .collect();
    entries.sort();
    format!("map[{}]", entries.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::schema::BuiltinSchema;

    /// The `MergeItem` test type of apimachinery's `patch_test.go`: `mergingList`,
    /// `mergeItemPtr` and `retainKeysMergingList` merge by `name`, `mergingIntList` is a set.
    struct MergeItem;

    impl MergeSchema for MergeItem {
        fn list_strategy(&self, path: &[&str]) -> ListStrategy {
            match path.last().copied() {
                Some("mergingList" | "mergeItemPtr" | "retainKeysMergingList") => {
                    ListStrategy::Merge { key: Some("name") }
                }
                Some("mergingIntList") => ListStrategy::Merge { key: None },
                _ => ListStrategy::Replace,
            }
        }

        fn retain_keys(&self, path: &[&str]) -> bool {
            matches!(
                path.last().copied(),
                Some("retainKeysMap" | "retainKeysMergingList")
            )
        }
    }

    fn yaml(text: &str) -> Value {
        serde_yaml_ng::from_str(text).expect("test YAML")
    }

    /// Runs a YAML list of `{name, live, patch, want | error}` cases.
    fn check_table(table: &str, schema: &dyn MergeSchema) {
        let cases = yaml(table);
        let mut failures = Vec::new();
        for case in cases.as_array().expect("case list") {
            let name = case["name"].as_str().expect("case name");
            let got = apply(&case["live"], &case["patch"], schema);
            let passed = match (&case["error"], &got) {
                (Value::String(error), Err(err)) => err.to_string().contains(error.as_str()),
                (Value::Null, Ok(got)) => *got == case["want"],
                _ => false,
            };
            if !passed {
                failures.push(format!("{name}:\n  want {}\n  got  {got:?}", case["want"]));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn maps_merge_and_nulls_delete() {
        check_table(
            r#"
- name: add field to map
  live: {name: 1, other: a}
  patch: {value: 1}
  want: {name: 1, value: 1, other: a}
- name: add field and delete field from map
  live: {name: 1, other: a}
  patch: {name: null, value: 1}
  want: {value: 1, other: a}
- name: null for a missing key is dropped
  live: {name: 2}
  patch: {name: 1, value: 1, other: null}
  want: {name: 1, value: 1}
- name: delete field from nested map
  live: {simpleMap: {key1: 1, key2: 1, other: a}}
  patch: {simpleMap: {key2: null}}
  want: {simpleMap: {key1: 1, other: a}}
- name: nil patch
  live: {name: 1}
  patch: {}
  want: {name: 1}
- name: a value of another type replaces
  live: {mergingList: [{name: 1}, {name: 1}], value: {a: 1}}
  patch: {mergingList: {}, value: [x]}
  want: {mergingList: {}, value: [x]}
"#,
            &MergeItem,
        );
    }

    #[test]
    fn map_directives() {
        check_table(
            r#"
- name: delete map from nested map
  live: {simpleMap: {key1: 1, key2: 1}}
  patch: {simpleMap: {$patch: delete}}
  want: {simpleMap: {}}
- name: delete all keys from map
  live: {name: 1, value: 1}
  patch: {$patch: replace}
  want: {}
- name: add key and delete all keys from map
  live: {name: 1, value: 1}
  patch: {other: a, $patch: replace}
  want: {other: a}
- name: explicit merge
  live: {simpleMap: {key1: 1}}
  patch: {simpleMap: {$patch: merge, key2: 2}}
  want: {simpleMap: {key1: 1, key2: 2}}
- name: unknown directive
  live: {}
  patch: {$patch: squash}
  error: "unknown patch type: squash in map: map[$patch:squash]"
"#,
            &MergeItem,
        );
    }

    #[test]
    fn lists_merge_by_key() {
        check_table(
            r#"
- name: merge lists of maps
  live: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}
  patch:
    $setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]
  want: {mergingList: [{name: 4, value: 4}, {name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
- name: replace map field value in merging list
  live: {mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2, other: b}]}
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList: [{name: 1, value: a}]
  want: {mergingList: [{name: 1, value: a, other: a}, {name: 2, value: 2, other: b}]}
- name: delete field from map in merging list
  live: {mergingList: [{name: 1, value: 1, other: a}, {name: 2, value: 2}]}
  patch: {mergingList: [{name: 1, value: null}]}
  want: {mergingList: [{name: 1, other: a}, {name: 2, value: 2}]}
- name: replace non merging list nested in merging list
  live: {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1}, {name: 2, value: 2}]}, {name: 2}]}
  patch: {mergingList: [{name: 1, nonMergingList: [{name: 1, value: 1}]}]}
  want: {mergingList: [{name: 1, other: a, nonMergingList: [{name: 1, value: 1}]}, {name: 2}]}
- name: add field to map in merging list nested in merging list
  live: {mergingList: [{name: 1, other: a, mergingList: [{name: 1, value: a, other: c}, {name: 2, value: b, other: d}]}, {name: 2, other: b}]}
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}]
    mergingList:
      - $setElementOrder/mergingList: [{name: 1}, {name: 2}]
        name: 1
        mergingList: [{name: 1, value: 1}, {name: 2, value: 2}]
  want: {mergingList: [{name: 1, other: a, mergingList: [{name: 1, value: 1, other: c}, {name: 2, value: 2, other: d}]}, {name: 2, other: b}]}
- name: patch order is kept without setElementOrder
  live: {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  patch: {mergingList: [{name: 3, value: c}, {name: 1, value: a}]}
  want: {mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]}
- name: a new entry goes before the live ones without setElementOrder
  live: {mergingList: [{name: 1}, {name: 2}]}
  patch: {mergingList: [{name: 3}]}
  want: {mergingList: [{name: 3}, {name: 1}, {name: 2}]}
- name: nested patch merge with empty list
  live: {name: hi, mergingList: [{name: hello2}]}
  patch:
    $setElementOrder/mergingList: [{name: hello}, {name: doesntexist}]
    mergingList: [{name: hello}]
  want: {name: hi, mergingList: [{name: hello}, {name: hello2}]}
- name: merge into an absent list resolves directives
  live: {name: hi}
  patch: {mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]}
  want: {name: hi, mergingList: [{name: hello}]}
- name: missing merge key should error out
  live: {mergingList: [{name: 1, value: a}]}
  patch: {mergingList: [{value: b}]}
  error: "map: map[value:b] does not contain declared merge key: name"
- name: list element types must agree
  live: {mergingList: [{name: 1}]}
  patch: {mergingList: [a]}
  error: "list element types are not identical"
"#,
            &MergeItem,
        );
    }

    #[test]
    fn list_entry_directives() {
        check_table(
            r#"
- name: delete map from merging list
  live: {mergingList: [{name: 1}, {name: 2, other: b}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}]
    mergingList: [{name: 1, $patch: delete}]
  want: {mergingList: [{name: 2, other: b}]}
- name: delete missing map from merging list with conflict
  live: {mergingList: [{name: 3, other: a}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}]
    mergingList: [{name: 2}, {name: 1, $patch: delete}]
  want: {mergingList: [{name: 2}, {name: 3, other: a}]}
- name: add map and delete map from merging list
  live: {mergingList: [{name: 1}, {name: 2, other: b}, {name: 4, other: c}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 3}, {name: 1, $patch: delete}]
  want: {mergingList: [{name: 2, other: b}, {name: 4, other: c}, {name: 3}]}
- name: add map and delete map from merging list with conflict
  live: {mergingList: [{name: 1, other: a}, {name: 4, other: c}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}]
    mergingList: [{name: 2}, {name: 3}, {name: 1, $patch: delete}]
  want: {mergingList: [{name: 4, other: c}, {name: 2}, {name: 3}]}
- name: delete all duplicate entries in a merging list
  live: {mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}, {name: 3}, {name: 3}]}
  patch: {mergingList: [{name: 1, $patch: delete}, {name: 3, $patch: delete}]}
  want: {mergingList: [{name: 2, value: a}]}
- name: delete all items from merging list
  live: {mergingList: [{name: 1}, {name: 2}]}
  patch: {mergingList: [{$patch: replace}]}
  want: {mergingList: []}
- name: replace the whole merging list
  live: {mergingList: [{name: 1, value: a}, {name: 2}]}
  patch: {mergingList: [{name: 3, value: null}, {$patch: replace}]}
  want: {mergingList: [{name: 3}]}
- name: delete needs the merge key
  live: {mergingList: [{name: 1}]}
  patch: {mergingList: [{$patch: delete}]}
  error: "does not contain declared merge key: name"
"#,
            &MergeItem,
        );
    }

    #[test]
    fn set_element_order() {
        check_table(
            r#"
- name: change an item in a list and preserve order
  live: {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
  patch:
    $setElementOrder/mergingList: [{name: 2}, {name: 3}, {name: 1}]
    mergingList: [{name: 3, value: x}]
  want: {mergingList: [{name: 2, value: 2, other: b}, {name: 3, value: x}, {name: 1, other: a}]}
- name: set elements order in a list with server-only items
  live: {mergingList: [{name: 1, other: a}, {name: 2, value: 2}, {name: 9}, {name: 3, value: 3}, {name: 4, value: 4}]}
  patch: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}]}
  want: {mergingList: [{name: 2, value: 2}, {name: 1, other: a}, {name: 9}, {name: 4, value: 4}, {name: 3, value: 3}]}
- name: set elements order in a int list with server-only items
  live: {mergingIntList: [1, 2, 7, 9, 8, 3, 4]}
  patch: {$setElementOrder/mergingIntList: [2, 1, 4, 3]}
  want: {mergingIntList: [2, 1, 7, 9, 8, 4, 3]}
- name: setElementOrder may name entries the list lacks
  live: {mergingList: [{name: 1}, {name: 3}]}
  patch:
    $setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}]
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]
  want: {mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}
- name: set element order for a merging list with duplicates
  live: {mergingList: [{name: 1}, {name: 2, value: dup1}, {name: 3}, {name: 2, value: dup2}, {name: 4}]}
  patch: {$setElementOrder/mergingList: [{name: 2}, {name: 1}, {name: 4}, {name: 3}, {name: 2}]}
  want: {mergingList: [{name: 2, value: dup1}, {name: 2, value: dup2}, {name: 1}, {name: 4}, {name: 3}]}
- name: delete and reorder in one list, reorder in another
  live: {mergingList: [{name: a}, {name: b}], mergeItemPtr: [{name: c}, {name: d}]}
  patch:
    $setElementOrder/mergingList: [{name: b}]
    $setElementOrder/mergeItemPtr: [{name: d}, {name: c}]
    mergingList: [{$patch: delete, name: a}]
  want: {mergingList: [{name: b}], mergeItemPtr: [{name: d}, {name: c}]}
- name: order in setElementOrder and patch list must match
  live: {mergingList: [{name: 1}, {name: 3}, {name: 2}]}
  patch:
    $setElementOrder/mergingList: [{name: 1}, {name: 2}, {name: 3}]
    mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]
  error: "doesn't match $setElementOrder list"
- name: setElementOrder of a replaced list is ignored
  live: {nonMergingList: [{name: 1}]}
  patch:
    $setElementOrder/nonMergingList: [{name: 3}, {name: 2}]
    nonMergingList: [{name: 2}, {name: 3}]
  want: {nonMergingList: [{name: 2}, {name: 3}]}
- name: setElementOrder must be a list
  live: {}
  patch: {$setElementOrder/mergingList: {name: 1}}
  error: "expected a []interface {}, but received a map[string]interface {}"
"#,
            &MergeItem,
        );
    }

    #[test]
    fn primitive_lists() {
        check_table(
            r#"
- name: unique scalars when merging lists
  live: {mergingIntList: [1, 2]}
  patch: {mergingIntList: [2, 3]}
  want: {mergingIntList: [1, 2, 3]}
- name: add an item in a list of primitives and preserve order
  live: {mergingIntList: [1, 4, 2]}
  patch: {$setElementOrder/mergingIntList: [3, 1, 2], mergingIntList: [3]}
  want: {mergingIntList: [3, 1, 4, 2]}
- name: delete all duplicate items in lists of scalars
  live: {mergingIntList: [1, 2, 3, 3, 4]}
  patch: {$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}
  want: {mergingIntList: [1, 2, 4]}
- name: add and delete items in lists of scalars
  live: {mergingIntList: [1, 2, 3, 4]}
  patch:
    $setElementOrder/mergingIntList: [1, 2, 4]
    $deleteFromPrimitiveList/mergingIntList: [3]
    mergingIntList: [4]
  want: {mergingIntList: [1, 2, 4]}
- name: deleteFromPrimitiveList on nonexistent primitive list adds nothing
  live: {foo: [bar]}
  patch: {$deleteFromPrimitiveList/mergingIntList: [3]}
  want: {foo: [bar]}
- name: deleteFromPrimitiveList deletes from a list without merge strategy
  live: {nonMergingIntList: [1, 2, 3]}
  patch: {$deleteFromPrimitiveList/nonMergingIntList: [2]}
  want: {nonMergingIntList: [1, 3]}
- name: replace list of scalars
  live: {nonMergingIntList: [1, 2]}
  patch: {nonMergingIntList: [2, 3]}
  want: {nonMergingIntList: [2, 3]}
"#,
            &MergeItem,
        );
    }

    #[test]
    fn retain_keys() {
        check_table(
            r#"
- name: retainKeys map should clear defaulted field with conflict (discriminated union)
  live: {retainKeysMap: {name: type1, value: foo}}
  patch: {retainKeysMap: {$retainKeys: [name, other], name: type2, other: bar}}
  want: {retainKeysMap: {name: type2, other: bar}}
- name: retainKeys map deletes a field and clears a field
  live: {retainKeysMap: {name: foo, value: bar, other: a}}
  patch: {retainKeysMap: {$retainKeys: [name], value: null}}
  want: {retainKeysMap: {name: foo}}
- name: retainKeys map can change a field when no retainKeys directive present
  live: {retainKeysMap: {name: foo, value: a}}
  patch: {retainKeysMap: {value: b}}
  want: {retainKeysMap: {name: foo, value: b}}
- name: retainKeys map adds an item and deletes an item in nested merging int list
  live: {retainKeysMap: {name: foo, mergingIntList: [1, 2, 3, 4]}}
  patch:
    retainKeysMap:
      $retainKeys: [mergingIntList, name]
      mergingIntList: [5]
      $deleteFromPrimitiveList/mergingIntList: [2]
      $setElementOrder/mergingIntList: [1, 3, 5]
  want: {retainKeysMap: {name: foo, mergingIntList: [1, 3, 5, 4]}}
- name: retainKeys list of maps clears a field with conflict
  live: {retainKeysMergingList: [{name: bar}, {name: foo, value: new, other: x}]}
  patch:
    $setElementOrder/retainKeysMergingList: [{name: bar}, {name: foo}]
    retainKeysMergingList: [{$retainKeys: [name, value], name: foo, value: modified}]
  want: {retainKeysMergingList: [{name: bar}, {name: foo, value: modified}]}
- name: the patch may only set retained keys
  live: {retainKeysMap: {name: foo}}
  patch: {retainKeysMap: {$retainKeys: [name], value: bar}}
  error: "invalid patch format of retainKeys"
- name: retainKeys must be a list
  live: {retainKeysMap: {name: foo}}
  patch: {retainKeysMap: {$retainKeys: name}}
  error: "invalid patch format of retainKeys"
"#,
            &MergeItem,
        );
    }

    #[test]
    fn directives_never_reach_the_result() {
        check_table(
            r#"
- name: values added whole are cleaned
  live: {}
  patch:
    simpleMap: {$patch: replace, key1: a, key2: null}
    mergingList:
      - {name: 1, $retainKeys: [name, value], value: x, other: null}
      - {name: 2, $patch: delete}
      - name: 3
        $setElementOrder/mergingIntList: [2, 1]
        mergingIntList: [2, 1]
        $deleteFromPrimitiveList/mergingIntList: [3]
  want:
    simpleMap: {key1: a}
    mergingList: [{name: 1, value: x}, {name: 3, mergingIntList: [2, 1]}]
"#,
            &MergeItem,
        );
    }

    #[test]
    fn documents_must_be_objects() {
        let err = apply(&yaml("[1]"), &yaml("{}"), &MergeItem).unwrap_err();
        assert_eq!(err, PatchError::BadJsonDoc);
        assert_eq!(err.to_string(), "invalid JSON document");
        assert_eq!(
            apply(&Value::Null, &yaml("{a: 1}"), &MergeItem).unwrap(),
            yaml("{a: 1}")
        );
    }

    fn deployment() -> Value {
        yaml(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default, finalizers: [a, b], annotations: {x: "1"}}
spec:
  replicas: 1
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 25%, maxUnavailable: 25%}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: c
          image: nginx:1.25
          env: [{name: A, value: "1"}, {name: B, value: "2"}]
          ports: [{containerPort: 80, protocol: TCP}]
          volumeMounts: [{name: data, mountPath: /data}]
      tolerations: [{key: dedicated, value: test-team, effect: NoSchedule}]
      volumes: [{name: data, emptyDir: {}}]
"#,
        )
    }

    fn patched(live: &Value, kind: &str, patch: &str) -> Value {
        apply(
            live,
            &serde_json::from_str(patch).expect("patch JSON"),
            &BuiltinSchema::for_kind(kind),
        )
        .expect("patch applies")
    }

    #[test]
    fn kubectl_apply_body_on_a_deployment() {
        let body = r#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"spec":{"replicas":2,"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],"containers":[{"image":"nginx:1.27","name":"c"}]}}}}"#;
        let result = patched(&deployment(), "Deployment", body);
        let mut want = deployment();
        want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            "{}".into();
        want["spec"]["replicas"] = 2.into();
        want["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27".into();
        assert_eq!(result, want);
    }

    #[test]
    fn kubectl_rollout_restart_and_set_image() {
        let restart = r#"{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2025-01-01T00:00:00Z"}}}}}"#;
        let result = patched(&deployment(), "Deployment", restart);
        assert_eq!(result["spec"]["template"]["metadata"], yaml("{labels: {app: web}, annotations: {kubectl.kubernetes.io/restartedAt: '2025-01-01T00:00:00Z'}}"));
        let set_image =
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"nginx:1.27","name":"c"}]}}}}"#;
        let result = patched(&deployment(), "Deployment", set_image);
        let containers = &result["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers.as_array().map(Vec::len), Some(1));
        assert_eq!(containers[0]["image"], "nginx:1.27");
        assert_eq!(
            containers[0]["env"],
            deployment()["spec"]["template"]["spec"]["containers"][0]["env"]
        );
    }

    #[test]
    fn kubectl_patch_adds_containers_and_replaces_tolerations() {
        // The kubernetes.io "Update API Objects in Place Using kubectl patch" walkthrough.
        let result = patched(
            &deployment(),
            "Deployment",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"c2","image":"redis"}]}}}}"#,
        );
        let names: Vec<&Value> = result["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, ["c2", "c"]);
        let result = patched(
            &deployment(),
            "Deployment",
            r#"{"spec":{"template":{"spec":{"tolerations":[{"effect":"NoSchedule","key":"disktype","value":"ssd"}]}}}}"#,
        );
        assert_eq!(
            result["spec"]["template"]["spec"]["tolerations"],
            yaml("[{effect: NoSchedule, key: disktype, value: ssd}]")
        );
    }

    #[test]
    fn container_fields_merge_by_their_keys() {
        let body = r#"{"spec":{"template":{"spec":{"containers":[{"name":"c",
            "env":[{"name":"B","value":"3"},{"name":"C","value":"4"},{"$patch":"delete","name":"A"}],
            "ports":[{"containerPort":80,"name":"http"}],
            "volumeMounts":[{"mountPath":"/cache","name":"cache"}]}]}}}}"#;
        let result = patched(&deployment(), "Deployment", body);
        let container = &result["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(
            container["env"],
            yaml(r#"[{name: B, value: "3"}, {name: C, value: "4"}]"#)
        );
        assert_eq!(
            container["ports"],
            yaml("[{containerPort: 80, protocol: TCP, name: http}]")
        );
        assert_eq!(
            container["volumeMounts"],
            yaml("[{name: cache, mountPath: /cache}, {name: data, mountPath: /data}]")
        );
    }

    #[test]
    fn retain_keys_switch_union_members() {
        let body = r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"},
            "template":{"spec":{"$setElementOrder/volumes":[{"name":"data"}],
            "volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"name":"data"}]}}}}"#;
        let result = patched(&deployment(), "Deployment", body);
        assert_eq!(result["spec"]["strategy"], yaml("{type: Recreate}"));
        assert_eq!(
            result["spec"]["template"]["spec"]["volumes"],
            yaml("[{name: data, configMap: {name: cm}}]")
        );
    }

    #[test]
    fn metadata_finalizers_and_owner_references() {
        let result = patched(
            &deployment(),
            "Deployment",
            r#"{"metadata":{"finalizers":["c","a"]}}"#,
        );
        assert_eq!(result["metadata"]["finalizers"], yaml("[c, a, b]"));
        let body = r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["a"],"$setElementOrder/finalizers":["b"]}}"#;
        assert_eq!(
            patched(&deployment(), "Deployment", body)["metadata"]["finalizers"],
            yaml("[b]")
        );
        let live = yaml("{metadata: {ownerReferences: [{uid: u1, kind: ReplicaSet, name: a}, {uid: u2, kind: Job, name: b}]}}");
        let result = patched(
            &live,
            "Pod",
            r#"{"metadata":{"ownerReferences":[{"uid":"u1","controller":true},{"$patch":"delete","uid":"u2"}]}}"#,
        );
        assert_eq!(result, yaml("{metadata: {ownerReferences: [{uid: u1, kind: ReplicaSet, name: a, controller: true}]}}"));
    }

    #[test]
    fn cron_job_pod_template_merges() {
        let live = yaml("{spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: x}, {name: b, image: y}]}}}}}}");
        let body = r#"{"spec":{"jobTemplate":{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"z"}]}}}}}}"#;
        let result = patched(&live, "CronJob", body);
        assert_eq!(result, yaml("{spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: a, image: x}, {name: b, image: z}]}}}}}}"));
    }

    #[test]
    fn node_and_service_lists() {
        let node = yaml("{spec: {taints: [{key: a, effect: NoSchedule}]}, status: {conditions: [{type: Ready, status: 'False'}, {type: DiskPressure, status: 'False'}], addresses: [{type: InternalIP, address: 10.0.0.1}]}}");
        let body = r#"{"spec":{"taints":[{"key":"b","effect":"NoExecute"}]},"status":{"conditions":[{"type":"Ready","status":"True"}],"addresses":[{"type":"Hostname","address":"n1"}]}}"#;
        let result = patched(&node, "Node", body);
        assert_eq!(
            result["spec"]["taints"],
            yaml("[{key: b, effect: NoExecute}]")
        );
        assert_eq!(
            result["status"]["conditions"],
            yaml("[{type: Ready, status: 'True'}, {type: DiskPressure, status: 'False'}]")
        );
        assert_eq!(
            result["status"]["addresses"],
            yaml("[{type: Hostname, address: n1}, {type: InternalIP, address: 10.0.0.1}]")
        );
        let service = yaml("{spec: {ports: [{port: 80, targetPort: 8080}, {port: 443}]}}");
        let result = patched(
            &service,
            "Service",
            r#"{"spec":{"ports":[{"port":80,"targetPort":9090}]}}"#,
        );
        assert_eq!(
            result["spec"]["ports"],
            yaml("[{port: 80, targetPort: 9090}, {port: 443}]")
        );
    }

    #[test]
    fn container_without_name_is_rejected() {
        let live = yaml("{spec: {containers: [{name: c, image: nginx}]}}");
        let patch = yaml("{spec: {containers: [{image: redis}]}}");
        let err = apply(&live, &patch, &BuiltinSchema::for_kind("Pod")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "map: map[image:redis] does not contain declared merge key: name"
        );
    }

    #[test]
    fn kinds_without_merge_lists_merge_maps_only() {
        let live = yaml("{data: {a: '1', b: '2'}, binaryData: {c: eA==}}");
        let result = patched(
            &live,
            "ConfigMap",
            r#"{"data":{"a":null,"d":"4"},"binaryData":null}"#,
        );
        assert_eq!(result, yaml("{data: {b: '2', d: '4'}}"));
    }
}
