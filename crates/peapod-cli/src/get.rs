//! `get TYPE[,TYPE...] [NAME...]` for any served type: the server's Table printed as kubectl
//! prints it (one table per type, a blank line between, `kind/name` when several types
//! print), or the objects as json / yaml / names; `-w` is in [`crate::watch`].

use serde_json::Value;

use crate::args::{GetArgs, OutputFormat};
use crate::client::{ApiError, Client, ClientError};
use crate::console::Console;
use crate::discovery::discover;
use crate::error::CliError;
use crate::fetch::{fetch, Scope};
use crate::output;
use crate::table::{self, Layout, Table};
use crate::target::{self, Requested, Selected};

/// Flag combinations kubectl refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GetError {
    #[error("name cannot be provided when a selector is specified")]
    NameWithSelector,
    #[error("a resource cannot be retrieved by name across all namespaces")]
    NameAcrossNamespaces,
    #[error("watch is only supported on individual resources and resource collections, but {0} resources were found")]
    WatchMany(usize),
    #[error("you may only specify a single resource type")]
    WatchManyTypes,
}

pub async fn get(client: &Client, args: GetArgs, console: &mut Console) -> Result<i32, CliError> {
    let requested = target::parse("get", &args.targets)?;
    check_flags(&args, &requested)?;
    let discovery = discover(client).await?;
    let selected = target::resolve(&discovery, requested)?;
    let scope = Scope::new(args.namespace.as_deref(), args.all_namespaces)
        .selectors(args.selector.as_deref(), args.field_selector.as_deref());
    if args.watch {
        return crate::watch::watch(client, &args, &scope, &selected, console).await;
    }
    let mut errors = Vec::new();
    let text = match args.output {
        None | Some(OutputFormat::Wide) => {
            let wide = args.output.is_some();
            let text = tables(client, &scope, &selected, wide, &mut errors).await?;
            if text.is_empty() && errors.is_empty() {
                let resources: Vec<_> = selected.iter().map(|s| &s.resource).collect();
                console.eprintln(&scope.no_resources(&resources));
            }
            text
        }
        Some(format) => objects(client, format, &scope, &selected, &mut errors).await?,
    };
    console.print(&text)?;
    for error in &errors {
        console.eprintln(&error.to_string());
    }
    Ok(i32::from(!errors.is_empty()))
}

fn check_flags(args: &GetArgs, requested: &[Requested]) -> Result<(), GetError> {
    let names = requested.iter().map(|r| r.names.len()).sum::<usize>();
    if names == 0 {
        return Ok(());
    }
    if args.selector.is_some() {
        return Err(GetError::NameWithSelector);
    }
    if args.all_namespaces {
        return Err(GetError::NameAcrossNamespaces);
    }
    if args.watch && names > 1 {
        return Err(GetError::WatchMany(names));
    }
    Ok(())
}

/// The rows of several answers (a list, or one Table per named object) in one Table.
pub fn merge(answers: Vec<(String, Value)>) -> Result<Table, ClientError> {
    let mut merged: Option<Table> = None;
    for (path, answer) in answers {
        let table = Table::from_answer(&path, answer)?;
        match &mut merged {
            Some(all) => all.rows.extend(table.rows),
            None => merged = Some(table),
        }
    }
    Ok(merged.unwrap_or_default())
}

/// Whether more than one type prints (kubectl then names the kind in each row).
fn several_types(selected: &[Selected]) -> bool {
    selected.iter().any(|s| s.resource != selected[0].resource)
}

/// Each type's table; tables that printed something are separated by a blank line.
async fn tables(
    client: &Client,
    scope: &Scope,
    selected: &[Selected],
    wide: bool,
    errors: &mut Vec<ApiError>,
) -> Result<String, CliError> {
    let with_kind = several_types(selected);
    let mut printed = Vec::new();
    for selection in selected {
        let fetched = fetch(client, selection, scope, Some(table::ACCEPT)).await?;
        errors.extend(fetched.errors);
        let layout = Layout {
            wide,
            namespace: scope.all_namespaces && selection.resource.namespaced,
            kind: with_kind.then(|| selection.resource.kind_label()),
        };
        let text = layout.render(&merge(fetched.answers)?);
        if !text.is_empty() {
            printed.push(text);
        }
    }
    Ok(printed.join("\n"))
}

/// json / yaml (one object asked for by name prints itself, anything else a List) or names.
async fn objects(
    client: &Client,
    format: OutputFormat,
    scope: &Scope,
    selected: &[Selected],
    errors: &mut Vec<ApiError>,
) -> Result<String, CliError> {
    let single = selected.len() == 1 && selected[0].names.len() == 1;
    let mut items = Vec::new();
    let mut names = String::new();
    for selection in selected {
        let fetched = fetch(client, selection, scope, None).await?;
        errors.extend(fetched.errors.iter().cloned());
        for item in fetched.items(&selection.resource) {
            let name = item["metadata"]["name"].as_str().unwrap_or_default();
            names.push_str(&format!("{}/{name}\n", selection.resource.kind_label()));
            items.push(item);
        }
    }
    if single && !errors.is_empty() {
        return Ok(String::new());
    }
    let object = match items.len() {
        1 if single => items.remove(0),
        _ => output::list(items),
    };
    Ok(match format {
        OutputFormat::Name => names,
        OutputFormat::Json => output::json(&object),
        _ => output::yaml(&object),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::tests::discovery;
    use serde_json::json;

    #[test]
    fn kinds_print_only_when_types_differ() {
        let d = discovery();
        let select = |types: &[&str]| -> Vec<Selected> {
            types
                .iter()
                .map(|t| Selected {
                    resource: d.resolve(t).unwrap().clone(),
                    names: vec![],
                })
                .collect()
        };
        assert!(!several_types(&select(&["pod", "po"])));
        assert!(several_types(&select(&["pod", "cm"])));
    }

    #[test]
    fn named_tables_merge_their_rows() {
        let one = |name: &str| {
            json!({"kind": "Table", "columnDefinitions": [{"name": "Name", "type": "string",
                   "format": "name", "priority": 0}], "rows": [{"cells": [name]}]})
        };
        let table = merge(vec![("/a".into(), one("a")), ("/b".into(), one("b"))]).unwrap();
        assert_eq!(table.rows.len(), 2);
        assert_eq!(table.column_definitions.len(), 1);
    }
}
