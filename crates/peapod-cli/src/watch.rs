//! `get -w`: the listing (or the one named object), then the watch from its resourceVersion,
//! one row (a Table from the server) or one object per event, until the agent ends the
//! stream. Rows keep the widths of what printed before, as kubectl's tabwriter does.

use peapod_printers::TableStream;
use serde::Deserialize;
use serde_json::Value;

use crate::args::{GetArgs, OutputFormat};
use crate::client::{ApiError, Call, Client, ClientError};
use crate::console::Console;
use crate::error::CliError;
use crate::fetch::{fetch, Fetched, Scope};
use crate::get::{merge, GetError};
use crate::output;
use crate::query::Query;
use crate::resource::ApiResource;
use crate::table::{self, Column, Layout, Table};
use crate::target::Selected;

pub async fn watch(
    client: &Client,
    args: &GetArgs,
    scope: &Scope,
    selected: &[Selected],
    console: &mut Console,
) -> Result<i32, CliError> {
    let [selection] = selected else {
        return Err(GetError::WatchManyTypes.into());
    };
    let mut printer = Printer::new(args.output, scope, &selection.resource);
    let accept = printer.is_table().then_some(table::ACCEPT);
    let fetched = fetch(client, selection, scope, accept).await?;
    if let Some(error) = fetched.errors.first() {
        console.eprintln(&error.to_string());
        return Ok(1);
    }
    let resource_version = fetched.resource_version();
    let text = printer.initial(fetched)?;
    if text.is_empty() && selection.names.is_empty() && printer.is_table() {
        console.eprintln(&scope.no_resources(&[&selection.resource]));
    }
    console.print(&text)?;
    let name = selection.names.first().map(String::as_str);
    let mut query = Query::new();
    query
        .push("watch", "true")
        .push("resourceVersion", resource_version);
    let mut scope = scope.clone();
    if let Some(name) = name {
        let by_name = format!("metadata.name={name}");
        scope.fields = Some(match scope.fields.take() {
            Some(fields) => format!("{fields},{by_name}"),
            None => by_name,
        });
    }
    let path = scope.list_path(&selection.resource, query);
    stream(client, Call::get(path), accept, name, printer, console).await?;
    Ok(0)
}

#[derive(Debug, Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: Value,
}

/// Prints each event of the watch at `call` until the stream ends.
async fn stream(
    client: &Client,
    call: Call,
    accept: Option<&'static str>,
    name: Option<&str>,
    mut printer: Printer,
    console: &mut Console,
) -> Result<(), CliError> {
    let call = match accept {
        Some(accept) => call.header("accept", accept),
        None => call,
    };
    let path = call.path().to_string();
    let mut reply = client.send(call).await?.success().await?;
    let mut pending = Vec::new();
    while let Some(chunk) = reply.chunk().await? {
        pending.extend_from_slice(&chunk);
        for line in take_lines(&mut pending) {
            let event: WatchEvent =
                serde_json::from_slice(&line).map_err(|source| ClientError::Decode {
                    path: path.clone(),
                    source,
                })?;
            match event.kind.as_str() {
                "ERROR" => {
                    let body = event.object.to_string();
                    let status = hyper::StatusCode::INTERNAL_SERVER_ERROR;
                    return Err(ClientError::from(ApiError::from_response(
                        status,
                        body.as_bytes(),
                    ))
                    .into());
                }
                "BOOKMARK" => continue,
                _ => console.print(&printer.event(&path, event.object, name)?)?,
            }
        }
    }
    Ok(())
}

/// Complete non-empty lines split off the front of `pending`.
pub(crate) fn take_lines(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let Some(end) = pending.iter().rposition(|b| *b == b'\n') else {
        return Vec::new();
    };
    let rest = pending.split_off(end + 1);
    let complete = std::mem::replace(pending, rest);
    complete
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect()
}

/// Renders what a watch prints in one `-o` format; a table remembers its columns, its widths
/// and whether the header printed (kubectl prints it with the first row).
struct Printer {
    format: Option<OutputFormat>,
    layout: Layout,
    resource: ApiResource,
    columns: Vec<Column>,
    header_printed: bool,
    stream: TableStream,
}

