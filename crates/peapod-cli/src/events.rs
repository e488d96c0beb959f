//! `events`: the namespace's (or every namespace's) events as kubectl events prints them.

use jiff::Timestamp;
use peapod_printers::event_table;

use crate::args::EventsArgs;
use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::objects::list_events;

pub async fn events(
    client: &Client,
    args: EventsArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let namespace = args.namespace.as_deref().unwrap_or("default");
    let scope = (!args.all_namespaces).then_some(namespace);
    let events = list_events(client, scope, None).await?;
    if events.is_empty() {
        console.eprintln(&match scope {
            Some(ns) => format!("No events found in {ns} namespace."),
            None => "No events found.".to_string(),
        });
        return Ok(0);
    }
    console.print(&event_table(&events, args.all_namespaces, Timestamp::now()))?;
    Ok(0)
}
