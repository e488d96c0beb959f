//! `get pods`: fetch by name or list, print as a table / json / yaml / names, and with `-w`
//! keep printing one row per watch event.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use peapod_printers::{object_name, pod_row, pod_table, pod_table_header, TableStream};
use serde::Deserialize;
use serde_json::Value;

use crate::args::{GetArgs, OutputFormat};
use crate::client::{ApiError, Call, Client, ClientError};
use crate::console::Console;
use crate::error::CliError;
use crate::objects::{list_pods, name_of, pods, Listed};
use crate::output;
use crate::query::{pod_path, pods_path, Query};
use crate::target::pod_names;

/// Flag combinations kubectl refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    #[error("name cannot be provided when a selector is specified")]
    NameWithSelector,
    #[error("a resource cannot be retrieved by name across all namespaces")]
    NameAcrossNamespaces,
    #[error("watch is only supported on individual resources and resource collections, but {0} resources were found")]
    WatchMany(usize),
}

pub async fn get(client: &Client, args: GetArgs, console: &mut Console) -> Result<i32, CliError> {
    let names = pod_names("get", &args.targets)?;
    check_flags(&args, &names)?;
    let namespace = args.namespace.as_deref().unwrap_or("default");
    let scope = (!args.all_namespaces).then_some(namespace);
    let (listed, errors) = if names.is_empty() {
        let listed = list_pods(client, scope, args.selector.as_deref()).await?;
        (listed, Vec::new())
    } else {
        fetch_named(client, namespace, &names).await?
    };
    let mut printer = Printer::new(args.output, args.all_namespaces);
    let single = names.len() == 1;
    let text = if args.watch {
        printer.initial(&listed.items)?
    } else {
        printer.all(&listed.items, single)?
    };
    console.print(&text)?;
    if names.is_empty() && listed.items.is_empty() && printer.is_table() {
        console.eprintln(&no_resources(scope));
    }
    for error in &errors {
        console.eprintln(&error.to_string());
    }
    if args.watch && errors.is_empty() {
        let filter = names.first().map(String::as_str);
        watch(
            client,
            scope,
            args.selector.as_deref(),
            filter,
            &listed,
            printer,
            console,
        )
        .await?;
    }
    Ok(if errors.is_empty() { 0 } else { 1 })
}

fn check_flags(args: &GetArgs, names: &[String]) -> Result<(), GetError> {
    if names.is_empty() {
        return Ok(());
    }
    if args.selector.is_some() {
        return Err(GetError::NameWithSelector);
    }
    if args.all_namespaces {
        return Err(GetError::NameAcrossNamespaces);
    }
    if args.watch && names.len() > 1 {
        return Err(GetError::WatchMany(names.len()));
    }
    Ok(())
}

pub fn no_resources(scope: Option<&str>) -> String {
    match scope {
        Some(ns) => format!("No resources found in {ns} namespace."),
        None => "No resources found".to_string(),
    }
}

/// Each named pod; NotFound and other server errors are collected (kubectl prints what it
/// found, then the errors).
async fn fetch_named(
    client: &Client,
    namespace: &str,
    names: &[String],
) -> Result<(Listed, Vec<ApiError>), ClientError> {
    let mut listed = Listed::default();
    let mut errors = Vec::new();
    for name in names {
        match client.get_json::<Value>(&pod_path(namespace, name)).await {
            Ok(pod) => {
                listed.resource_version = resource_version(&pod);
                listed.items.push(output::with_type_meta(pod, "v1", "Pod"));
            }
            Err(ClientError::Api(error)) => errors.push(error),
            Err(other) => return Err(other),
        }
    }
    Ok((listed, errors))
}

