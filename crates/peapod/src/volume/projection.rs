//! The files of the kubelet's API-data volumes — configMap, secret, downwardAPI and projected —
//! as their plugins compute them (MakePayload, CollectData, collectData), with the plugins'
//! error messages. Pure: reads the pod and the watched objects, writes nothing.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, ProjectedVolumeSource, Secret,
    ServiceAccountTokenProjection, Volume,
};
use k8s_openapi::ByteString;
use peapod_api::validation::go_quote;

use super::atomic_writer::{FileProjection, Payload};
use crate::kubelet::config_objects::ConfigObjects;
use crate::kubelet::downward::{self, NodeAllocatable};
use crate::kubelet::service_account_tokens::{TokenFetchError, TokenKey, TokenManager};

/// What the API-data volumes read besides the pod.
pub struct Sources<'a> {
    pub config: &'a ConfigObjects,
    pub allocatable: &'a NodeAllocatable,
    /// Tokens fetched for the pod before its volumes are written.
    pub tokens: &'a TokenManager,
}

/// The four plugins, with their directory names under the pod's `volumes/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiData {
    ConfigMap,
    Secret,
    DownwardApi,
    Projected,
}

impl ApiData {
    pub fn of(volume: &Volume) -> Option<ApiData> {
        if volume.config_map.is_some() {
            Some(ApiData::ConfigMap)
        } else if volume.secret.is_some() {
            Some(ApiData::Secret)
        } else if volume.downward_api.is_some() {
            Some(ApiData::DownwardApi)
        } else if volume.projected.is_some() {
            Some(ApiData::Projected)
        } else {
            None
        }
    }

    pub fn plugin_dir(self) -> &'static str {
        match self {
            ApiData::ConfigMap => "kubernetes.io~configmap",
            ApiData::Secret => "kubernetes.io~secret",
            ApiData::DownwardApi => "kubernetes.io~downward-api",
            ApiData::Projected => "kubernetes.io~projected",
        }
    }

    /// kubelet wraps all but configMap volumes in a memory-backed emptyDir: secrets never
    /// touch the disk.
    pub fn in_memory(self) -> bool {
        self != ApiData::ConfigMap
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("configmap {} not found", go_quote(.0))]
    ConfigMapNotFound(String),
    #[error("secret {} not found", go_quote(.0))]
    SecretNotFound(String),
    #[error("configmap references non-existent config key: {0}")]
    ConfigMapKey(String),
    #[error("references non-existent secret key: {0}")]
    SecretKey(String),
    #[error("{0}")]
    FieldPath(String),
    #[error("{0}")]
    Resource(String),
    #[error("no defaultMode used, not even the default value for it")]
    NoDefaultMode,
    #[error(transparent)]
    Token(#[from] TokenFetchError),
    /// Go's utilerrors aggregate: one message alone, several in brackets.
    #[error("{}", aggregate(.0))]
    Several(Vec<PayloadError>),
}

