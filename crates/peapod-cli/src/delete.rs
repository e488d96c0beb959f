//! `delete` for any served type: objects named by argument, manifest, `--all` or selector;
//! prints `KIND "NAME" deleted` as each delete is accepted, then (with --wait) polls until
//! each one is gone, as kubectl waits.

use std::time::Duration;

use serde_json::Value;

use crate::args::DeleteArgs;
use crate::client::{warnings, Call, Client, ClientError};
use crate::console::Console;
use crate::discovery::discover;
use crate::error::CliError;
use crate::fetch::{list, Scope};
use crate::manifest::{self, Sources};
use crate::objects::name_of;
use crate::query::Query;
use crate::resource::{ApiResource, Discovery};
use crate::target::{self, Selected};

const POLL_INTERVAL: Duration = Duration::from_millis(100);
const IMMEDIATE_DELETION_WARNING: &str = "Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.";

/// Argument combinations kubectl refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeleteError {
    #[error("you must provide one or more resources by argument or filename")]
    NothingGiven,
    #[error("resource(s) were provided, but no name was specified")]
    NoName,
    #[error("when paths, URLs, or stdin is provided as input, you may not specify resource arguments as well")]
    FilesAndArguments,
    #[error("setting 'all' parameter but found a non empty selector")]
    AllWithSelector,
    #[error("names cannot be used together with --all or a selector")]
    NamesWithSelection,
    #[error("--now and --grace-period cannot be specified together")]
    NowWithGracePeriod,
}

/// One object to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    resource: ApiResource,
    namespace: String,
    name: String,
}

impl Target {
    fn path(&self) -> String {
        self.resource.object(&self.namespace, &self.name)
    }
}

/// A delete the agent accepted; `uid` tells a re-created object of the same name apart.
struct Accepted {
    target: Target,
    uid: Option<String>,
}

pub async fn delete(
    client: &Client,
    args: DeleteArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let grace_period = grace_period(&args)?;
    let discovery = discover(client).await?;
    let Some(targets) = targets(client, &discovery, &args, console).await? else {
        console.eprintln("No resources found");
        return Ok(0);
    };
    let force = args.force && grace_period == Some(0);
    if force {
        console.eprintln(IMMEDIATE_DELETION_WARNING);
    }
    let mut accepted = Vec::new();
    let mut failed = false;
    for target in targets {
        match delete_one(client, &target, grace_period, console).await {
            Ok(uid) => {
                let verb = if force { "force deleted" } else { "deleted" };
                let kind = target.resource.kind_label();
                console.print(&format!("{kind} \"{}\" {verb}\n", target.name))?;
                accepted.push(Accepted { target, uid });
            }
            Err(ClientError::Api(error)) => {
                console.eprintln(&error.to_string());
                failed = true;
            }
            Err(other) => return Err(other.into()),
        }
    }
    if args.wait {
        for done in &accepted {
            wait_gone(client, done).await?;
        }
    }
    Ok(i32::from(failed))
}

/// kubectl's rules: --now is 1s, 0 without --force becomes 1, --force alone is 0.
fn grace_period(args: &DeleteArgs) -> Result<Option<i64>, DeleteError> {
    let mut period = args.grace_period;
    if args.now {
        if period != -1 {
            return Err(DeleteError::NowWithGracePeriod);
        }
        period = 1;
    }
    if period == 0 && !args.force {
        period = 1;
    }
    if args.force && period < 0 {
        period = 0;
    }
    Ok((period >= 0).then_some(period))
}

