//! `logs`: a container's log streamed to stdout as the agent sends it.

use crate::args::LogsArgs;
use crate::client::{Call, Client};
use crate::console::Console;
use crate::error::CliError;
use crate::query::{pod_path, Query};
use crate::target::{single_pod, TargetError};

/// The log URL for these flags (`tailLines` only when --tail is not -1).
pub fn log_path(args: &LogsArgs) -> Result<String, TargetError> {
    let name = single_pod(&args.pod)?;
    let namespace = args.namespace.as_deref().unwrap_or("default");
    let container = args.container.as_deref().or(args.container_arg.as_deref());
    let mut query = Query::new();
    query
        .opt("container", container)
        .flag("follow", args.follow)
        .flag("previous", args.previous);
    if args.tail >= 0 {
        query.push("tailLines", args.tail.to_string());
    }
    query.flag("timestamps", args.timestamps);
    Ok(format!("{}/log{query}", pod_path(namespace, &name)))
}

pub async fn logs(client: &Client, args: LogsArgs, console: &mut Console) -> Result<i32, CliError> {
    let path = log_path(&args)?;
    let mut reply = client.send(Call::get(path)).await?.success().await?;
    while let Some(chunk) = reply.chunk().await? {
        console.out(&chunk)?;
    }
    Ok(0)
}
