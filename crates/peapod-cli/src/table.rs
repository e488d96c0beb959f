//! The server's `meta.k8s.io/v1 Table` printed as kubectl's table printer does: the columns of
//! priority 0 (all of them with `-o wide`), NAMESPACE first with -A, `kind/name` in the name
//! column when several types print, cells cut at their first line break. An answer that is
//! no Table gets kubectl's fallback columns, NAME and AGE.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::client::ClientError;
use crate::describe_text::since;

/// kubectl's Accept when it wants a Table (v1, v1beta1, else the plain object).
pub const ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Column {
    pub name: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub format: String,
    #[serde(default)]
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct Row {
    #[serde(default)]
    pub cells: Vec<Value>,
    #[serde(default)]
    pub object: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    #[serde(default)]
    pub column_definitions: Vec<Column>,
    #[serde(default)]
    pub rows: Vec<Row>,
    #[serde(default)]
    pub metadata: Value,
}

impl Table {
    /// A Table answer, or kubectl's NAME/AGE fallback for an object or a list of them.
    pub fn from_answer(path: &str, answer: Value) -> Result<Table, ClientError> {
        if answer["kind"] != "Table" {
            return Ok(fallback(answer));
        }
        serde_json::from_value(answer).map_err(|source| ClientError::Decode {
            path: path.to_string(),
            source,
        })
    }
}

/// kubectl's printer for what has no Table: each object's name and age.
fn fallback(answer: Value) -> Table {
    let items = match answer.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => vec![answer.clone()],
    };
    let now = Timestamp::now();
    let rows = items
        .into_iter()
        .map(|object| {
            let name = object["metadata"]["name"].clone();
            let created = object["metadata"]["creationTimestamp"].as_str();
            let age = since(created.and_then(|t| t.parse::<Timestamp>().ok()), now);
            Row {
                cells: vec![name, Value::from(age)],
                object,
            }
        })
        .collect();
    let column = |name: &str, format: &str| Column {
        name: name.into(),
        kind: "string".into(),
        format: format.into(),
        priority: 0,
    };
    Table {
        column_definitions: vec![column("Name", "name"), column("Age", "")],
        rows,
        metadata: answer.get("metadata").cloned().unwrap_or_default(),
    }
}

/// How rows print: which columns, and the decorations kubectl adds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    pub wide: bool,
    /// A NAMESPACE column first (-A on a namespaced type).
    pub namespace: bool,
    /// `configmap` for `configmap/NAME` in the name column.
    pub kind: Option<String>,
}

impl Layout {
    fn shown<'a>(&self, columns: &'a [Column]) -> impl Iterator<Item = (usize, &'a Column)> {
        let wide = self.wide;
        columns
            .iter()
            .enumerate()
            .filter(move |(_, c)| wide || c.priority == 0)
    }

    pub fn header(&self, columns: &[Column]) -> Vec<String> {
        let namespace = self.namespace.then(|| "NAMESPACE".to_string());
        namespace
            .into_iter()
            .chain(self.shown(columns).map(|(_, c)| c.name.to_uppercase()))
            .collect()
    }

    pub fn row(&self, columns: &[Column], row: &Row) -> Vec<String> {
        let namespace = self
            .namespace
            .then(|| cell(&row.object["metadata"]["namespace"]));
        let cells = self.shown(columns).map(|(i, column)| {
            let text = cell(row.cells.get(i).unwrap_or(&Value::Null));
            match &self.kind {
                Some(kind) if column.format == "name" && column.kind == "string" => {
                    format!("{kind}/{text}")
                }
                _ => text,
            }
        });
        namespace.into_iter().chain(cells).collect()
    }

    /// Header and rows aligned; nothing at all for a table without rows.
    pub fn render(&self, table: &Table) -> String {
        if table.rows.is_empty() {
            return String::new();
        }
        let columns = &table.column_definitions;
        let mut lines = vec![self.header(columns)];
        lines.extend(table.rows.iter().map(|row| self.row(columns, row)));
        peapod_printers::align(&lines)
    }
}

/// One cell as Go's `fmt.Sprint` shows the JSON value, cut at a line break as kubectl does.
pub fn cell(value: &Value) -> String {
    let text = go_sprint(value);
    match text.find(['\n', '\r', '\x0c']) {
        Some(end) => format!("{}...", &text[..end]),
        None => text,
    }
}

pub(crate) fn go_sprint(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_sprint).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let entries: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_sprint(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table() -> Table {
        serde_json::from_value(json!({
            "kind": "Table",
            "columnDefinitions": [
                {"name": "Name", "type": "string", "format": "name", "priority": 0},
                {"name": "Data", "type": "integer", "format": "", "priority": 0},
                {"name": "Extra", "type": "string", "format": "", "priority": 1}],
            "rows": [{"cells": ["settings", 2, "x\ny"],
                      "object": {"metadata": {"name": "settings", "namespace": "team"}}}]
        }))
        .unwrap()
    }

    #[test]
    fn priority_namespace_and_kind() {
        let layout = Layout::default();
        assert_eq!(layout.render(&table()), "NAME       DATA\nsettings   2\n");
        let layout = Layout {
            wide: true,
            namespace: true,
            kind: Some("configmap".into()),
        };
        assert_eq!(
            layout.render(&table()),
            "NAMESPACE   NAME                 DATA   EXTRA\nteam        configmap/settings   2      x...\n"
        );
        assert_eq!(layout.render(&Table::default()), "");
    }

    #[test]
    fn answers_without_a_table_get_name_and_age() {
        let list = json!({"kind": "ImageList", "items": [{"metadata": {"name": "a"}}]});
        let table = Table::from_answer("/x", list).unwrap();
        assert_eq!(
            Layout::default().render(&table),
            "NAME   AGE\na      <unknown>\n"
        );
    }

    #[test]
    fn cells_read_as_go_prints_them() {
        assert_eq!(cell(&json!(null)), "");
        assert_eq!(cell(&json!(1.5)), "1.5");
        assert_eq!(cell(&json!(["a", 1])), "[a 1]");
        assert_eq!(cell(&json!({"a": true})), "map[a:true]");
    }
}
