//! `attach`: joins the streams of a running container's main process as kubectl 1.32 does.
//! Whether there is a terminal is the container's (`tty` in its spec): asking for one it does
//! not have is warned about, and a container that has one gets one. With a terminal, the
//! first size sent is one larger than the real one, so the attached program redraws.

use crate::args::AttachArgs;
use crate::client::Client;
use crate::console::Console;
use crate::error::CliError;
use crate::interactive::{self, FirstSize};
use crate::pod_target::{self, ChosenContainer};
use crate::remote::{RemoteError, Request, Subresource};
use crate::target::single_pod;

const PROMPT_HINT: &str = "If you don't see a command prompt, try pressing enter.";

pub async fn attach(
    client: &Client,
    args: AttachArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let streams = &args.target;
    let name = single_pod(&streams.pod)?;
    let namespace = streams.namespace.as_deref().unwrap_or("default");
    let pod = pod_target::fetch(client, namespace, &name).await?;
    pod_target::refuse_completed(&pod, "attach a container")?;
    let warn = (!args.quiet).then_some(&mut *console);
    let container = pod_target::choose_container(&pod, streams.container.as_deref(), warn)
        .map_err(RemoteError::Attach)?;
    let tty = container_terminal(&args, &container, console);
    let raw = interactive::use_terminal(streams.stdin, tty, args.quiet, console);
    if !args.quiet {
        console.eprintln(PROMPT_HINT);
    }
    let request = Request {
        namespace: namespace.to_string(),
        pod: name.clone(),
        container: container.name.clone(),
        subresource: Subresource::Attach,
        stdin: streams.stdin,
        tty: raw,
    };
    let code = interactive::run(client, &request, FirstSize::Redraw, console).await?;
    if !args.quiet && streams.stdin && raw {
        console.print(&format!(
            "Session ended, resume using 'peapod attach {name} -c {} -i -t' command when the pod is running\n",
            container.name
        ))?;
    }
    Ok(code)
}

/// The terminal follows the container's: `-t` without one is warned about and dropped, and a
/// container with one gets one without `-t`.
fn container_terminal(
    args: &AttachArgs,
    container: &ChosenContainer,
    console: &mut Console,
) -> bool {
    if args.target.tty && !container.tty && !args.quiet {
        console.eprintln(&format!(
            "error: Unable to use a TTY - container {} did not allocate one",
            container.name
        ));
    }
    container.tty
}
