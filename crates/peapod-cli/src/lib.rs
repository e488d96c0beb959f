//! peapod's kubectl-shaped client: parses nothing itself (the `peapod` binary embeds
//! [`ClientCommand`]), talks HTTP/1.1 to the agent over its Unix socket and prints what
//! kubectl would. Types are found through the agent's discovery, so get, describe, apply and
//! delete work for every kind it serves.

mod apply;
mod args;
mod attach;
mod client;
pub mod completion;
mod console;
mod cp;
mod delete;
mod describe;
mod describe_text;
mod describers;
mod discovery;
mod error;
mod events;
mod exec;
mod fetch;
mod get;
mod images;
mod interactive;
mod logs;
mod manifest;
mod objects;
mod output;
pub mod pod_events;
mod pod_target;
mod port_forward;
mod pull;
mod query;
mod remote;
mod resource;
mod table;
mod target;
mod terminal;
mod top;
mod upgrade;
mod watch;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use args::{
    ApplyArgs, AttachArgs, ClientCommand, CpArgs, DeleteArgs, DescribeArgs, EventsArgs, ExecArgs,
    GetArgs, ImageArgs, ImageCommand, ImagesArgs, ImportArgs, LoadArgs, LogsArgs, OutputFormat,
    PortForwardArgs, PullArgs, RmiArgs, TopArgs, TopCommand, TopPodArgs,
};
pub use client::{ApiError, Call, Client, ClientError};
pub use completion::{CompletionArgs, CompletionShell};
pub use console::Console;
pub use error::CliError;

/// Runs one client verb against the agent at `socket` on the process's own streams; returns
/// the exit code. Errors print one line on stderr (kubectl style) and give 1.
pub async fn run(socket: PathBuf, command: ClientCommand) -> i32 {
    run_with(&Client::new(socket), command, &mut Console::std()).await
}

/// [`run`] with any client and streams.
pub async fn run_with(client: &Client, command: ClientCommand, console: &mut Console) -> i32 {
    match dispatch(client, command, console).await {
        Ok(code) => code,
        Err(error) => {
            if let Some(line) = error.render() {
                console.eprintln(&line);
            }
            1
        }
    }
}

async fn dispatch(
    client: &Client,
    command: ClientCommand,
    console: &mut Console,
) -> Result<i32, CliError> {
    match command {
        ClientCommand::Apply(args) => apply::apply(client, args, console).await,
        ClientCommand::Get(args) => get::get(client, args, console).await,
        ClientCommand::Describe(args) => describe::describe(client, args, console).await,
        ClientCommand::Logs(args) => logs::logs(client, args, console).await,
        ClientCommand::Exec(args) => exec::exec(client, args, console).await,
        ClientCommand::Attach(args) => attach::attach(client, args, console).await,
        ClientCommand::Cp(args) => cp::cp(client, args, console).await,
        ClientCommand::PortForward(args) => port_forward::port_forward(client, args, console).await,
        ClientCommand::Delete(args) => delete::delete(client, args, console).await,
        ClientCommand::Events(args) => events::events(client, args, console).await,
        ClientCommand::Images(args) => images::images(client, args, console).await,
        ClientCommand::Load(args) => images::load(client, args, console).await,
        ClientCommand::Import(args) => images::import(client, args, console).await,
        ClientCommand::Rmi(args) => images::rmi(client, args, console).await,
        ClientCommand::Pull(args) => pull::pull(client, args, console).await,
        ClientCommand::Image(ImageArgs {
            command: ImageCommand::Prune,
        }) => pull::prune(client, console).await,
        ClientCommand::Top(args) => top::top(client, args, console).await,
    }
}
