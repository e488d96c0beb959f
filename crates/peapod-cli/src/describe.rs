//! `describe TYPE [NAME...]`: each object with the events about it, as kubectl describe
//! prints it: pods by peapod-printers' port of describePod, the other kinds by
//! [`crate::describers`].

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use peapod_printers::describe_pod;
use serde_json::Value;

use crate::args::DescribeArgs;
use crate::client::{Client, ClientError};
use crate::console::Console;
use crate::describers;
use crate::discovery::discover;
use crate::error::CliError;
use crate::fetch::{fetch, Scope};
use crate::objects::{list_events, typed, uid_of};
use crate::resource::ApiResource;
use crate::target;

pub async fn describe(
    client: &Client,
    args: DescribeArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let requested = target::parse("describe", &args.targets)?;
    let discovery = discover(client).await?;
    let selected = target::resolve(&discovery, requested)?;
    let scope =
        Scope::new(args.namespace.as_deref(), false).selectors(args.selector.as_deref(), None);
    let mut failed = false;
    let mut found = Vec::new();
    for selection in &selected {
        let fetched = fetch(client, selection, &scope, None).await?;
        for error in &fetched.errors {
            console.eprintln(&error.to_string());
            failed = true;
        }
        let items = fetched.items(&selection.resource);
        found.extend(items.into_iter().map(|item| (&selection.resource, item)));
    }
    if found.is_empty() && !failed {
        console.eprintln(&scope.no_resources(&[]));
    }
    for (i, (resource, object)) in found.into_iter().enumerate() {
        let separator = if i == 0 { "" } else { "\n\n" };
        let text = describe_one(client, resource, object).await?;
        console.print(&format!("{separator}{text}"))?;
    }
    Ok(i32::from(failed))
}

/// One object's describe text, with its events when its describer shows them.
async fn describe_one(
    client: &Client,
    resource: &ApiResource,
    object: Value,
) -> Result<String, ClientError> {
    let shows_events =
        resource.is_pod() || describers::shows_events(&resource.group, &resource.kind);
    let events = match uid_of(&object).filter(|_| shows_events) {
        Some(uid) => {
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty());
            list_events(client, namespace, Some(uid)).await?
        }
        None => Vec::new(),
    };
    if resource.is_pod() {
        let pod: Pod = typed("pods", vec![object])?.remove(0);
        return Ok(describe_pod(&pod, &events, Timestamp::now()));
    }
    describers::describe(&resource.group, &resource.kind, object, &events)
}
