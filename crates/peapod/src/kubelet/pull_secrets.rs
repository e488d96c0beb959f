//! A pod's image pull secrets as the kubelet uses them: the Secrets its imagePullSecrets name
//! (getPullSecretsForPod, with a Warning event for those it cannot find) and the keyring
//! their docker configs make (credentialprovider/secrets MakeDockerKeyring).

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Secret};
use peapod_image::registry::{DockerConfig, Keyring, RegistryConfigError};

use super::config_objects::ConfigObjects;
use super::events::{self, EventType};
use super::Context;

const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
const DOCKERCFG_TYPE: &str = "kubernetes.io/dockercfg";
const DOCKERCFG_KEY: &str = ".dockercfg";

/// A pull secret whose docker config does not parse: the pull fails with this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image pull secret {name:?}: {detail}")]
pub struct InvalidPullSecret {
    pub name: String,
    pub detail: String,
}

/// The pod's pull secrets the kubelet's cache holds; the others are named in one Warning
/// event on the pod, and the pull goes on without them.
pub fn for_pod(ctx: &Context, pod: &Pod) -> Vec<Arc<Secret>> {
    let (found, missing) = lookup(&ctx.config, pod);
    if !missing.is_empty() {
        events::record(
            ctx,
            pod,
            EventType::Warning,
            "FailedToRetrieveImagePullSecret",
            &missing_message(&missing),
            None,
        );
    }
    found
}

/// The named Secrets found and the names not found, in the pod's order; entries without a
/// name are skipped (the API once allowed them).
fn lookup(config: &ConfigObjects, pod: &Pod) -> (Vec<Arc<Secret>>, Vec<String>) {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let references = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.as_ref());
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in references.into_iter().flatten().map(|r| &r.name) {
        if name.is_empty() {
            continue;
        }
        match config.secret(namespace, name) {
            Some(secret) => found.push(secret),
            None => missing.push(name.clone()),
        }
    }
    (found, missing)
}

fn missing_message(names: &[String]) -> String {
    format!(
        "Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.",
        names.join(", ")
    )
}

/// One keyring of every docker config among `secrets` (types kubernetes.io/dockerconfigjson
/// and kubernetes.io/dockercfg with their key set; others are ignored).
pub fn keyring(secrets: &[Arc<Secret>]) -> Result<Keyring, InvalidPullSecret> {
    let mut keyring = Keyring::default();
    for secret in secrets {
        let Some((key, config)) = docker_config(secret) else {
            continue;
        };
        let name = secret.metadata.name.clone().unwrap_or_default();
        let invalid = |error: RegistryConfigError| InvalidPullSecret {
            name: name.clone(),
            detail: describe(key, error),
        };
        keyring.add(&config.map_err(invalid)?).map_err(invalid)?;
    }
    Ok(keyring)
}

/// The key read and its parsed docker config, for a secret that holds one.
fn docker_config(
    secret: &Secret,
) -> Option<(&'static str, Result<DockerConfig, RegistryConfigError>)> {
    let data = secret.data.as_ref()?;
    let value = |key: &str| {
        data.get(key)
            .map(|b| b.0.as_slice())
            .filter(|b| !b.is_empty())
    };
    match secret.type_.as_deref()? {
        DOCKER_CONFIG_JSON_TYPE => {
            let bytes = value(DOCKER_CONFIG_JSON_KEY)?;
            Some((DOCKER_CONFIG_JSON_KEY, DockerConfig::parse(bytes)))
        }
        DOCKERCFG_TYPE => {
            let bytes = value(DOCKERCFG_KEY)?;
            Some((DOCKERCFG_KEY, DockerConfig::parse_dockercfg(bytes)))
        }
        _ => None,
    }
}