fn resource_version(object: &Value) -> String {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Renders pods in one `-o` format; for tables it remembers column widths and whether the
/// header was printed, so watch rows line up with what came before.
pub struct Printer {
    format: Option<OutputFormat>,
    show_namespace: bool,
    stream: TableStream,
    header_printed: bool,
}

impl Printer {
    pub fn new(format: Option<OutputFormat>, show_namespace: bool) -> Self {
        Self {
            format,
            show_namespace,
            stream: TableStream::new(),
            header_printed: false,
        }
    }

    fn is_table(&self) -> bool {
        matches!(self.format, None | Some(OutputFormat::Wide))
    }

    fn wide(&self) -> bool {
        self.format == Some(OutputFormat::Wide)
    }

    /// Everything at once; `single` (one pod asked for by name) prints the Pod itself for
    /// json/yaml instead of a List.
    pub fn all(&self, items: &[Value], single: bool) -> Result<String, ClientError> {
        let object = || match items {
            [one] if single => one.clone(),
            _ => output::list(items.to_vec()),
        };
        Ok(match self.format {
            None | Some(OutputFormat::Wide) => {
                let pods = pods("pods", items)?;
                pod_table(&pods, self.wide(), self.show_namespace, Timestamp::now())
            }
            Some(OutputFormat::Json) => output::json(&object()),
            Some(OutputFormat::Yaml) => output::yaml(&object()),
            Some(OutputFormat::Name) => names(items),
        })
    }

    /// The listing before a watch: a table keeps its widths for the rows to come; other
    /// formats print object by object.
    pub fn initial(&mut self, items: &[Value]) -> Result<String, ClientError> {
        let mut text = String::new();
        for item in items {
            text.push_str(&self.one(item)?);
        }
        Ok(text)
    }

    /// One object as a watch prints it: a table row (header before the first), one JSON
    /// document, one YAML document, or one name.
    pub fn one(&mut self, item: &Value) -> Result<String, ClientError> {
        Ok(match self.format {
            None | Some(OutputFormat::Wide) => {
                let pod: Pod = pods("pods", std::slice::from_ref(item))?.remove(0);
                let mut rows = Vec::new();
                if !self.header_printed {
                    rows.push(pod_table_header(self.wide(), self.show_namespace));
                    self.header_printed = true;
                }
                rows.push(pod_row(
                    &pod,
                    self.wide(),
                    self.show_namespace,
                    Timestamp::now(),
                ));
                self.stream.render(&rows)
            }
            Some(OutputFormat::Json) => output::json(item),
            Some(OutputFormat::Yaml) => format!("---\n{}", output::yaml(item)),
            Some(OutputFormat::Name) => names(std::slice::from_ref(item)),
        })
    }
}

fn names(items: &[Value]) -> String {
    items
        .iter()
        .map(|i| format!("{}\n", object_name("pod", name_of(i))))
        .collect()
}

#[derive(Debug, Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: Value,
}

/// Streams watch events from `listed`'s resourceVersion until the agent ends the stream.
async fn watch(
    client: &Client,
    scope: Option<&str>,
    selector: Option<&str>,
    name: Option<&str>,
    listed: &Listed,
    mut printer: Printer,
    console: &mut Console,
) -> Result<(), CliError> {
    let mut query = Query::new();
    query
        .push("watch", "true")
        .push("resourceVersion", listed.resource_version.clone())
        .opt("labelSelector", selector);
    if let Some(name) = name {
        query.push("fieldSelector", format!("metadata.name={name}"));
    }
    let path = format!("{}{query}", pods_path(scope));
    let mut reply = client.send(Call::get(&path)).await?.success().await?;
    let mut pending = Vec::new();
    while let Some(chunk) = reply.chunk().await? {
        pending.extend_from_slice(&chunk);
        for line in take_lines(&mut pending) {
            let event: WatchEvent =
                serde_json::from_slice(&line).map_err(|source| ClientError::Decode {
                    path: path.clone(),
                    source,
                })?;
            if event.kind == "ERROR" {
                let body = event.object.to_string();
                return Err(ClientError::from(ApiError::from_response(
                    hyper::StatusCode::INTERNAL_SERVER_ERROR,
                    body.as_bytes(),
                ))
                .into());
            }
            if name.is_some_and(|n| n != name_of(&event.object)) {
                continue;
            }
            let object = output::with_type_meta(event.object, "v1", "Pod");
            console.print(&printer.one(&object)?)?;
        }
    }
    Ok(())
}

/// Complete non-empty lines split off the front of `pending`.
fn take_lines(pending: &mut Vec<u8>) -> Vec<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_are_split_only_when_complete() {
        let mut pending = b"{\"a\":1}\n\n{\"b\"".to_vec();
        assert_eq!(take_lines(&mut pending), vec![b"{\"a\":1}".to_vec()]);
        assert_eq!(pending, b"{\"b\"");
        assert!(take_lines(&mut pending).is_empty());
    }

    #[test]
    fn single_named_pod_prints_the_pod_not_a_list() {
        let printer = Printer::new(Some(OutputFormat::Json), false);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}});
        let one: Value =
            serde_json::from_str(&printer.all(std::slice::from_ref(&pod), true).unwrap()).unwrap();
        assert_eq!(one["kind"], "Pod");
        let many: Value = serde_json::from_str(&printer.all(&[pod], false).unwrap()).unwrap();
        assert_eq!(many["kind"], "List");
    }

    #[test]
    fn watch_rows_print_the_header_once() {
        let mut printer = Printer::new(None, false);
        let pod = json!({"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c"}]}});
        let first = printer.one(&pod).unwrap();
        assert!(first.starts_with("NAME "), "{first}");
        assert_eq!(first.lines().count(), 2);
        let second = printer.one(&pod).unwrap();
        assert!(second.starts_with("web "), "{second}");
        assert_eq!(second.lines().count(), 1);
    }

    #[test]
    fn yaml_watch_objects_are_separate_documents() {
        let mut printer = Printer::new(Some(OutputFormat::Yaml), false);
        let text = printer.one(&json!({"kind": "Pod"})).unwrap();
        assert_eq!(text, "---\nkind: Pod\n");
    }
}
