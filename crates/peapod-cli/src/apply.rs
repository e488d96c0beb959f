//! `apply -f`: every manifest decoded and checked first, then each object server-side
//! applied with a PATCH; prints `pod/NAME created|configured|unchanged` and the warnings.

use crate::args::ApplyArgs;
use crate::client::{warnings, ApiError, Call, Client, ClientError, Reply};
use crate::console::Console;
use crate::error::CliError;
use crate::manifest::{self, ManifestObject};
use crate::query::pod_path;
use peapod_api::field_validation::FieldValidation;
use peapod_api::object::{parse_object, Decoded, Object};
use peapod_api::validation::go_quote;

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
    let mode = FieldValidation::from(args.validate);
    // Check every object as the API server will, before sending any: a refused document
    // anywhere in the input means nothing is created (no half-applied multi-document file).
    let mut checked = Vec::with_capacity(objects.len());
    for object in &objects {
        match admit(object, mode) {
            Ok(warnings) => checked.push((object, warnings)),
            Err(error) => {
                console.eprintln(&error.to_string());
                return Ok(1);
            }
        }
    }
    let mut failed = false;
    for (object, local_warnings) in checked {
        let reply = send(client, object, mode).await?;
        let agent_warnings = warnings(&reply.headers)
            .into_iter()
            .filter(|w| mode != FieldValidation::Ignore || !is_unknown_field(w));
        for warning in local_warnings.into_iter().chain(agent_warnings) {
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

/// The API server's create-time refusal of `object` (strict decoding under `mode`, then
/// defaulting and validation), or the warnings only the CLI can give: the agent gets the
/// document re-encoded, without its duplicate keys.
fn admit(object: &ManifestObject, mode: FieldValidation) -> Result<Vec<String>, ApiError> {
    // manifest::load has decoded every object already.
    let Ok(decoded) = parse_object(&object.document()) else {
        return Ok(Vec::new());
    };
    decoded
        .field_validation(mode, mode)
        .map_err(|error| ApiError {
            code: 400,
            reason: "BadRequest".to_string(),
            message: format!("error when creating {}: {error}", go_quote(&object.source)),
        })?;
    validate(object, decoded)?;
    if mode != FieldValidation::Warn {
        return Ok(Vec::new());
    }
    Ok(object.duplicates.iter().map(ToString::to_string).collect())
}

/// Defaulting then validation, as the agent does them.
fn validate(object: &ManifestObject, decoded: Decoded) -> Result<(), ApiError> {
    let Object::Pod(pod) = decoded.object;
    let mut pod = *pod;
    if pod.metadata.namespace.as_deref().is_none_or(str::is_empty) {
        pod.metadata.namespace = Some(object.namespace.clone());
    }
    peapod_api::defaults::default_pod(&mut pod);
    peapod_api::validation::validate_pod(&pod).map_err(|errors| ApiError {
        code: 422,
        reason: "Invalid".to_string(),
        message: errors.to_string(),
    })
}

/// The agent warns of unknown fields until it reads `fieldValidation` itself.
fn is_unknown_field(warning: &str) -> bool {
    warning.starts_with("unknown field \"")
}

async fn send(
    client: &Client,
    object: &ManifestObject,
    mode: FieldValidation,
) -> Result<Reply, ClientError> {
    let body = object.value.to_string().into_bytes();
    let path = format!(
        "{}?fieldValidation={}",
        pod_path(&object.namespace, &object.name),
        field_validation_param(mode)
    );
    let call = Call::new(hyper::Method::PATCH, path).body(APPLY_PATCH, body);
    client.send(call).await
}

/// The API's `fieldValidation` value, which kubectl sends with every write.
fn field_validation_param(mode: FieldValidation) -> &'static str {
    match mode {
        FieldValidation::Strict => "Strict",
        FieldValidation::Warn => "Warn",
        FieldValidation::Ignore => "Ignore",
    }
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
