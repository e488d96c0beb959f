//! Server-side printing: `meta.k8s.io/v1 Table` (what `kubectl get` shows) and
//! `PartialObjectMetadata`, built from a kind's columns and cells.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Value};

/// One column definition, as `metav1.TableColumnDefinition`.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: &'static str,
    /// `string`, `integer`, `date`, ...
    pub kind: &'static str,
    /// `name` for the column kubectl prefixes with the kind.
    pub format: &'static str,
    pub description: &'static str,
    /// 0: always shown; 1: only with `-o wide`.
    pub priority: i32,
}

impl Column {
    pub const fn new(name: &'static str, kind: &'static str, description: &'static str) -> Column {
        Column {
            name,
            kind,
            format: "",
            description,
            priority: 0,
        }
    }

    pub const fn format(mut self, format: &'static str) -> Column {
        self.format = format;
        self
    }

    pub const fn wide(mut self) -> Column {
        self.priority = 1;
        self
    }

    fn definition(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.kind,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// The `Name` column every table starts with.
pub const NAME: Column = Column::new(
    "Name",
    "string",
    "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
)
.format("name");

/// The `Age` column of kubectl's printers.
pub const AGE: Column = Column::new(
    "Age",
    "string",
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
);

/// Columns of a kind without printers: Name and Created At, as kube-apiserver's default.
pub fn default_columns() -> Vec<Column> {
    vec![
        NAME,
        Column::new(
            "Created At",
            "date",
            "CreationTimestamp is a timestamp representing the server time when this object was created.",
        ),
    ]
}

pub fn default_cells(meta: &ObjectMeta) -> Vec<Value> {
    vec![
        json!(meta.name.clone().unwrap_or_default()),
        json!(meta.creation_timestamp.as_ref().map(|t| t.0.to_string())),
    ]
}

/// The name cell.
pub fn name_cell(meta: &ObjectMeta) -> Value {
    json!(meta.name.clone().unwrap_or_default())
}

/// kubectl's age cell (`5m`, `3d2h`, `<unknown>`).
pub fn age_cell(meta: &ObjectMeta) -> Value {
    json!(age(meta, Timestamp::now()))
}

pub fn age(meta: &ObjectMeta, now: Timestamp) -> String {
    match &meta.creation_timestamp {
        Some(created) => {
            let elapsed = now.duration_since(created.0);
            let elapsed = std::time::Duration::try_from(elapsed).unwrap_or_default();
            peapod_printers::human_duration(elapsed)
        }
        None => "<unknown>".to_owned(),
    }
}

/// What each row carries (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IncludeObject {
    None,
    #[default]
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> Result<IncludeObject, String> {
        match value.unwrap_or("") {
            "" | "Metadata" => Ok(IncludeObject::Metadata),
            "Object" => Ok(IncludeObject::Object),
            "None" => Ok(IncludeObject::None),
            other => Err(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

/// A `Table` of `objects`, with column definitions unless `no_headers` (watch events after the
/// first).
pub fn table(
    columns: &[Column],
    rows: Vec<(Vec<Value>, &Value)>,
    include: IncludeObject,
    list_meta: Value,
    no_headers: bool,
) -> Value {
    let definitions: Vec<Value> = if no_headers {
        Vec::new()
    } else {
        columns.iter().map(Column::definition).collect()
    };
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(cells, object)| {
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial_object_metadata(object),
                IncludeObject::Object => row["object"] = object.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}

/// `meta.k8s.io/v1 PartialObjectMetadata` of an object.
pub fn partial_object_metadata(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_partial_metadata_by_default() {
        let object = json!({"kind": "Pod", "metadata": {"name": "web"}, "spec": {}});
        let table = table(
            &default_columns(),
            vec![(vec![json!("web"), json!(null)], &object)],
            IncludeObject::default(),
            json!({"resourceVersion": "5"}),
            false,
        );
        assert_eq!(table["columnDefinitions"][0]["format"], "name");
        assert_eq!(table["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(table["rows"][0]["object"]["metadata"]["name"], "web");
        assert!(table["rows"][0]["object"].get("spec").is_none());
    }

    #[test]
    fn include_object_values() {
        assert_eq!(IncludeObject::parse(None), Ok(IncludeObject::Metadata));
        assert_eq!(
            IncludeObject::parse(Some("Object")),
            Ok(IncludeObject::Object)
        );
        assert!(IncludeObject::parse(Some("All")).is_err());
    }
}
