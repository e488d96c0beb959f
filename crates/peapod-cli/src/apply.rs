//! `apply -f` for any served kind: every manifest decoded and checked first (pods also
//! defaulted and validated as the agent will), then each object created, or replaced with the
//! live resourceVersion as the precondition: a pod's labels, annotations and spec, any other
//! object whole but its status (kubectl replace's semantics). Prints
//! `KIND/NAME created|configured|unchanged` and the warnings.

use crate::args::ApplyArgs;
use crate::client::{warnings, ApiError, Call, Client, ClientError, Reply};
use crate::console::Console;
use crate::discovery::discover;
use crate::error::CliError;
use crate::manifest::{self, ManifestObject, Sources};
use peapod_api::field_validation::{FieldValidation, StrictDecodingError, StrictFields};
use peapod_api::object::{parse_object, Decoded, Object};
use peapod_api::validation::go_quote;

pub async fn apply(
    client: &Client,
    args: ApplyArgs,
    console: &mut Console,
) -> Result<i32, CliError> {
    let discovery = discover(client).await?;
    let mut stdin = console.take_stdin();
    let sources = Sources {
        verb: "apply",
        filenames: &args.filenames,
        namespace_flag: args.namespace.as_deref(),
        discovery: &discovery,
    };
    let objects = manifest::load(&sources, &mut stdin)?;
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
        let outcome = send(client, object, mode).await?;
        let agent_warnings = outcome
            .warnings
            .into_iter()
            .filter(|w| mode != FieldValidation::Ignore || !is_unknown_field(w));
        for warning in local_warnings.into_iter().chain(agent_warnings) {
            console.eprintln(&format!("Warning: {warning}"));
        }
        match outcome.result {
            Ok(result) => {
                let kind = object.resource.kind_label();
                console.print(&format!("{kind}/{} {result}\n", object.name))?;
            }
            Err(error) => {
                console.eprintln(&error.to_string());
                failed = true;
            }
        }
    }
    Ok(i32::from(failed))
}