/// The objects to delete; `None` when a listing found nothing.
async fn targets(
    client: &Client,
    discovery: &Discovery,
    args: &DeleteArgs,
    console: &mut Console,
) -> Result<Option<Vec<Target>>, CliError> {
    if !args.filenames.is_empty() {
        if !args.targets.is_empty() {
            return Err(DeleteError::FilesAndArguments.into());
        }
        return from_files(discovery, args, console).map(Some);
    }
    if args.targets.is_empty() {
        return Err(DeleteError::NothingGiven.into());
    }
    let selected = target::resolve(discovery, target::parse("delete", &args.targets)?)?;
    let named = selected.iter().any(|s| !s.names.is_empty());
    let selecting = args.all || args.selector.is_some() || args.field_selector.is_some();
    if named && selecting {
        return Err(DeleteError::NamesWithSelection.into());
    }
    if args.all && args.selector.is_some() {
        return Err(DeleteError::AllWithSelector.into());
    }
    if !named && !selecting {
        return Err(DeleteError::NoName.into());
    }
    let scope = Scope::new(args.namespace.as_deref(), false)
        .selectors(args.selector.as_deref(), args.field_selector.as_deref());
    let mut targets = Vec::new();
    for Selected { resource, names } in selected {
        let names = if named {
            names
        } else {
            let listed = list(client, &resource, &scope).await?;
            listed.iter().map(|o| name_of(o).to_string()).collect()
        };
        let namespace = if resource.namespaced {
            scope.namespace.clone()
        } else {
            String::new()
        };
        targets.extend(names.into_iter().map(|name| Target {
            resource: resource.clone(),
            namespace: namespace.clone(),
            name,
        }));
    }
    Ok((!targets.is_empty() || named).then_some(targets))
}

/// The objects the manifests name.
fn from_files(
    discovery: &Discovery,
    args: &DeleteArgs,
    console: &mut Console,
) -> Result<Vec<Target>, CliError> {
    let mut stdin = console.take_stdin();
    let sources = Sources {
        verb: "delete",
        filenames: &args.filenames,
        namespace_flag: args.namespace.as_deref(),
        discovery,
    };
    let objects = manifest::load(&sources, &mut stdin)?;
    Ok(objects
        .into_iter()
        .map(|o| Target {
            resource: o.resource,
            namespace: o.namespace,
            name: o.name,
        })
        .collect())
}

/// Sends the DELETE; returns the uid of the pod the agent is deleting, when it says.
async fn delete_one(
    client: &Client,
    target: &Target,
    grace_period: Option<i64>,
    console: &mut Console,
) -> Result<Option<String>, ClientError> {
    let mut query = Query::new();
    if let Some(seconds) = grace_period {
        query.push("gracePeriodSeconds", seconds.to_string());
    }
    let path = format!("{}{query}", target.path());
    let reply = client.send(Call::delete(path)).await?;
    for warning in warnings(&reply.headers) {
        console.eprintln(&format!("Warning: {warning}"));
    }
    let body = reply.success().await?.bytes().await?;
    let object = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    Ok(uid(&object).map(str::to_string))
}

/// The uid of the deleted object, or of the `Status` that says it is gone.
fn uid(answer: &Value) -> Option<&str> {
    let uid = answer
        .pointer("/metadata/uid")
        .or(answer.pointer("/details/uid"));
    uid.and_then(Value::as_str)
}

/// Polls until the object is NotFound (or a different one took its name).
async fn wait_gone(client: &Client, accepted: &Accepted) -> Result<(), ClientError> {
    let path = accepted.target.path();
    loop {
        match client.get_json::<Value>(&path).await {
            Err(ClientError::Api(error)) if error.is_not_found() => return Ok(()),
            Err(other) => return Err(other),
            Ok(live) if accepted.uid.is_some() && uid(&live) != accepted.uid.as_deref() => {
                return Ok(())
            }
            Ok(_) => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(grace: i64, now: bool, force: bool) -> DeleteArgs {
        DeleteArgs {
            targets: vec![],
            filenames: vec![],
            namespace: None,
            all: false,
            selector: None,
            field_selector: None,
            grace_period: grace,
            now,
            force,
            wait: true,
        }
    }

    #[test]
    fn grace_period_follows_kubectl() {
        assert_eq!(grace_period(&args(-1, false, false)), Ok(None));
        assert_eq!(grace_period(&args(30, false, false)), Ok(Some(30)));
        assert_eq!(grace_period(&args(0, false, false)), Ok(Some(1)));
        assert_eq!(grace_period(&args(0, false, true)), Ok(Some(0)));
        assert_eq!(grace_period(&args(-1, false, true)), Ok(Some(0)));
        assert_eq!(grace_period(&args(-1, true, false)), Ok(Some(1)));
        assert_eq!(
            grace_period(&args(5, true, false)),
            Err(DeleteError::NowWithGracePeriod)
        );
    }
}
