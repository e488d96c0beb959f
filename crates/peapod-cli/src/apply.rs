//! `apply -f`: every manifest decoded first, then each object server-side applied with a
//! PATCH; prints `pod/NAME created|configured|unchanged` and the agent's warnings.

use crate::args::ApplyArgs;
use crate::client::{warnings, ApiError, Call, Client, ClientError, Reply};
use crate::console::Console;
use crate::error::CliError;
use crate::manifest::{self, ManifestObject};
use crate::query::pod_path;
use peapod_api::decode::Document;
use peapod_api::object::{parse_object, Decoded, Object};

/// Response header telling what the apply did.
const APPLY_RESULT_HEADER: &str = "x-peapod-apply";
const APPLY_PATCH: &str = "application/apply-patch+json";

pub async fn apply(
    client: &Client,
    args: ApplyArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let mut stdin = console.take_stdin();
    let objects = manifest::load(
        "apply",
        &args.filenames,
        args.namespace.as_deref(),
        &mut stdin,
    )?;
    // Validate every object as the agent will, before sending any: an invalid document
    // anywhere in the input means nothing is created (no half-applied multi-document file).
    if let Some(error) = objects.iter().find_map(invalid) {
        console.eprintln(&error.to_string());
        return Ok(1);
    }
    let mut failed = false;
    for object in &objects {
        let reply = send(client, object).await?;
        for warning in warnings(&reply.headers) {
            console.eprintln(&format!("Warning: {warning}"));
        }
        let result = result_word(&reply);
        match reply.success().await {
            Ok(_) => console.print(&format!("pod/{} {result}\n", object.name))?,
            Err(ClientError::Api(error)) => {
                console.eprintln(&error.to_string());
                failed = true;
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(i32::from(failed))
}

/// The agent's create-time refusal of `object` (defaulting then validation), if any.
fn invalid(object: &ManifestObject) -> Option<ApiError> {
    let doc = Document {
        index: object.document,
        value: object.value.clone(),
    };
    let Ok(Decoded {
        object: Object::Pod(pod),
        ..
    }) = parse_object(&doc)
    else {
        return None;
    };
    let mut pod = *pod;
    if pod.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        pod.metadata.namespace = Some(object.namespace.clone());
    }
    peapod_api::defaults::default_pod(&mut pod);
    let errors = peapod_api::validation::validate_pod(&pod).err()?;
    Some(ApiError {
        code: 422,
        reason: "Invalid".to_string(),
        message: errors.to_string(),
    })
}

async fn send(client: &Client, object: &ManifestObject) -> Result<Reply, ClientError> {
    let body = object.value.to_string().into_bytes();
    let call = Call::new(
        hyper::Method::PATCH,
        pod_path(&object.namespace, &object.name),
    )
    .body(APPLY_PATCH, body);
    client.send(call).await
}

/// `created`, `configured` or `unchanged` from the agent; `configured` when it does not say.
fn result_word(reply: &Reply) -> String {
    reply
        .headers
        .get(APPLY_RESULT_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or("configured")
        .to_string()
}
