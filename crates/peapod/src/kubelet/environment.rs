//! A container's environment as kubelet's makeEnvironmentVariables makes it: `envFrom`'s
//! ConfigMaps and Secrets first, then `env` in order (a later name replaces an earlier one),
//! each `value` expanded against the variables set before it.
//!
//! Keys from `envFrom` are taken as they are: since RelaxedEnvironmentVariableValidation
//! (beta and on in 1.32, KEP-4369) kubelet no longer skips keys that are not C identifiers,
//! and so no longer records InvalidEnvironmentVariableNames.
//! The Services' variables ([`super::service_links`]) count in expansions after the
//! container's own and come last, where the container does not set the same name.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, EnvFromSource, EnvVar, Pod};

use super::config_objects::ConfigObjects;
use super::downward::{self, DownwardError, NodeAllocatable, PodFacts};

/// Why a container's environment cannot be made: kubelet's messages, which become the
/// container's CreateContainerConfigError.
#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("configmap \"{0}\" not found")]
    ConfigMapNotFound(String),
    #[error("secret \"{0}\" not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        key: String,
        namespace: String,
        name: String,
    },
    #[error(transparent)]
    Resource(#[from] DownwardError),
}

/// What a container's environment is made from.
pub struct EnvSources<'a> {
    pub pod: &'a Pod,
    pub container: &'a Container,
    pub config: &'a ConfigObjects,
    pub facts: &'a PodFacts,
    pub allocatable: &'a NodeAllocatable,
    /// The variables of the Services the pod sees.
    pub services: &'a BTreeMap<String, String>,
}

/// The container's variables in the order they were first set.
pub fn resolve(sources: &EnvSources) -> Result<Vec<(String, String)>, EnvError> {
    let mut env = Environment::default();
    for from in sources.container.env_from.iter().flatten() {
        for (key, value) in env_from(sources, from)? {
            env.set(key, value);
        }
    }
    for var in sources.container.env.iter().flatten() {
        let value = match var.value.as_deref().filter(|v| !v.is_empty()) {
            Some(value) => Some(peapod_api::expand::expand(value, |k| {
                env.get(k).or_else(|| sources.services.get(k).cloned())
            })),
            None => value_from(sources, var)?,
        };
        // An optional reference to what is missing sets nothing.
        if let Some(value) = value {
            env.set(var.name.clone(), value);
        }
    }
    for (name, value) in sources.services {
        if env.get(name).is_none() {
            env.set(name.clone(), value.clone());
        }
    }
    Ok(env.vars)
}

/// The variables of one `envFrom` source, prefixed; none when an optional source is missing.
fn env_from(sources: &EnvSources, from: &EnvFromSource) -> Result<Vec<(String, String)>, EnvError> {
    let namespace = namespace(sources.pod);
    let prefix = from.prefix.as_deref().unwrap_or_default();
    let named = |(key, value): (&String, String)| (format!("{prefix}{key}"), value);
    if let Some(source) = &from.config_map_ref {
        let Some(config_map) = sources.config.config_map(namespace, &source.name) else {
            return missing(
                source.optional,
                EnvError::ConfigMapNotFound(source.name.clone()),
            );
        };
        let data = config_map.data.iter().flatten();
        return Ok(data.map(|(k, v)| named((k, v.clone()))).collect());
    }
    if let Some(source) = &from.secret_ref {
        let Some(secret) = sources.config.secret(namespace, &source.name) else {
            return missing(
                source.optional,
                EnvError::SecretNotFound(source.name.clone()),
            );
        };
        let data = secret.data.iter().flatten();
        return Ok(data.map(|(k, v)| named((k, bytes_text(&v.0)))).collect());
    }
    Ok(Vec::new())
}

/// Nothing when the reference is optional, else the error.
fn missing<T: Default>(optional: Option<bool>, error: EnvError) -> Result<T, EnvError> {
    match optional {
        Some(true) => Ok(T::default()),
        _ => Err(error),
    }
}

