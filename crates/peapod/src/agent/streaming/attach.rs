//! pods/attach: joins the streams of a running container's main process through its shim
//! (`kubectl attach`, `kubectl run -it`). Whether there is a terminal is the container's
//! (`tty` in its spec), not the request's, as kubelet's GetAttach decides.

use axum::extract::{Path, RawQuery, Request, State};
use axum::response::Response;
use peapod_streams::negotiate::Service;
use peapod_streams::remotecommand::Outcome;

use super::bridge::{self, ShimStatus};
use super::exec::options;
use super::{negotiated, target, upgrade, ConnectQuery, Result, Shared};

pub async fn serve(
    State(ctx): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    request: Request,
) -> Result<Response> {
    let query = ConnectQuery::parse(query);
    let mut options = options(&query)?;
    let target = target(&ctx, &ns, &name, query.value("container"))?;
    options.tty = target.container.tty.unwrap_or(false);
    options.stderr &= !options.tty;
    let attach_stdin = options.stdin && target.container.stdin.unwrap_or(false);
    let negotiated = negotiated(&request, Service::RemoteCommand)?;
    Ok(upgrade(request, negotiated, move |io, negotiated| {
        bridge::serve(
            io,
            negotiated,
            options,
            "error attaching to container",
            move || async move {
                target
                    .shim
                    .attach(&target.id, attach_stdin, options.tty)
                    .await
            },
            outcome,
        )
    }))
}

/// kubelet's ServeAttach reports no exit code: the container ending ends the attach.
fn outcome(status: ShimStatus) -> Outcome {
    match status.error {
        None => Outcome::Success,
        Some(error) => Outcome::Internal(format!("error attaching to container: {error}")),
    }
}