/// What is wrong with the secret's `key`, without the registry auth file wording.
fn describe(key: &str, error: RegistryConfigError) -> String {
    match error {
        RegistryConfigError::Json { source, .. } => format!("{key}: {source}"),
        RegistryConfigError::InvalidAuth {
            registry, reason, ..
        } => format!("{key}: entry {registry:?}: {reason}"),
        other => format!("{key}: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::ByteString;
    use serde_json::json;

    use super::*;

    fn secret(name: &str, type_: &str, key: &str, value: &str) -> Secret {
        Secret {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                ..Default::default()
            },
            type_: Some(type_.into()),
            data: Some(BTreeMap::from([(
                key.to_string(),
                ByteString(value.as_bytes().to_vec()),
            )])),
            ..Default::default()
        }
    }

    fn users(keyring: &Keyring, image: &str) -> Vec<String> {
        keyring
            .lookup(image)
            .into_iter()
            .map(|c| c.username)
            .collect()
    }

    #[test]
    fn found_and_missing_secrets_in_the_pods_order() {
        let config = ConfigObjects::default();
        config.put_secret(secret("a", "Opaque", "k", "v"));
        config.put_secret(secret("c", "Opaque", "k", "v"));
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"namespace": "ns", "name": "p"},
            "spec": {"containers": [], "imagePullSecrets": [
                {"name": "c"}, {"name": "missing"}, {"name": ""}, {"name": "a"}, {"name": "gone"}
            ]}
        }))
        .unwrap();
        let (found, missing) = lookup(&config, &pod);
        let found: Vec<_> = found
            .iter()
            .map(|s| s.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(found, ["c", "a"]);
        assert_eq!(missing, ["missing", "gone"]);
        assert_eq!(
            missing_message(&missing),
            "Unable to retrieve some image pull secrets (missing, gone); attempting to pull the image may not succeed."
        );
    }

    #[test]
    fn both_docker_secret_types_feed_one_keyring() {
        let json_config = json!({"auths": {"reg.example": {"username": "json", "password": "p"}}});
        let cfg = json!({"reg.example/team": {"username": "cfg", "password": "p"}});
        let secrets = [
            secret(
                "j",
                DOCKER_CONFIG_JSON_TYPE,
                DOCKER_CONFIG_JSON_KEY,
                &json_config.to_string(),
            ),
            secret("d", DOCKERCFG_TYPE, DOCKERCFG_KEY, &cfg.to_string()),
            // Other types, a missing key and an empty value are not docker configs.
            secret(
                "o",
                "Opaque",
                DOCKER_CONFIG_JSON_KEY,
                &json_config.to_string(),
            ),
            secret("k", DOCKERCFG_TYPE, DOCKER_CONFIG_JSON_KEY, "{not json"),
            secret("e", DOCKER_CONFIG_JSON_TYPE, DOCKER_CONFIG_JSON_KEY, ""),
        ]
        .map(Arc::new);
        let keyring = keyring(&secrets).unwrap();
        assert_eq!(users(&keyring, "reg.example/team/app"), ["cfg", "json"]);
        assert_eq!(users(&keyring, "reg.example/other"), ["json"]);
        assert!(keyring.lookup("other.example/x").is_empty());
    }

    #[test]
    fn a_secret_that_does_not_parse_fails_with_its_name() {
        let bad_json = [Arc::new(secret(
            "broken",
            DOCKER_CONFIG_JSON_TYPE,
            DOCKER_CONFIG_JSON_KEY,
            "{not json",
        ))];
        let err = keyring(&bad_json).unwrap_err();
        assert_eq!(err.name, "broken");
        assert!(
            err.to_string()
                .starts_with("invalid image pull secret \"broken\": .dockerconfigjson: "),
            "{err}"
        );
        let bad_auth = json!({"auths": {"reg.example": {"auth": "!!"}}});
        let bad_auth = [Arc::new(secret(
            "auth",
            DOCKER_CONFIG_JSON_TYPE,
            DOCKER_CONFIG_JSON_KEY,
            &bad_auth.to_string(),
        ))];
        let err = keyring(&bad_auth).unwrap_err().to_string();
        assert!(err.contains("entry \"reg.example\""), "{err}");
        assert!(!err.contains("!!"), "no secret material in {err}");
    }
}
