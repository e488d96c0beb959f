//! SMD's typed walkers over JSON values: the set of fields a value specifies
//! (`ToFieldSet`), validation of an applied configuration, the comparison of two versions of
//! an object (`Compare`), the merge of a configuration into an object (`Merge`, the config
//! winning) and the removal of a set of fields (`RemoveItems`).
//!
//! Atomic lists and maps, scalars, and empty or null containers are leaves: they are owned,
//! compared and replaced whole. Granular maps go field by field, associative lists entry by
//! entry (by key, or by value for sets), as `typed/{tofieldset,validate,compare,merge,remove}.go`
//! do.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{path_string, values_equal, Pe};
use super::set::Set;
use super::types::{Atom, ListKind, Ty, TypeSchema};

/// Fields `rhs` added, changed and removed relative to `lhs`.
#[derive(Debug, Default)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    /// The comparison without the fields in `ignored` and everything below them.
    pub fn exclude(self, ignored: &Set) -> Comparison {
        Comparison {
            added: self.added.recursive_difference(ignored),
            modified: self.modified.recursive_difference(ignored),
            removed: self.removed.recursive_difference(ignored),
        }
    }
}

/// The path element of a list entry.
pub fn item_pe(kind: &ListKind, item: &Value) -> Result<Pe, String> {
    match kind {
        ListKind::Atomic => Err("invalid indexing of non-associative list".into()),
        ListKind::Map(keys) => {
            let map = match item {
                Value::Object(map) => map,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields: Vec<(String, Value)> = keys
                .iter()
                .filter_map(|(key, default)| {
                    let value = map.get(key).or(default.as_ref())?;
                    Some((key.clone(), value.clone()))
                })
                .collect();
            if fields.is_empty() {
                let names: Vec<String> = keys
                    .iter()
                    .map(|(k, _)| peapod_api::validation::go_quote(k))
                    .collect();
                return Err(format!(
                    "associative list with keys has an element that omits all key fields [{}] \
                     (and doesn't have default values for any key fields)",
                    names.join(" ")
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(Pe::Key(fields))
        }
        ListKind::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            scalar => Ok(Pe::Value(scalar.clone())),
        },
    }
}

fn items(value: Option<&Value>) -> &[Value] {
    value.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn entries(value: Option<&Value>) -> Option<&Map<String, Value>> {
    value.and_then(Value::as_object)
}

fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.is_empty(),
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}

/// The walkers of one kind's types.
#[derive(Clone, Copy)]
pub struct Walker<'s> {
    pub schema: &'s TypeSchema,
}

impl<'s> Walker<'s> {
    pub fn new(schema: &'s TypeSchema) -> Walker<'s> {
        Walker { schema }
    }

    fn atom(&self, ty: Ty<'s>, value: &Value, path: &[Pe]) -> Option<Atom<'s>> {
        self.schema.atom(ty, Some(value), path)
    }

    /// The atom both sides share, or `None` when they must be compared as leaves (different
    /// shapes, or a value its type cannot hold). A null takes the other side's shape.
    fn shared_atom(
        &self,
        ty: Ty<'s>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &[Pe],
    ) -> Option<Atom<'s>> {
        fn shape(v: &Value) -> Option<u8> {
            match v {
                Value::Null => None,
                Value::Object(_) => Some(0),
                Value::Array(_) => Some(1),
                _ => Some(2),
            }
        }
        let (l, r) = (lhs.and_then(shape), rhs.and_then(shape));
        if l.is_some() && r.is_some() && l != r {
            return None;
        }
        let sample = match (lhs, rhs) {
            (_, Some(r)) if !r.is_null() => r,
            (Some(l), _) => l,
            (None, Some(r)) => r,
            (None, None) => return None,
        };
        self.atom(ty, sample, path)
    }

    // ----- ToFieldSet ------------------------------------------------------------------------

    /// The fields `value` specifies.
    pub fn field_set(&self, value: &Value) -> Set {
        let mut set = Set::new();
        self.collect_set(value, self.schema.root(), &mut Vec::new(), &mut set);
        set
    }

    fn collect_set(&self, value: &Value, ty: Ty<'s>, path: &mut Vec<Pe>, set: &mut Set) {
        let atom = match self.atom(ty, value, path) {
            Some(atom) if !atom.is_atomic() => atom,
            _ => return set.insert(path),
        };
        match (&atom, value) {
            (Atom::List { elem, kind }, Value::Array(list)) => {
                let pes: Vec<Option<Pe>> = list.iter().map(|i| item_pe(kind, i).ok()).collect();
                let mut seen = BTreeMap::<&Pe, usize>::new();
                for pe in pes.iter().flatten() {
                    *seen.entry(pe).or_default() += 1;
                }
                for (pe, count) in &seen {
                    if *count > 1 {
                        path.push((*pe).clone());
                        set.insert(path);
                        path.pop();
                    }
                }
                for (item, pe) in list.iter().zip(&pes) {
                    let Some(pe) = pe.as_ref().filter(|pe| seen[pe] == 1) else {
                        continue;
                    };
                    path.push(pe.clone());
                    self.collect_set(item, *elem, path, set);
                    set.insert(path);
                    path.pop();
                }
            }
            (Atom::Struct { .. } | Atom::Map { .. }, Value::Object(map)) => {
                for (key, child) in map {
                    path.push(Pe::field(key));
                    self.collect_set(child, atom.field(key), path, set);
                    if is_empty(Some(child)) && !child.is_array() || !atom.declares(key) {
                        set.insert(path);
                    }
                    path.pop();
                }
            }
            _ => {}
        }
    }

    // ----- validation --------------------------------------------------------------------------

    /// What SMD refuses in an applied configuration: undeclared fields, list entries without
    /// their keys, duplicate entries. Each error reads `<path>: <problem>`.
    pub fn validate(&self, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(value, self.schema.root(), &mut Vec::new(), &mut errors);
        errors
    }

    fn check(&self, value: &Value, ty: Ty<'s>, path: &mut Vec<Pe>, errors: &mut Vec<String>) {
        let Some(atom) = self.atom(ty, value, path) else {
            return;
        };
        let at = |path: &[Pe], message: String| {
            let prefix = path_string(path);
            if prefix.is_empty() {
                message
            } else {
                format!("{prefix}: {message}")
            }
        };
        match (&atom, value) {
            (Atom::List { elem, kind }, Value::Array(list)) => {
                let mut seen = BTreeSet::new();
                for (index, item) in list.iter().enumerate() {
                    let pe = if *kind == ListKind::Atomic {
                        Pe::Index(index)
                    } else {
                        match item_pe(kind, item) {
                            Ok(pe) => pe,
                            Err(err) => {
                                errors.push(at(path, format!("element {index}: {err}")));
                                continue;
                            }
                        }
                    };
                    if !seen.insert(pe.clone()) {
                        errors.push(at(path, format!("duplicate entries for key {pe}")));
                        continue;
                    }
                    path.push(pe);
                    self.check(item, *elem, path, errors);
                    path.pop();
                }
            }
            (Atom::Struct { .. } | Atom::Map { .. }, Value::Object(map)) => {
                for (key, child) in map {
                    path.push(Pe::field(key));
                    if matches!(atom, Atom::Struct { .. }) && !atom.declares(key) {
                        errors.push(at(path, "field not declared in schema".into()));
                    } else {
                        self.check(child, atom.field(key), path, errors);
                    }
                    path.pop();
                }
            }
            _ => {}
        }
    }

    // ----- Compare ---------------------------------------------------------------------------

    /// What changed from `lhs` to `rhs`.
    pub fn compare(&self, lhs: &Value, rhs: &Value) -> Comparison {
        let mut comparison = Comparison::default();
        let root = self.schema.root();
        self.compare_at(Some(lhs), Some(rhs), root, &mut Vec::new(), &mut comparison);
        comparison
    }

    fn compare_at(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        ty: Ty<'s>,
        path: &mut Vec<Pe>,
        out: &mut Comparison,
    ) {
        let atom = self.shared_atom(ty, lhs, rhs, path);
        let leaf = match &atom {
            None => true,
            Some(atom) if atom.is_atomic() => true,
            Some(_) => is_empty(lhs) && is_empty(rhs),
        };
        if leaf {
            match (lhs, rhs) {
                (None, _) => out.added.insert(path),
                (_, None) => out.removed.insert(path),
                (Some(l), Some(r)) if !values_equal(l, r) => out.modified.insert(path),
                _ => {}
            }
            return;
        }
        match atom {
            Some(Atom::List { elem, kind }) => self.compare_items(lhs, rhs, elem, &kind, path, out),
            Some(atom) => {
                let (l, r) = (entries(lhs), entries(rhs));
                let keys: BTreeSet<&String> =
                    l.iter().chain(r.iter()).flat_map(|m| m.keys()).collect();
                for key in keys {
                    path.push(Pe::field(key));
                    let (lv, rv) = (l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key)));
                    self.compare_at(lv, rv, atom.field(key), path, out);
                    path.pop();
                }
            }
            None => {}
        }
        match (lhs, rhs) {
            (None, _) => out.added.insert(path),
            (_, None) => out.removed.insert(path),
            _ => {}
        }
    }

    fn compare_items(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        elem: Ty<'s>,
        kind: &ListKind,
        path: &mut Vec<Pe>,
        out: &mut Comparison,
    ) {
        let mut order: Vec<Pe> = Vec::new();
        let mut sides: BTreeMap<Pe, (Vec<&Value>, Vec<&Value>)> = BTreeMap::new();
        for (right, list) in [(false, lhs), (true, rhs)] {
            for item in items(list) {
                let Ok(pe) = item_pe(kind, item) else {
                    continue;
                };
                let slot = sides.entry(pe.clone()).or_insert_with(|| {
                    order.push(pe);
                    Default::default()
                });
                if right { &mut slot.1 } else { &mut slot.0 }.push(item);
            }
        }
        for pe in order {
            let (l, r) = &sides[&pe];
            path.push(pe);
            match (l.len(), r.len()) {
                (0..=1, 0..=1) => {
                    self.compare_at(l.first().copied(), r.first().copied(), elem, path, out)
                }
                (2.., 2..) => {
                    let same =
                        l.len() == r.len() && l.iter().zip(r).all(|(a, b)| values_equal(a, b));
                    if !same {
                        out.modified.insert(path);
                    }
                }
                (2.., _) => {
                    if let Some(first) = r.first() {
                        self.compare_at(None, Some(first), elem, path, out);
                    }
                    out.removed.insert(path);
                }
                (_, _) => {
                    if let Some(first) = l.first() {
                        self.compare_at(Some(first), None, elem, path, out);
                    }
                    out.added.insert(path);
                }
            }
            path.pop();
        }
    }

    // ----- Merge -----------------------------------------------------------------------------

    /// `rhs` merged into `lhs`, `rhs` winning every leaf.
    pub fn merge(&self, lhs: &Value, rhs: &Value) -> Value {
        let root = self.schema.root();
        self.merge_at(Some(lhs), Some(rhs), root, &mut Vec::new())
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    fn merge_at(
        &self,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        ty: Ty<'s>,
        path: &mut Vec<Pe>,
    ) -> Option<Value> {
        let atom = self.shared_atom(ty, lhs, rhs, path);
        let leaf = match &atom {
            None => true,
            Some(atom) if atom.is_atomic() => true,
            Some(_) => is_empty(lhs) && is_empty(rhs),
        };
        if leaf {
            return rhs.or(lhs).cloned();
        }
        match atom? {
            Atom::List { elem, kind } => {
                let out = self.merge_items(items(lhs), items(rhs), elem, &kind, path);
                (!out.is_empty()).then_some(Value::Array(out))
            }
            atom => {
                let (l, r) = (entries(lhs), entries(rhs));
                let keys: BTreeSet<&String> =
                    l.iter().chain(r.iter()).flat_map(|m| m.keys()).collect();
                let mut out = Map::new();
                for key in keys {
                    path.push(Pe::field(key));
                    let (lv, rv) = (l.and_then(|m| m.get(key)), r.and_then(|m| m.get(key)));
                    if let Some(merged) = self.merge_at(lv, rv, atom.field(key), path) {
                        out.insert(key.clone(), merged);
                    }
                    path.pop();
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
        }
    }

    /// SMD's `visitListItems` of the merging walker: the configuration's order for its
    /// entries, live-only entries kept where they stand.
    fn merge_items(
        &self,
        lhs: &[Value],
        rhs: &[Value],
        elem: Ty<'s>,
        kind: &ListKind,
        path: &mut Vec<Pe>,
    ) -> Vec<Value> {
        let keyed = |list: &'_ [Value]| -> Vec<(Pe, usize)> {
            list.iter()
                .enumerate()
                .filter_map(|(i, item)| Some((item_pe(kind, item).ok()?, i)))
                .collect()
        };
        let (lhs_pes, rhs_pes) = (keyed(lhs), keyed(rhs));
        let mut observed_rhs: BTreeMap<&Pe, &Value> = BTreeMap::new();
        for (pe, i) in &rhs_pes {
            observed_rhs.entry(pe).or_insert(&rhs[*i]);
        }
        // A duplicated live entry is not merged with the configuration's.
        let mut observed_lhs: BTreeMap<&Pe, Option<&Value>> = BTreeMap::new();
        for (pe, i) in &lhs_pes {
            observed_lhs
                .entry(pe)
                .and_modify(|v| *v = None)
                .or_insert(Some(&lhs[*i]));
        }
        let mut shared = rhs_pes
            .iter()
            .map(|(pe, _)| pe)
            .filter(|pe| observed_lhs.contains_key(pe));
        let mut next_shared = shared.next();
        let mut merged_rhs: BTreeSet<&Pe> = BTreeSet::new();
        let mut out = Vec::new();
        let mut merge_item =
            |pe: &Pe, l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Value>| {
                path.push(pe.clone());
                if let Some(item) = self.merge_at(l, r, elem, path) {
                    out.push(item);
                }
                path.pop();
            };
        let (mut li, mut ri) = (0, 0);
        while li < lhs_pes.len() || ri < rhs_pes.len() {
            if li < lhs_pes.len() && ri < rhs_pes.len() {
                let pe = &lhs_pes[li].0;
                if *pe == rhs_pes[ri].0 {
                    merged_rhs.insert(pe);
                    let l = observed_lhs.get(pe).copied().flatten();
                    merge_item(pe, l, observed_rhs.get(pe).copied(), &mut out);
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if observed_rhs.contains_key(pe) && next_shared.is_some_and(|next| next != pe) {
                    li += 1;
                    continue;
                }
            }
            if li < lhs_pes.len() {
                let (pe, index) = &lhs_pes[li];
                if !observed_rhs.contains_key(pe) {
                    merge_item(pe, Some(&lhs[*index]), None, &mut out);
                    li += 1;
                    continue;
                } else if merged_rhs.contains(pe) {
                    li += 1;
                }
            }
            if ri < rhs_pes.len() {
                let pe = &rhs_pes[ri].0;
                merged_rhs.insert(pe);
                let l = observed_lhs.get(pe).copied().flatten();
                merge_item(pe, l, observed_rhs.get(pe).copied(), &mut out);
                ri += 1;
                if next_shared == Some(pe) {
                    next_shared = shared.next();
                }
            }
        }
        out
    }

    // ----- RemoveItems -----------------------------------------------------------------------

    /// `value` without the fields of `set` (a removed map field reads `null`, as in SMD; the
    /// caller drops those nulls).
    pub fn remove_items(&self, value: &Value, set: &Set) -> Value {
        let root = self.schema.root();
        self.remove_at(value, set, root, &mut Vec::new())
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    fn remove_at(&self, value: &Value, set: &Set, ty: Ty<'s>, path: &mut Vec<Pe>) -> Option<Value> {
        let atom = match self.atom(ty, value, path) {
            Some(atom) if !atom.is_atomic() => atom,
            Some(Atom::Scalar) | None => return Some(value.clone()),
            Some(_) => return None,
        };
        match (&atom, value) {
            (Atom::List { elem, kind }, Value::Array(list)) => {
                let mut out = Vec::new();
                for item in list {
                    let Ok(pe) = item_pe(kind, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if set.has(std::slice::from_ref(&pe)) {
                        continue;
                    }
                    let kept = match set.with_prefix(&pe) {
                        Some(subset) => {
                            path.push(pe);
                            let kept = self.remove_at(item, subset, *elem, path);
                            path.pop();
                            kept
                        }
                        None => Some(item.clone()),
                    };
                    out.extend(kept);
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
            (Atom::Struct { .. } | Atom::Map { .. }, Value::Object(map)) => {
                let mut out = Map::new();
                for (key, child) in map {
                    let pe = Pe::field(key);
                    if set.has(std::slice::from_ref(&pe)) {
                        continue;
                    }
                    let kept = match set.with_prefix(&pe) {
                        Some(subset) => {
                            path.push(pe);
                            let kept = self.remove_at(child, subset, atom.field(key), path);
                            path.pop();
                            kept.unwrap_or(Value::Null)
                        }
                        None => child.clone(),
                    };
                    out.insert(key.clone(), kept);
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            _ => None,
        }
    }

    // ----- EnsureNamedFieldsAreMembers ---------------------------------------------------------

    /// `set` plus every declared struct field with members below it (SMD's
    /// `EnsureNamedFieldsAreMembers`: pruning a struct field's last child prunes the field).
    pub fn ensure_named(&self, set: &Set) -> Set {
        let mut out = Set::new();
        self.named_at(set, self.schema.root(), &mut Vec::new(), &mut out);
        out
    }

    fn named_at(&self, set: &Set, ty: Ty<'s>, path: &mut Vec<Pe>, out: &mut Set) {
        let atom = self.schema.atom(ty, None, path);
        for pe in set.members() {
            path.push(pe.clone());
            out.insert(path);
            path.pop();
        }
        for (pe, child) in set.children() {
            let child_ty = match (&atom, pe) {
                (Some(atom @ Atom::Struct { .. }), Pe::Field(name)) => {
                    if atom.declares(name) && !child.is_empty() {
                        path.push(pe.clone());
                        out.insert(path);
                        path.pop();
                    }
                    atom.field(name)
                }
                (Some(Atom::Map { elem, .. }), _) | (Some(Atom::List { elem, .. }), _) => *elem,
                _ => Ty::UNTYPED,
            };
            path.push(pe.clone());
            self.named_at(child, child_ty, path, out);
            path.pop();
        }
    }
}

/// Drops the nulls a removal or an applied `null` leaves in maps, recursively.
pub fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