/// The value a `valueFrom` gives; None when an optional reference finds nothing.
fn value_from(sources: &EnvSources, var: &EnvVar) -> Result<Option<String>, EnvError> {
    let Some(from) = var.value_from.as_ref() else {
        return Ok(Some(String::new()));
    };
    let pod = sources.pod;
    if let Some(field) = &from.field_ref {
        return Ok(Some(downward::field_value(
            pod,
            sources.facts,
            &field.field_path,
        )));
    }
    if let Some(selector) = &from.resource_field_ref {
        let name = &sources.container.name;
        let value = downward::resource_field_value(pod, name, selector, sources.allocatable)?;
        return Ok(Some(value));
    }
    let namespace = namespace(pod);
    if let Some(r) = &from.config_map_key_ref {
        let Some(config_map) = sources.config.config_map(namespace, &r.name) else {
            return missing(r.optional, EnvError::ConfigMapNotFound(r.name.clone()));
        };
        return match config_map.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(value) => Ok(Some(value.clone())),
            None => missing(
                r.optional,
                EnvError::ConfigMapKeyNotFound {
                    key: r.key.clone(),
                    namespace: namespace.to_owned(),
                    name: r.name.clone(),
                },
            ),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let Some(secret) = sources.config.secret(namespace, &r.name) else {
            return missing(r.optional, EnvError::SecretNotFound(r.name.clone()));
        };
        return match secret.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(value) => Ok(Some(bytes_text(&value.0))),
            None => missing(
                r.optional,
                EnvError::SecretKeyNotFound {
                    key: r.key.clone(),
                    namespace: namespace.to_owned(),
                    name: r.name.clone(),
                },
            ),
        };
    }
    Ok(Some(String::new()))
}

fn namespace(pod: &Pod) -> &str {
    pod.metadata.namespace.as_deref().unwrap_or("default")
}

/// A Secret's bytes as an environment value (Go's `string(bytes)`).
fn bytes_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Variables in the order first set, a later value replacing an earlier one in place.
#[derive(Default)]
struct Environment {
    vars: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Environment {
    fn set(&mut self, name: String, value: String) {
        match self.index.get(&name) {
            Some(&i) => self.vars[i].1 = value,
            None => {
                self.index.insert(name.clone(), self.vars.len());
                self.vars.push((name, value));
            }
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.index.get(name).map(|&i| self.vars[i].1.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    use serde_json::json;

    fn objects() -> ConfigObjects {
        let objects = ConfigObjects::default();
        let config_map: ConfigMap = serde_json::from_value(json!({
            "metadata": {"namespace": "test1", "name": "test-config-map"},
            "data": {"REPLACE_ME": "FROM_CONFIG_MAP", "DUPE_TEST": "CONFIG_MAP", "1234": "abc"}
        }))
        .unwrap();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"namespace": "test1", "name": "test-secret"},
            // FROM_SECRET, SECRET
            "data": {"REPLACE_ME": "RlJPTV9TRUNSRVQ=", "DUPE_TEST": "U0VDUkVU"}
        }))
        .unwrap();
        objects.put_config_map(config_map);
        objects.put_secret(secret);
        objects
    }

    fn resolve_for(container: serde_json::Value) -> Result<Vec<(String, String)>, EnvError> {
        resolve_with(container, &BTreeMap::new())
    }

