//! `describe pod`: each pod with the events about it, as kubectl describe prints them.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use peapod_printers::describe_pod;
use serde_json::Value;

use crate::args::DescribeArgs;
use crate::client::{Client, ClientError};
use crate::console::Console;
use crate::error::CliError;
use crate::get::no_resources;
use crate::objects::{list_events, list_pods, pods};
use crate::query::pod_path;
use crate::target::pod_names;

pub async fn describe(
    client: &Client,
    args: DescribeArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let names = pod_names("describe", &args.targets)?;
    let namespace = args.namespace.as_deref().unwrap_or("default");
    let mut failed = false;
    let found = if names.is_empty() {
        let listed = list_pods(client, Some(namespace), args.selector.as_deref()).await?;
        if listed.items.is_empty() {
            console.eprintln(&no_resources(Some(namespace)));
        }
        pods("pods", &listed.items)?
    } else {
        let mut found = Vec::new();
        for name in &names {
            match fetch(client, namespace, name).await {
                Ok(pod) => found.push(pod),
                Err(ClientError::Api(error)) => {
                    console.eprintln(&error.to_string());
                    failed = true;
                }
                Err(other) => return Err(other.into()),
            }
        }
        found
    };
    for (i, pod) in found.iter().enumerate() {
        let ns = pod.metadata.namespace.as_deref().unwrap_or(namespace);
        let events = list_events(client, Some(ns), pod.metadata.uid.as_deref()).await?;
        let separator = if i == 0 { "" } else { "\n\n" };
        let text = describe_pod(pod, &events, Timestamp::now());
        console.print(&format!("{separator}{text}"))?;
    }
    Ok(i32::from(failed))
}

async fn fetch(client: &Client, namespace: &str, name: &str) -> Result<Pod, ClientError> {
    let path = pod_path(namespace, name);
    let pod = client.get_json::<Value>(&path).await?;
    Ok(pods(&path, &[pod])?.remove(0))
}