fn aggregate(errors: &[PayloadError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for message in errors.iter().map(ToString::to_string) {
        if !seen.contains(&message) {
            seen.push(message);
        }
    }
    match seen.len() {
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

fn collected(payload: Payload, mut errors: Vec<PayloadError>) -> Result<Payload, PayloadError> {
    match errors.len() {
        0 => Ok(payload),
        1 => Err(errors.remove(0)),
        _ => Err(PayloadError::Several(errors)),
    }
}

/// The files of an API-data volume (None: another kind of volume).
pub fn payload(
    volume: &Volume,
    pod: &Pod,
    sources: &Sources,
) -> Option<Result<Payload, PayloadError>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let result = match ApiData::of(volume)? {
        ApiData::ConfigMap => {
            let source = volume.config_map.as_ref()?;
            let optional = source.optional == Some(true);
            source
                .default_mode
                .ok_or(PayloadError::NoDefaultMode)
                .and_then(|mode| {
                    let found = sources.config.config_map(namespace, &source.name);
                    config_map_payload(
                        &source.name,
                        found.as_deref(),
                        &items(&source.items),
                        mode,
                        optional,
                    )
                })
        }
        ApiData::Secret => {
            let source = volume.secret.as_ref()?;
            let name = source.secret_name.clone().unwrap_or_default();
            let optional = source.optional == Some(true);
            source
                .default_mode
                .ok_or(PayloadError::NoDefaultMode)
                .and_then(|mode| {
                    let found = sources.config.secret(namespace, &name);
                    secret_payload(
                        &name,
                        found.as_deref(),
                        &items(&source.items),
                        mode,
                        optional,
                    )
                })
        }
        ApiData::DownwardApi => {
            let source = volume.downward_api.as_ref()?;
            source
                .default_mode
                .ok_or(PayloadError::NoDefaultMode)
                .and_then(|mode| {
                    downward_payload(
                        source.items.as_deref().unwrap_or_default(),
                        pod,
                        sources,
                        mode,
                    )
                })
        }
        ApiData::Projected => projected_payload(volume.projected.as_ref()?, pod, sources),
    };
    Some(result)
}

fn items(items: &Option<Vec<KeyToPath>>) -> Vec<KeyToPath> {
    items.clone().unwrap_or_default()
}

/// configmap.MakePayload: every key (data and binaryData) at its own name, or the items.
fn config_map_payload(
    name: &str,
    config_map: Option<&ConfigMap>,
    items: &[KeyToPath],
    default_mode: i32,
    optional: bool,
) -> Result<Payload, PayloadError> {
    let config_map = match config_map {
        Some(found) => found,
        None if optional => &ConfigMap::default(),
        None => return Err(PayloadError::ConfigMapNotFound(name.to_string())),
    };
    let text = config_map.data.iter().flatten();
    let mut values: BTreeMap<&str, &[u8]> = text.map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
    for (key, bytes) in config_map.binary_data.iter().flatten() {
        values.entry(key).or_insert(&bytes.0);
    }
    keyed_payload(
        &values,
        items,
        default_mode,
        optional,
        PayloadError::ConfigMapKey,
    )
}

/// secret.MakePayload, the same over the Secret's data.
fn secret_payload(
    name: &str,
    secret: Option<&Secret>,
    items: &[KeyToPath],
    default_mode: i32,
    optional: bool,
) -> Result<Payload, PayloadError> {
    let secret = match secret {
        Some(found) => found,
        None if optional => &Secret::default(),
        None => return Err(PayloadError::SecretNotFound(name.to_string())),
    };
    let data: Option<&BTreeMap<String, ByteString>> = secret.data.as_ref();
    let values: BTreeMap<&str, &[u8]> = data
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.0.as_slice()))
        .collect();
    keyed_payload(
        &values,
        items,
        default_mode,
        optional,
        PayloadError::SecretKey,
    )
}

/// Without items every key is a file; with items each names its key, path and mode, and a
/// missing key fails the volume unless it is optional.
fn keyed_payload(
    values: &BTreeMap<&str, &[u8]>,
    items: &[KeyToPath],
    default_mode: i32,
    optional: bool,
    missing: fn(String) -> PayloadError,
) -> Result<Payload, PayloadError> {
    let file = |data: &[u8], mode: i32| FileProjection {
        data: data.to_vec(),
        mode: mode as u32,
        fs_user: None,
    };
    if items.is_empty() {
        return Ok(values
            .iter()
            .map(|(key, data)| (key.to_string(), file(data, default_mode)))
            .collect());
    }
    let mut payload = Payload::new();
    for item in items {
        match values.get(item.key.as_str()) {
            Some(data) => {
                let mode = item.mode.unwrap_or(default_mode);
                payload.insert(item.path.clone(), file(data, mode));
            }
            None if optional => {}
            None => return Err(missing(item.key.clone())),
        }
    }
    Ok(payload)
}

/// downwardapi.CollectData: every item is written; any that fails fails the volume.
fn downward_payload(
    items: &[DownwardAPIVolumeFile],
    pod: &Pod,
    sources: &Sources,
    default_mode: i32,
) -> Result<Payload, PayloadError> {
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for item in items {
        let value = if let Some(field_ref) = &item.field_ref {
            metadata_field(pod, &field_ref.field_path).map_err(PayloadError::FieldPath)
        } else if let Some(resource_ref) = &item.resource_field_ref {
            let container = resource_ref.container_name.as_deref().unwrap_or_default();
            downward::resource_field_value(pod, container, resource_ref, sources.allocatable)
                .map_err(|err| PayloadError::Resource(err.to_string()))
        } else {
            Ok(String::new())
        };
        let data = value.unwrap_or_else(|err| {
            errors.push(err);
            String::new()
        });
        let mode = item.mode.unwrap_or(default_mode) as u32;
        let file = FileProjection {
            data: data.into_bytes(),
            mode,
            fs_user: None,
        };
        payload.insert(item.path.clone(), file);
    }
    collected(payload, errors)
}