    fn resolve_with(
        container: serde_json::Value,
        services: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, EnvError> {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"namespace": "test1", "name": "dapi-test-pod-name"},
            "spec": {"serviceAccountName": "special", "containers": [container.clone()]}
        }))
        .unwrap();
        let container: Container = serde_json::from_value(container).unwrap();
        let facts = PodFacts {
            node_name: "node-name".into(),
            host_ip: "1.2.3.4".into(),
            pod_ip: Some("1.2.3.5".into()),
        };
        resolve(&EnvSources {
            pod: &pod,
            container: &container,
            config: &objects(),
            facts: &facts,
            allocatable: &NodeAllocatable::default(),
            services,
        })
    }

    fn sorted(mut env: Vec<(String, String)>) -> Vec<String> {
        env.sort();
        env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn env_from_a_config_map_comes_first_and_env_overrides_it() {
        let env = resolve_for(json!({"name": "c",
        "envFrom": [
            {"configMapRef": {"name": "test-config-map"}},
            {"prefix": "p_", "configMapRef": {"name": "test-config-map"}}
        ],
        "env": [
            {"name": "TEST_LITERAL", "value": "test-test-test"},
            {"name": "EXPANSION_TEST", "value": "$(REPLACE_ME)"},
            {"name": "DUPE_TEST", "value": "ENV_VAR"}
        ]}))
        .unwrap();
        assert_eq!(
            sorted(env),
            [
                "1234=abc",
                "DUPE_TEST=ENV_VAR",
                "EXPANSION_TEST=FROM_CONFIG_MAP",
                "REPLACE_ME=FROM_CONFIG_MAP",
                "TEST_LITERAL=test-test-test",
                "p_1234=abc",
                "p_DUPE_TEST=CONFIG_MAP",
                "p_REPLACE_ME=FROM_CONFIG_MAP",
            ]
        );
    }

    /// kubelet's makeEnvironmentVariables: a container's own variable wins over a Service's
    /// of the same name; expansions read the container's first, then the Services'.
    #[test]
    fn service_variables_come_last_and_expand() {
        let services = BTreeMap::from([
            ("WEB_SERVICE_HOST".to_owned(), "10.43.0.20".to_owned()),
            ("REPLACE_ME".to_owned(), "FROM_SERVICE".to_owned()),
        ]);
        let env = resolve_with(
            json!({"name": "c", "env": [
                {"name": "URL", "value": "http://$(WEB_SERVICE_HOST)/"},
                {"name": "REPLACE_ME", "value": "OWN"},
            ]}),
            &services,
        )
        .unwrap();
        assert_eq!(
            env,
            [
                ("URL".to_owned(), "http://10.43.0.20/".to_owned()),
                ("REPLACE_ME".to_owned(), "OWN".to_owned()),
                ("WEB_SERVICE_HOST".to_owned(), "10.43.0.20".to_owned()),
            ]
        );
    }

    #[test]
    fn env_from_a_secret_decodes_its_bytes() {
        let env = resolve_for(json!({"name": "c",
            "envFrom": [{"prefix": "p_", "secretRef": {"name": "test-secret"}}],
            "env": [{"name": "EXPANSION_TEST", "value": "$(p_REPLACE_ME)"}]}))
        .unwrap();
        assert_eq!(
            sorted(env),
            [
                "EXPANSION_TEST=FROM_SECRET",
                "p_DUPE_TEST=SECRET",
                "p_REPLACE_ME=FROM_SECRET"
            ]
        );
    }

    #[test]
    fn key_refs_and_their_missing_objects_and_keys() {
        let env = resolve_for(json!({"name": "c", "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "test-config-map", "key": "REPLACE_ME"}}},
            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "test-secret", "key": "DUPE_TEST"}}},
            {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k", "optional": true}}},
            {"name": "D", "valueFrom": {"secretKeyRef": {"name": "test-secret", "key": "k", "optional": true}}},
            {"name": "E", "value": "$(A)-$(B)-$(C)-$$(A)"}
        ]}))
        .unwrap();
        assert_eq!(
            sorted(env),
            [
                "A=FROM_CONFIG_MAP",
                "B=SECRET",
                "E=FROM_CONFIG_MAP-SECRET-$(C)-$(A)"
            ]
        );
        let error = |container| resolve_for(container).unwrap_err().to_string();
        let cm_ref = |name, key| {
            json!({"name": "c", "env": [
            {"name": "A", "valueFrom": {"configMapKeyRef": {"name": name, "key": key}}}]})
        };
        assert_eq!(error(cm_ref("nope", "k")), "configmap \"nope\" not found");
        assert_eq!(
            error(cm_ref("test-config-map", "k")),
            "couldn't find key k in ConfigMap test1/test-config-map"
        );
        let secret_ref = json!({"name": "c", "env": [
            {"name": "A", "valueFrom": {"secretKeyRef": {"name": "test-secret", "key": "k"}}}]});
        assert_eq!(
            error(secret_ref),
            "couldn't find key k in Secret test1/test-secret"
        );
        let env_from = json!({"name": "c", "envFrom": [{"secretRef": {"name": "gone"}}]});
        assert_eq!(error(env_from), "secret \"gone\" not found");
        let optional = json!({"name": "c", "envFrom": [
            {"configMapRef": {"name": "gone", "optional": true}},
            {"secretRef": {"name": "gone", "optional": true}}]});
        assert!(resolve_for(optional).unwrap().is_empty());
    }

    #[test]
    fn field_and_resource_refs() {
        let env = resolve_for(json!({"name": "c",
            "resources": {"limits": {"memory": "64Mi"}},
            "env": [
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "HELLO", "value": "$(POD_NAME) on $(POD_IP)"}
            ]}))
        .unwrap();
        assert_eq!(
            sorted(env),
            [
                "HELLO=dapi-test-pod-name on 1.2.3.5",
                "MEM=64",
                "POD_IP=1.2.3.5",
                "POD_NAME=dapi-test-pod-name",
                "SA=special"
            ]
        );
    }
}
