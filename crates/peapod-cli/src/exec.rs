//! `exec`: runs a command in a container as kubectl does: the pod is fetched first (a
//! completed pod is refused, the default container taken when `-c` is not given), then the
//! command runs over WebSocket `v5.channel.k8s.io` with the streams asked for, and its exit
//! code becomes ours.

use crate::args::ExecArgs;
use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::interactive::{self, FirstSize};
use crate::remote::{self, Target};
use crate::target::single_pod;

pub async fn exec(client: &Client, args: ExecArgs, console: &mut Console) -> Result<i32, CliError> {
    let streams = args.target;
    let name = single_pod(&streams.pod)?;
    let target = Target {
        namespace: streams.namespace.as_deref().unwrap_or("default"),
        pod: &name,
        container: streams.container.as_deref(),
    };
    let request =
        remote::exec_request(client, target, args.command, streams.stdin, Some(console)).await?;
    let tty = interactive::use_terminal(streams.stdin, streams.tty, false, console);
    let request = remote::Request { tty, ..request };
    interactive::run(client, &request, FirstSize::Current, console).await
}
