//! Sets of field paths (SMD's `fieldpath.Set`) and their FieldsV1 encoding: a tree whose nodes
//! hold the path elements that are members here and the children under which more members
//! lie. A node can be both (a list entry and its fields): FieldsV1 writes that as `".": {}`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{Path, Pe};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<Pe>,
    children: BTreeMap<Pe, Set>,
}

impl Set {
    pub fn new() -> Set {
        Set::default()
    }

    /// The set of these paths.
    pub fn of<'a>(paths: impl IntoIterator<Item = &'a [Pe]>) -> Set {
        let mut set = Set::new();
        for path in paths {
            set.insert(path);
        }
        set
    }

    /// Adds `path` (its parents are not added); the empty path is never a member.
    pub fn insert(&mut self, path: &[Pe]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut node = self;
        for pe in parents {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.members.insert(last.clone());
    }

    pub fn has(&self, path: &[Pe]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut node = self;
        for pe in parents {
            match node.children.get(pe) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.members.contains(last)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(Set::is_empty)
    }

    /// The paths under `pe`, without it.
    pub fn with_prefix(&self, pe: &Pe) -> Option<&Set> {
        self.children.get(pe).filter(|child| !child.is_empty())
    }

    /// The direct members and the elements with members below them.
    pub fn members(&self) -> impl Iterator<Item = &Pe> {
        self.members.iter()
    }

    pub fn children(&self) -> impl Iterator<Item = (&Pe, &Set)> {
        self.children.iter()
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub fn intersection(&self, other: &Set) -> Set {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| {
                let both = child.intersection(other.children.get(pe)?);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        Set { members, children }
    }

    /// Members of `self` not in `other`; a parent minus its child stays, a child minus its
    /// parent stays too (SMD's `Difference`).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, child)| match other.children.get(pe) {
                Some(theirs) => {
                    let rest = child.difference(theirs);
                    (!rest.is_empty()).then(|| (pe.clone(), rest))
                }
                None => Some((pe.clone(), child.clone())),
            })
            .collect();
        Set { members, children }
    }

    /// Like [`Set::difference`], but a member of `other` takes everything below it too.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !other.members.contains(pe))
            .filter_map(|(pe, child)| match other.children.get(pe) {
                Some(theirs) => {
                    let rest = child.recursive_difference(theirs);
                    (!rest.is_empty()).then(|| (pe.clone(), rest))
                }
                None => Some((pe.clone(), child.clone())),
            })
            .collect();
        Set { members, children }
    }

    /// Every member path, members of a node before its children (SMD's preorder).
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for pe in &self.members {
            let mut path = prefix.clone();
            path.push(pe.clone());
            out.push(path);
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.collect(prefix, out);
            prefix.pop();
        }
    }

    /// This set as `fieldsV1`.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.emit(false))
    }

    fn emit(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut keys: BTreeSet<&Pe> = self.members.iter().collect();
        keys.extend(
            self.children
                .iter()
                .filter(|(_, c)| !c.is_empty())
                .map(|(pe, _)| pe),
        );
        for pe in keys {
            let member = self.members.contains(pe);
            let contents = match self.children.get(pe).filter(|c| !c.is_empty()) {
                Some(child) => child.emit(member),
                None => Map::new(),
            };
            out.insert(pe.serialize(), Value::Object(contents));
        }
        out
    }

    /// Reads `fieldsV1`; keys of unknown element types are dropped, as SMD drops them.
    pub fn from_fields_v1(fields: &Value) -> Result<Set, String> {
        let Value::Object(map) = fields else {
            return Err("FieldsV1 must be a JSON object".into());
        };
        Ok(Set::read(map)?.0.unwrap_or_default())
    }

    /// The children found in `map`, and whether the node holding it is itself a member.
    fn read(map: &Map<String, Value>) -> Result<(Option<Set>, bool), String> {
        let mut is_member = false;
        let mut children: Option<Set> = None;
        for (key, value) in map {
            if key == "." {
                is_member = true;
                continue;
            }
            let Some(pe) = Pe::deserialize(key)? else {
                continue;
            };
            let (grandchildren, child_is_member) = match value {
                Value::Object(inner) => Set::read(inner)?,
                _ => return Err(format!("{key}: expected an object")),
            };
            let set = children.get_or_insert_with(Set::new);
            if child_is_member {
                set.members.insert(pe.clone());
            }
            if let Some(grandchildren) = grandchildren {
                set.children.insert(pe, grandchildren);
            }
        }
        if children.is_none() {
            is_member = true;
        }
        Ok((children, is_member))
    }
}