/// projected collectData: the sources in order, a later file replacing an earlier one at the
/// same path; a source that fails is reported and the volume is not written. Trust-bundle
/// sources are not implemented (the API warns about them).
fn projected_payload(
    projected: &ProjectedVolumeSource,
    pod: &Pod,
    sources: &Sources,
) -> Result<Payload, PayloadError> {
    let Some(default_mode) = projected.default_mode else {
        return Err(PayloadError::NoDefaultMode);
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut payload = Payload::new();
    let mut errors = Vec::new();
    for source in projected.sources.iter().flatten() {
        let part = if let Some(secret) = &source.secret {
            let found = sources.config.secret(namespace, &secret.name);
            let optional = secret.optional == Some(true);
            secret_payload(
                &secret.name,
                found.as_deref(),
                &items(&secret.items),
                default_mode,
                optional,
            )
        } else if let Some(config_map) = &source.config_map {
            let found = sources.config.config_map(namespace, &config_map.name);
            let optional = config_map.optional == Some(true);
            let items = items(&config_map.items);
            config_map_payload(
                &config_map.name,
                found.as_deref(),
                &items,
                default_mode,
                optional,
            )
        } else if let Some(downward) = &source.downward_api {
            let items = downward.items.as_deref().unwrap_or_default();
            downward_payload(items, pod, sources, default_mode)
        } else if let Some(projection) = &source.service_account_token {
            token_payload(projection, pod, sources, default_mode)
        } else {
            continue;
        };
        match part {
            Ok(files) => payload.extend(files),
            Err(err) => errors.push(err),
        }
    }
    collected(payload, errors)
}

/// The pod's bound token at the projection's path. With an fsGroup, or one user all
/// containers run as, the file is 0600 (the fsGroup walk makes it 0640) and that user's.
fn token_payload(
    projection: &ServiceAccountTokenProjection,
    pod: &Pod,
    sources: &Sources,
    default_mode: i32,
) -> Result<Payload, PayloadError> {
    let token = sources.tokens.token(&TokenKey::of(pod, projection))?;
    let fs_user = fs_user(pod);
    let fs_group = pod
        .spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.fs_group);
    let mode = if fs_user.is_some() || fs_group.is_some() {
        0o600
    } else {
        default_mode as u32
    };
    let file = FileProjection {
        data: token.into_bytes(),
        mode,
        fs_user,
    };
    Ok(Payload::from([(projection.path.clone(), file)]))
}

/// `FsUserFrom`: the user every init and app container runs as, when they all name the same.
fn fs_user(pod: &Pod) -> Option<u32> {
    let spec = pod.spec.as_ref()?;
    let pod_user = spec.security_context.as_ref().and_then(|s| s.run_as_user);
    let mut users = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .map(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.run_as_user)
                .or(pod_user)
        });
    let first = users.next()??;
    users
        .all(|user| user == Some(first))
        .then_some(first as u32)
}

/// fieldpath.ExtractFieldPathAsString: the metadata a downwardAPI volume may show; whole
/// label and annotation maps as sorted `key="value"` lines.
pub fn metadata_field(pod: &Pod, field_path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let subscripted = field_path
        .strip_suffix("']")
        .and_then(|inner| inner.split_once("['"));
    if let Some((path, key)) = subscripted {
        let map = match path {
            "metadata.annotations" => &meta.annotations,
            "metadata.labels" => &meta.labels,
            _ => {
                return Err(format!(
                    "fieldPath {} does not support subscript",
                    go_quote(field_path)
                ))
            }
        };
        return Ok(map
            .as_ref()
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or_default());
    }
    match field_path {
        "metadata.annotations" => Ok(format_map(meta.annotations.as_ref())),
        "metadata.labels" => Ok(format_map(meta.labels.as_ref())),
        "metadata.name" => Ok(meta.name.clone().unwrap_or_default()),
        "metadata.namespace" => Ok(meta.namespace.clone().unwrap_or_default()),
        "metadata.uid" => Ok(meta.uid.clone().unwrap_or_default()),
        _ => Err(format!("unsupported fieldPath: {field_path}")),
    }
}

fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(key, value)| format!("{key}={}", go_quote(value)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn sources_with(objects: &ConfigObjects) -> Sources<'_> {
        static ALLOCATABLE: std::sync::OnceLock<NodeAllocatable> = std::sync::OnceLock::new();
        Sources {
            config: objects,
            allocatable: ALLOCATABLE.get_or_init(|| NodeAllocatable {
                cpu: k8s_openapi::apimachinery::pkg::api::resource::Quantity("4".into()),
                memory: k8s_openapi::apimachinery::pkg::api::resource::Quantity("8Gi".into()),
                ephemeral_storage: None,
            }),
            tokens: tokens(),
        }
    }

    /// Holds "tok" for pod `ns/web` (uid u1, account default) asking 3607 s for the API.
    fn tokens() -> &'static TokenManager {
        static TOKENS: std::sync::OnceLock<TokenManager> = std::sync::OnceLock::new();
        TOKENS.get_or_init(|| {
            let client = peapod_apiserver::client::LocalClient::new(axum::Router::new());
            let tokens = TokenManager::new(client);
            let key = TokenKey::of(
                &token_pod(json!({})),
                &ServiceAccountTokenProjection {
                    expiration_seconds: Some(3607),
                    path: "token".into(),
                    ..Default::default()
                },
            );
            let now = jiff::Timestamp::now();
            let expires = (now + jiff::SignedDuration::from_secs(3607)).to_string();
            let answer = json!({"status": {"token": "tok", "expirationTimestamp": expires}});
            tokens.record(key, Ok(answer), now);
            tokens
        })
    }

    fn token_pod(spec: Value) -> Pod {
        let mut spec = spec;
        spec["serviceAccountName"] = json!("default");
        serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "web", "uid": "u1"},
            "spec": spec
        }))
        .unwrap()
    }

    #[test]
    fn the_token_file_is_the_pods_bound_token_owned_by_its_one_user() {
        let objects = ConfigObjects::default();
        let sources = sources_with(&objects);
        let volume: Volume = serde_json::from_value(json!({"name": "t", "projected": {
            "defaultMode": 0o644,
            "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]
        }}))
        .unwrap();
        let file = |spec: Value| {
            let payload = payload(&volume, &token_pod(spec), &sources)
                .unwrap()
                .unwrap();
            let file = &payload["token"];
            (
                String::from_utf8(file.data.clone()).unwrap(),
                file.mode,
                file.fs_user,
            )
        };
        let containers =
            json!([{"name": "a", "securityContext": {"runAsUser": 1000}}, {"name": "b"}]);
        assert_eq!(
            file(json!({"containers": containers})),
            ("tok".into(), 0o644, None)
        );
        let one_user = json!({"securityContext": {"runAsUser": 1000}, "containers": containers});
        assert_eq!(file(one_user), ("tok".into(), 0o600, Some(1000)));
        let fs_group = json!({"securityContext": {"fsGroup": 5}, "containers": [{"name": "a"}]});
        assert_eq!(file(fs_group), ("tok".into(), 0o600, None));

        let other: Volume = serde_json::from_value(json!({"name": "t", "projected": {
            "defaultMode": 0o644,
            "sources": [{"serviceAccountToken": {"path": "token", "audience": "vault"}}]
        }}))
        .unwrap();
        let err = payload(&other, &token_pod(json!({})), &sources)
            .unwrap()
            .unwrap_err();
        assert_eq!(err.to_string(), "failed to fetch token: not requested yet");
    }

    fn objects() -> ConfigObjects {
        let objects = ConfigObjects::default();
        objects.put_config_map(
            serde_json::from_value(json!({
                "metadata": {"namespace": "ns", "name": "cm"},
                "data": {"data-1": "value-1", "data-2": "value-2"},
                "binaryData": {"bin": "AAEC"}
            }))
            .unwrap(),
        );
        objects.put_secret(
            serde_json::from_value(json!({
                "metadata": {"namespace": "ns", "name": "s"},
                "data": {"data-1": "dmFsdWUtMQo="}
            }))
            .unwrap(),
        );
        objects
    }

    fn pod(volume: serde_json::Value) -> (Pod, Volume) {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "p", "uid": "u-1",
                         "labels": {"b": "2", "a": "x\"y"}, "annotations": {"k": "v"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}],
                     "volumes": [volume]}
        }))
        .unwrap();
        let volume = pod.spec.as_ref().unwrap().volumes.as_ref().unwrap()[0].clone();
        (pod, volume)
    }

    fn files(result: Result<Payload, PayloadError>) -> Vec<(String, String, u32)> {
        result
            .unwrap()
            .into_iter()
            .map(|(p, f)| (p, String::from_utf8_lossy(&f.data).into_owned(), f.mode))
            .collect()
    }

    fn run(volume: serde_json::Value) -> Result<Payload, PayloadError> {
        let objects = objects();
        let (pod, volume) = pod(volume);
        payload(&volume, &pod, &sources_with(&objects)).unwrap()
    }

    fn owned(list: &[(&str, &str, u32)]) -> Vec<(String, String, u32)> {
        list.iter()
            .map(|(p, d, m)| (p.to_string(), d.to_string(), *m))
            .collect()
    }

    #[test]
    fn config_map_keys_and_items() {
        let all = run(json!({"name": "v", "configMap": {"name": "cm", "defaultMode": 0o644}}));
        assert_eq!(
            files(all),
            owned(&[
                ("bin", "\0\u{1}\u{2}", 0o644),
                ("data-1", "value-1", 0o644),
                ("data-2", "value-2", 0o644)
            ])
        );
        let mapped = run(
            json!({"name": "v", "configMap": {"name": "cm", "defaultMode": 0o400,
            "items": [{"key": "data-2", "path": "path/to/data-2", "mode": 0o600}, {"key": "data-1", "path": "one"}]}}),
        );
        assert_eq!(
            files(mapped),
            owned(&[
                ("one", "value-1", 0o400),
                ("path/to/data-2", "value-2", 0o600)
            ])
        );
    }

    #[test]
    fn missing_objects_and_keys_fail_unless_optional() {
        let missing = run(json!({"name": "v", "configMap": {"name": "x", "defaultMode": 0o644}}));
        assert_eq!(
            missing.unwrap_err().to_string(),
            "configmap \"x\" not found"
        );
        let optional = run(
            json!({"name": "v", "configMap": {"name": "x", "defaultMode": 0o644, "optional": true}}),
        );
        assert!(optional.unwrap().is_empty());
        let key = run(
            json!({"name": "v", "configMap": {"name": "cm", "defaultMode": 0o644,
            "items": [{"key": "nope", "path": "p"}]}}),
        );
        assert_eq!(
            key.unwrap_err().to_string(),
            "configmap references non-existent config key: nope"
        );
        let secret = run(json!({"name": "v", "secret": {"secretName": "x", "defaultMode": 0o644}}));
        assert_eq!(secret.unwrap_err().to_string(), "secret \"x\" not found");
        let secret_key = run(
            json!({"name": "v", "secret": {"secretName": "s", "defaultMode": 0o644,
            "items": [{"key": "nope", "path": "p"}]}}),
        );
        assert_eq!(
            secret_key.unwrap_err().to_string(),
            "references non-existent secret key: nope"
        );
        let optional_key = run(
            json!({"name": "v", "secret": {"secretName": "s", "defaultMode": 0o644,
            "optional": true, "items": [{"key": "nope", "path": "p"}]}}),
        );
        assert!(optional_key.unwrap().is_empty());
    }

    #[test]
    fn secret_data_is_decoded() {
        let all = run(json!({"name": "v", "secret": {"secretName": "s", "defaultMode": 0o400}}));
        assert_eq!(files(all), owned(&[("data-1", "value-1\n", 0o400)]));
    }

    #[test]
    fn downward_items_show_metadata_and_resources() {
        let result = run(
            json!({"name": "v", "downwardAPI": {"defaultMode": 0o644, "items": [
                {"path": "labels", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels"}},
                {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
                {"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}, "mode": 0o400},
                {"path": "one", "fieldRef": {"fieldPath": "metadata.labels['b']"}},
                {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
                {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu"}}
            ]}}),
        );
        assert_eq!(
            files(result),
            owned(&[
                ("annotations", "k=\"v\"", 0o644),
                ("cpu", "4", 0o644),
                ("labels", "a=\"x\\\"y\"\nb=\"2\"", 0o644),
                ("mem", "64", 0o644),
                ("one", "2", 0o644),
                ("podname", "p", 0o400),
            ])
        );
        let bad = run(
            json!({"name": "v", "downwardAPI": {"defaultMode": 0o644, "items": [
                {"path": "x", "fieldRef": {"fieldPath": "spec.nodeName"}}
            ]}}),
        );
        assert_eq!(
            bad.unwrap_err().to_string(),
            "unsupported fieldPath: spec.nodeName"
        );
    }

    #[test]
    fn projected_sources_are_merged_and_errors_aggregated() {
        let merged = run(
            json!({"name": "v", "projected": {"defaultMode": 0o644, "sources": [
                {"configMap": {"name": "cm", "items": [{"key": "data-1", "path": "cm-1"}]}},
                {"secret": {"name": "s"}},
                {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}}
            ]}}),
        );
        assert_eq!(
            files(merged),
            owned(&[
                ("cm-1", "value-1", 0o644),
                ("data-1", "value-1\n", 0o644),
                ("name", "p", 0o644)
            ])
        );
        let failed = run(
            json!({"name": "v", "projected": {"defaultMode": 0o644, "sources": [
                {"configMap": {"name": "x"}}, {"secret": {"name": "y"}}, {"configMap": {"name": "x"}}
            ]}}),
        );
        assert_eq!(
            failed.unwrap_err().to_string(),
            "[configmap \"x\" not found, secret \"y\" not found]"
        );
    }
}