impl Printer {
    fn new(format: Option<OutputFormat>, scope: &Scope, resource: &ApiResource) -> Self {
        let layout = Layout {
            wide: format == Some(OutputFormat::Wide),
            namespace: scope.all_namespaces && resource.namespaced,
            kind: None,
        };
        Self {
            format,
            layout,
            resource: resource.clone(),
            columns: Vec::new(),
            header_printed: false,
            stream: TableStream::new(),
        }
    }

    fn is_table(&self) -> bool {
        matches!(self.format, None | Some(OutputFormat::Wide))
    }

    /// The listing before the watch, all at once.
    fn initial(&mut self, fetched: Fetched) -> Result<String, ClientError> {
        if self.is_table() {
            return Ok(self.table(merge(fetched.answers)?));
        }
        let items = fetched.items(&self.resource);
        Ok(items.iter().map(|item| self.object(item)).collect())
    }

    /// One event's object; rows of objects other than `name` (when given) are left out.
    fn event(
        &mut self,
        path: &str,
        object: Value,
        name: Option<&str>,
    ) -> Result<String, ClientError> {
        let named = |object: &Value| {
            name.is_none_or(|n| object.pointer("/metadata/name").and_then(Value::as_str) == Some(n))
        };
        if self.is_table() {
            let mut table = Table::from_answer(path, object)?;
            table.rows.retain(|row| named(&row.object));
            return Ok(self.table(table));
        }
        if !named(&object) {
            return Ok(String::new());
        }
        let object =
            output::with_type_meta(object, &self.resource.api_version(), &self.resource.kind);
        Ok(self.object(&object))
    }

    fn table(&mut self, table: Table) -> String {
        let defined = !table.column_definitions.is_empty();
        if defined && table.column_definitions != self.columns {
            self.columns = table.column_definitions;
            self.header_printed = false;
        }
        let mut lines = Vec::new();
        if !table.rows.is_empty() && !self.header_printed {
            lines.push(self.layout.header(&self.columns));
            self.header_printed = true;
        }
        lines.extend(
            table
                .rows
                .iter()
                .map(|row| self.layout.row(&self.columns, row)),
        );
        if lines.is_empty() {
            return String::new();
        }
        self.stream.render(&lines)
    }

    fn object(&self, item: &Value) -> String {
        match self.format {
            Some(OutputFormat::Json) => output::json(item),
            Some(OutputFormat::Yaml) => format!("---\n{}", output::yaml(item)),
            _ => {
                let name = item["metadata"]["name"].as_str().unwrap_or_default();
                format!("{}/{name}\n", self.resource.kind_label())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::discovery;
    use serde_json::json;

    #[test]
    fn lines_are_split_only_when_complete() {
        let mut pending = b"{\"a\":1}\n\n{\"b\"".to_vec();
        assert_eq!(take_lines(&mut pending), vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(pending, b"{\"b\"");
        assert!(take_lines(&mut pending).is_empty());
    }

    fn printer(format: Option<OutputFormat>) -> Printer {
        let pods = discovery().resolve("pods").unwrap().clone();
        Printer::new(format, &Scope::new(None, false), &pods)
    }

    #[test]
    fn watch_rows_print_the_header_once_and_keep_widths() {
        let mut printer = printer(None);
        let event = |name: &str, columns: bool| {
            let defs = json!([{"name": "Name", "type": "string", "format": "name"}]);
            json!({"kind": "Table", "columnDefinitions": if columns { defs } else { json!([]) },
                   "rows": [{"cells": [name], "object": {"metadata": {"name": name}}}]})
        };
        let first = printer.event("/p", event("long-name", true), None).unwrap();
        assert_eq!(first, "NAME\nlong-name\n");
        let second = printer.event("/p", event("web", false), None).unwrap();
        assert_eq!(second, "web\n");
        let other = printer
            .event("/p", event("db", false), Some("web"))
            .unwrap();
        assert_eq!(other, "");
    }

    #[test]
    fn yaml_watch_objects_are_separate_documents() {
        let mut printer = printer(Some(OutputFormat::Yaml));
        let text = printer
            .event("/p", json!({"metadata": {"name": "a"}}), None)
            .unwrap();
        assert_eq!(
            text,
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n"
        );
    }
}