/// The API server's create-time refusal of `object` (strict decoding under `mode`, then for
/// pods defaulting and validation), or the warnings only the CLI can give: the agent gets the
/// document re-encoded, without its duplicate keys. Other kinds are the server's to judge,
/// but for those keys.
fn admit(object: &ManifestObject, mode: FieldValidation) -> Result<Vec<String>, ApiError> {
    let refused = |error: StrictDecodingError| ApiError {
        code: 400,
        reason: "BadRequest".to_string(),
        message: format!("error when creating {}: {error}", go_quote(&object.source)),
    };
    if object.resource.is_pod() {
        // manifest::load has decoded every pod already.
        let Ok(decoded) = parse_object(&object.document()) else {
            return Ok(Vec::new());
        };
        decoded.field_validation(mode, mode).map_err(refused)?;
        validate(object, decoded)?;
    } else {
        let fields = StrictFields {
            unknown: Vec::new(),
            duplicates: object.duplicates.clone(),
        };
        fields.check(mode, mode).map_err(|errors| {
            refused(StrictDecodingError {
                kind: object.resource.kind.clone(),
                version: object.resource.version.clone(),
                errors,
            })
        })?;
    }
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

/// What the agent said to one object: its warnings, and the result word or its refusal.
struct Outcome {
    warnings: Vec<String>,
    result: Result<&'static str, ApiError>,
}

/// Times a replace is tried again when the object changed between its read and its write
/// (kubectl apply's `maxPatchRetry`).
const CONFLICT_RETRIES: usize = 5;

/// [`send_once`], again while the live object keeps changing under it (a status write).
async fn send(
    client: &Client,
    object: &ManifestObject,
    mode: FieldValidation,
) -> Result<Outcome, ClientError> {
    let mut attempt = 0;
    loop {
        let outcome = send_once(client, object, mode).await?;
        attempt += 1;
        match &outcome.result {
            Err(error) if error.reason == "Conflict" && attempt < CONFLICT_RETRIES => {}
            _ => return Ok(outcome),
        }
    }
}

/// Creates the object, or replaces a live one (see [`overlay`] and [`replace`]) with the live
/// resourceVersion as the precondition.
async fn send_once(
    client: &Client,
    object: &ManifestObject,
    mode: FieldValidation,
) -> Result<Outcome, ClientError> {
    let path = object.resource.object(&object.namespace, &object.name);
    let query = format!("?fieldValidation={}", field_validation_param(mode));
    let live = match client.send(Call::get(path.clone())).await?.success().await {
        Ok(reply) => reply.json::<serde_json::Value>().await?,
        Err(ClientError::Api(error)) if error.is_not_found() => {
            let collection = object.resource.collection(Some(&object.namespace));
            let call =
                Call::new(hyper::Method::POST, format!("{collection}{query}")).json(&object.value);
            return outcome(client.send(call).await?, |_| "created").await;
        }
        Err(ClientError::Api(error)) => {
            let result = Err(error);
            return Ok(Outcome {
                warnings: Vec::new(),
                result,
            });
        }
        Err(other) => return Err(other),
    };
    let before = resource_version(&live);
    let candidate = if object.resource.is_pod() {
        overlay(&live, &object.value)
    } else {
        replace(&live, &object.value)
    };
    let call = Call::new(hyper::Method::PUT, format!("{path}{query}")).json(&candidate);
    outcome(client.send(call).await?, move |after| {
        if resource_version(after) == before {
            "unchanged"
        } else {
            "configured"
        }
    })
    .await
}

async fn outcome(
    reply: Reply,
    word: impl FnOnce(&serde_json::Value) -> &'static str,
) -> Result<Outcome, ClientError> {
    let warnings = warnings(&reply.headers);
    let result = match reply.json::<serde_json::Value>().await {
        Ok(stored) => Ok(word(&stored)),
        Err(ClientError::Api(error)) => Err(error),
        Err(other) => return Err(other),
    };
    Ok(Outcome { warnings, result })
}

/// The manifest's object with the live resourceVersion and status: kubectl replace. The
/// live uid and creationTimestamp come along too (immutable: sending them changes nothing).
fn replace(live: &serde_json::Value, manifest: &serde_json::Value) -> serde_json::Value {
    let mut candidate = manifest.clone();
    if let Some(map) = candidate.as_object_mut() {
        let metadata = map
            .entry("metadata")
            .or_insert_with(|| serde_json::json!({}));
        for field in ["resourceVersion", "uid", "creationTimestamp"] {
            if let Some(value) = live["metadata"].get(field) {
                metadata[field] = value.clone();
            }
        }
        match live.get("status") {
            Some(status) => {
                map.insert("status".to_string(), status.clone());
            }
            None => {
                map.remove("status");
            }
        }
    }
    candidate
}

/// The live pod with the manifest's labels, annotations and spec (a bound pod keeps its
/// node, an admitted pod its service account).
fn overlay(live: &serde_json::Value, manifest: &serde_json::Value) -> serde_json::Value {
    let mut candidate = live.clone();
    for field in ["labels", "annotations"] {
        match manifest.pointer(&format!("/metadata/{field}")) {
            Some(value) => candidate["metadata"][field] = value.clone(),
            None => {
                if let Some(metadata) = candidate["metadata"].as_object_mut() {
                    metadata.remove(field);
                }
            }
        }
    }
    let mut spec = manifest.get("spec").cloned().unwrap_or_default();
    // Set by the server after the manifest: the node by the binding, the account (and its
    // pull secrets) by ServiceAccount admission.
    let server_set = [
        "nodeName",
        "serviceAccountName",
        "serviceAccount",
        "imagePullSecrets",
    ];
    for field in server_set {
        let kept = live["spec"].get(field).cloned();
        if let (Some(fields), Some(value)) = (spec.as_object_mut(), kept) {
            fields.entry(field).or_insert(value);
        }
    }
    keep_token_volume(&live["spec"], &mut spec);
    candidate["spec"] = spec;
    candidate
}

/// The `kube-api-access-` volume ServiceAccount admission added, and its mounts, stay where the
/// manifest has none of that name.
fn keep_token_volume(live: &serde_json::Value, spec: &mut serde_json::Value) {
    let is_token_volume = |name: &str| name.starts_with("kube-api-access-");
    let Some(volume) = live["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["name"].as_str().is_some_and(is_token_volume))
    else {
        return;
    };
    let name = &volume["name"];
    let has_own = spec["volumes"]
        .as_array()
        .is_some_and(|volumes| volumes.iter().any(|v| &v["name"] == name));
    if has_own {
        return;
    }
    push(&mut spec["volumes"], volume.clone());
    for list in ["initContainers", "containers"] {
        let live_containers = live[list].as_array().into_iter().flatten();
        for live_container in live_containers {
            let Some(mount) = live_container["volumeMounts"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| &m["name"] == name)
            else {
                continue;
            };
            let container = spec
                .get_mut(list)
                .and_then(serde_json::Value::as_array_mut)
                .and_then(|c| c.iter_mut().find(|c| c["name"] == live_container["name"]));
            if let Some(container) = container {
                let taken = container["volumeMounts"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["mountPath"] == mount["mountPath"]));
                if !taken {
                    push(&mut container["volumeMounts"], mount.clone());
                }
            }
        }
    }
}

fn push(list: &mut serde_json::Value, item: serde_json::Value) {
    match list.as_array_mut() {
        Some(items) => items.push(item),
        None => *list = serde_json::Value::Array(vec![item]),
    }
}

fn resource_version(object: &serde_json::Value) -> String {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The API's `fieldValidation` value, which kubectl sends with every write.
fn field_validation_param(mode: FieldValidation) -> &'static str {
    match mode {
        FieldValidation::Strict => "Strict",
        FieldValidation::Warn => "Warn",
        FieldValidation::Ignore => "Ignore",
    }
}
