//! Kubernetes protobuf bodies decode to the JSON form of the same object, and objects encode to
//! the bodies client-go reads.
//!
//! Two sources of bodies: `fixtures/protobuf/*.pb`, sent by kubectl 1.32 (client-go's gogo
//! encoding, zero-valued non-pointer fields included), each beside the JSON kubectl printed for
//! the same command with `--dry-run=client -o json` (Go's JSON of the same Go object); and bodies
//! encoded here with k8s-pb's prost types, checked against the JSON hand-written for them. Both
//! sides are also compared as k8s-openapi objects.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::{apps, autoscaling, batch, core, policy};
use k8s_pb::api::apps::v1 as pb_apps;
use k8s_pb::api::core::v1 as pb_core;
use k8s_pb::api::policy::v1 as pb_policy;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as pb_meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use peapod_apiserver::protobuf::{decode, encode, ProtobufError, MAGIC};
use prost_reflect::prost::Message;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/protobuf");

/// A body as client-go writes it: the magic, then `runtime.Unknown` around `object`.
fn body(api_version: &str, kind: &str, object: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(object.encode_to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut bytes = MAGIC.to_vec();
    bytes.extend(unknown.encode_to_vec());
    bytes
}

/// Go writes the zero time as `null`; the decoder leaves it out, which types the same.
fn without_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// `decoded` equals `expected` as JSON and as a k8s-openapi `T`.
fn assert_same<T: DeserializeOwned + PartialEq + Debug>(decoded: &Value, expected: &Value) {
    assert_eq!(decoded, &without_nulls(expected.clone()));
    let typed: T = serde_json::from_value(decoded.clone()).expect("the decoded body types");
    let want: T = serde_json::from_value(expected.clone()).expect("the expected JSON types");
    assert_eq!(typed, want);
}

fn fixture(name: &str) -> (Value, Value) {
    let bytes = std::fs::read(format!("{FIXTURES}/{name}.pb")).expect("the fixture body");
    let json = std::fs::read(format!("{FIXTURES}/{name}.json")).expect("the fixture JSON");
    let decoded = decode(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
    (
        decoded,
        serde_json::from_slice(&json).expect("fixture JSON"),
    )
}

#[test]
fn kubectl_bodies_decode_to_the_json_kubectl_prints() {
    let (decoded, json) = fixture("configmap");
    assert_same::<core::v1::ConfigMap>(&decoded, &json);
    let (decoded, json) = fixture("secret");
    assert_same::<core::v1::Secret>(&decoded, &json);
    let (decoded, json) = fixture("namespace");
    assert_same::<core::v1::Namespace>(&decoded, &json);
    let (decoded, json) = fixture("serviceaccount");
    assert_same::<core::v1::ServiceAccount>(&decoded, &json);
    for name in ["deployment-replicas-0", "deployment-two-containers"] {
        let (decoded, json) = fixture(name);
        assert_same::<apps::v1::Deployment>(&decoded, &json);
    }
    // The Job copies a CronJob's rich pod template: probes, envFrom, volumes, explicit zeros.
    for name in ["job", "job-from-rich-cronjob"] {
        let (decoded, json) = fixture(name);
        assert_same::<batch::v1::Job>(&decoded, &json);
    }
    let (decoded, json) = fixture("cronjob");
    assert_same::<batch::v1::CronJob>(&decoded, &json);
    let (decoded, json) = fixture("hpa");
    assert_same::<autoscaling::v1::HorizontalPodAutoscaler>(&decoded, &json);
}

#[test]
fn kubectl_keeps_explicit_zeros_and_drops_gogo_zeros() {
    let (deployment, _) = fixture("deployment-replicas-0");
    assert_eq!(deployment["spec"]["replicas"], json!(0));
    assert_eq!(deployment["status"], json!({}));
    assert_eq!(deployment["spec"]["strategy"], json!({}));
    assert_eq!(
        deployment["metadata"],
        json!({"name": "web", "labels": {"app": "web"}})
    );
    let (hpa, _) = fixture("hpa");
    // Not omitempty in Go, so Go's JSON writes them even at zero.
    assert_eq!(
        hpa["status"],
        json!({"currentReplicas": 0, "desiredReplicas": 0})
    );
}

fn meta(name: &str) -> pb_meta::ObjectMeta {
    pb_meta::ObjectMeta {
        name: Some(name.into()),
        ..Default::default()
    }
}

/// What gogo writes for an ObjectMeta with only a name: every non-pointer field, zero.
fn gogo_meta(name: &str) -> pb_meta::ObjectMeta {
    pb_meta::ObjectMeta {
        name: Some(name.into()),
        generate_name: Some(String::new()),
        namespace: Some(String::new()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(pb_meta::Time::default()),
        ..Default::default()
    }
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn config_map_with_data_and_binary_data() {
    let config_map = pb_core::ConfigMap {
        metadata: Some(gogo_meta("settings")),
        data: strings(&[("mode", "fast"), ("empty", "")]),
        binary_data: BTreeMap::from([("blob".to_owned(), vec![0, 0xff, 1])]),
        immutable: None,
    };
    let decoded = decode(&body("v1", "ConfigMap", &config_map)).unwrap();
    let expected = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings"},
        "data": {"mode": "fast", "empty": ""},
        "binaryData": {"blob": "AP8B"},
    });
    assert_same::<core::v1::ConfigMap>(&decoded, &expected);
}

#[test]
fn secret_with_binary_data_and_an_explicit_false() {
    let secret = pb_core::Secret {
        metadata: Some(gogo_meta("creds")),
        data: BTreeMap::from([("key".to_owned(), b"\x00secret\xfe".to_vec())]),
        string_data: BTreeMap::new(),
        r#type: Some("Opaque".into()),
        immutable: Some(false),
    };
    let decoded = decode(&body("v1", "Secret", &secret)).unwrap();
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds"},
        "data": {"key": "AHNlY3JldP4="},
        "type": "Opaque",
        "immutable": false,
    });
    assert_same::<core::v1::Secret>(&decoded, &expected);
}

#[test]
fn namespace_with_labels_and_finalizers() {
    let mut metadata = gogo_meta("team-a");
    metadata.labels = strings(&[("team", "a")]);
    metadata.creation_timestamp = Some(pb_meta::Time {
        seconds: Some(1_700_000_000),
        nanos: Some(0),
    });
    let namespace = pb_core::Namespace {
        metadata: Some(metadata),
        spec: Some(pb_core::NamespaceSpec {
            finalizers: vec!["kubernetes".into()],
        }),
        status: Some(pb_core::NamespaceStatus {
            phase: Some(String::new()),
            conditions: Vec::new(),
        }),
    };
    let decoded = decode(&body("v1", "Namespace", &namespace)).unwrap();
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": "team-a",
            "labels": {"team": "a"},
            "creationTimestamp": "2023-11-14T22:13:20Z",
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {},
    });
    assert_same::<core::v1::Namespace>(&decoded, &expected);
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    let quantity = |q: &str| Quantity {
        string: Some(q.into()),
    };
    pairs
        .iter()
        .map(|(k, q)| (k.to_string(), quantity(q)))
        .collect()
}

fn container() -> pb_core::Container {
    pb_core::Container {
        name: Some("web".into()),
        image: Some("nginx:1.27".into()),
        ports: vec![pb_core::ContainerPort {
            name: Some("http".into()),
            host_port: Some(0),
            container_port: Some(8080),
            protocol: Some("TCP".into()),
            host_ip: Some(String::new()),
        }],
        env: vec![pb_core::EnvVar {
            name: Some("MODE".into()),
            value: Some("prod".into()),
            value_from: None,
        }],
        resources: Some(pb_core::ResourceRequirements {
            limits: quantities(&[("cpu", "500m"), ("memory", "128Mi")]),
            requests: quantities(&[("cpu", "250m")]),
            ..Default::default()
        }),
        security_context: Some(pb_core::SecurityContext {
            run_as_user: Some(0),
            privileged: Some(false),
            ..Default::default()
        }),
        stdin: Some(false),
        tty: Some(false),
        termination_message_path: Some(String::new()),
        ..Default::default()
    }
}

fn deployment() -> pb_apps::Deployment {
    let template = pb_core::PodTemplateSpec {
        metadata: Some(pb_meta::ObjectMeta {
            labels: strings(&[("app", "web")]),
            creation_timestamp: Some(pb_meta::Time::default()),
            ..Default::default()
        }),
        spec: Some(pb_core::PodSpec {
            containers: vec![container()],
            volumes: vec![pb_core::Volume {
                name: Some("scratch".into()),
                volume_source: Some(pb_core::VolumeSource {
                    empty_dir: Some(pb_core::EmptyDirVolumeSource::default()),
                    ..Default::default()
                }),
            }],
            termination_grace_period_seconds: Some(30),
            host_network: Some(false),
            restart_policy: Some("Always".into()),
            ..Default::default()
        }),
    };
    let rolling = pb_apps::RollingUpdateDeployment {
        max_unavailable: Some(IntOrString {
            r#type: Some(1),
            int_val: Some(0),
            str_val: Some("25%".into()),
        }),
        max_surge: Some(IntOrString {
            r#type: Some(0),
            int_val: Some(1),
            str_val: Some(String::new()),
        }),
    };
    let spec = pb_apps::DeploymentSpec {
        replicas: Some(3),
        selector: Some(pb_meta::LabelSelector {
            match_labels: strings(&[("app", "web")]),
            match_expressions: Vec::new(),
        }),
        template: Some(template),
        strategy: Some(pb_apps::DeploymentStrategy {
            r#type: Some("RollingUpdate".into()),
            rolling_update: Some(rolling),
        }),
        min_ready_seconds: Some(0),
        revision_history_limit: Some(0),
        paused: Some(false),
        progress_deadline_seconds: None,
    };
    let status = pb_apps::DeploymentStatus {
        observed_generation: Some(0),
        replicas: Some(0),
        updated_replicas: Some(0),
        ready_replicas: Some(0),
        available_replicas: Some(0),
        unavailable_replicas: Some(0),
        ..Default::default()
    };
    pb_apps::Deployment {
        metadata: Some(gogo_meta("web")),
        spec: Some(spec),
        status: Some(status),
    }
}

#[test]
fn deployment_with_a_pod_template() {
    let decoded = decode(&body("apps/v1", "Deployment", &deployment())).unwrap();
    let expected = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "web",
                        "image": "nginx:1.27",
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}],
                        "resources": {
                            "limits": {"cpu": "500m", "memory": "128Mi"},
                            "requests": {"cpu": "250m"},
                        },
                        "securityContext": {"runAsUser": 0, "privileged": false},
                    }],
                    "volumes": [{"name": "scratch", "emptyDir": {}}],
                    "terminationGracePeriodSeconds": 30,
                    "restartPolicy": "Always",
                },
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1},
            },
            "revisionHistoryLimit": 0,
        },
        "status": {},
    });
    assert_same::<apps::v1::Deployment>(&decoded, &expected);
}

#[test]
fn pod_and_service() {
    let pod = pb_core::Pod {
        metadata: Some(meta("p")),
        spec: Some(pb_core::PodSpec {
            containers: vec![container()],
            ..Default::default()
        }),
        status: None,
    };
    let decoded = decode(&body("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        decoded["spec"]["containers"][0]["ports"][0]["containerPort"],
        8080
    );
    let _: core::v1::Pod = serde_json::from_value(decoded).unwrap();

    let port = |name: &str, port: i32, target: IntOrString| pb_core::ServicePort {
        name: Some(name.into()),
        protocol: Some("TCP".into()),
        port: Some(port),
        target_port: Some(target),
        node_port: Some(0),
        ..Default::default()
    };
    let service = pb_core::Service {
        metadata: Some(meta("web")),
        spec: Some(pb_core::ServiceSpec {
            ports: vec![
                port(
                    "http",
                    80,
                    IntOrString {
                        r#type: Some(1),
                        str_val: Some("http".into()),
                        int_val: Some(0),
                    },
                ),
                port(
                    "admin",
                    9000,
                    IntOrString {
                        r#type: Some(0),
                        int_val: Some(9001),
                        str_val: Some(String::new()),
                    },
                ),
            ],
            selector: strings(&[("app", "web")]),
            cluster_ip: Some(String::new()),
            r#type: Some("ClusterIP".into()),
            ..Default::default()
        }),
        status: Some(pb_core::ServiceStatus::default()),
    };
    let decoded = decode(&body("v1", "Service", &service)).unwrap();
    let expected = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"},
                {"name": "admin", "protocol": "TCP", "port": 9000, "targetPort": 9001},
            ],
            "selector": {"app": "web"},
            "type": "ClusterIP",
        },
        "status": {},
    });
    assert_same::<core::v1::Service>(&decoded, &expected);
}

#[test]
fn eviction_decodes_to_what_kubectl_drain_sends_as_json() {
    let eviction = pb_policy::Eviction {
        metadata: Some(pb_meta::ObjectMeta {
            namespace: Some("default".into()),
            ..gogo_meta("p1")
        }),
        delete_options: Some(pb_meta::DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        }),
    };
    let decoded = decode(&body("policy/v1", "Eviction", &eviction)).unwrap();
    let drain = std::fs::read(format!("{FIXTURES}/eviction-kubectl-drain.json")).unwrap();
    let drain: Value = serde_json::from_slice(&drain).unwrap();
    assert_same::<policy::v1::Eviction>(&decoded, &drain);
}

#[test]
fn event_times_and_micro_times() {
    let event = pb_core::Event {
        metadata: Some(meta("e")),
        involved_object: Some(pb_core::ObjectReference {
            kind: Some("Pod".into()),
            name: Some("p".into()),
            ..Default::default()
        }),
        first_timestamp: Some(pb_meta::Time {
            seconds: Some(1_700_000_000),
            nanos: Some(0),
        }),
        event_time: Some(pb_meta::MicroTime {
            seconds: Some(1_700_000_000),
            nanos: Some(123_456_789),
        }),
        count: Some(0),
        ..Default::default()
    };
    let decoded = decode(&body("v1", "Event", &event)).unwrap();
    assert_eq!(decoded["firstTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(decoded["eventTime"], "2023-11-14T22:13:20.123456Z");
    assert!(decoded.get("count").is_none());
    let _: core::v1::Event = serde_json::from_value(decoded).unwrap();
}

#[test]
fn raw_extensions_and_managed_fields_carry_json() {
    let mut metadata = meta("rev");
    metadata.managed_fields = vec![pb_meta::ManagedFieldsEntry {
        manager: Some("kubectl".into()),
        operation: Some("Update".into()),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(pb_meta::FieldsV1 {
            raw: Some(br#"{"f:data":{}}"#.to_vec()),
        }),
        ..Default::default()
    }];
    let revision = pb_apps::ControllerRevision {
        metadata: Some(metadata),
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(br#"{"spec":{"template":{}}}"#.to_vec()),
        }),
        revision: Some(2),
    };
    let decoded = decode(&body("apps/v1", "ControllerRevision", &revision)).unwrap();
    assert_eq!(decoded["data"], json!({"spec": {"template": {}}}));
    let fields = &decoded["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields, &json!({"f:data": {}}));
    let _: apps::v1::ControllerRevision = serde_json::from_value(decoded).unwrap();
}

#[test]
fn delete_options_are_found_in_any_group_version() {
    let options = pb_meta::DeleteOptions {
        grace_period_seconds: Some(5),
        propagation_policy: Some("Foreground".into()),
        ..Default::default()
    };
    let decoded = decode(&body("v1", "DeleteOptions", &options)).unwrap();
    let expected = json!({
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 5,
        "propagationPolicy": "Foreground",
    });
    assert_eq!(decoded, expected);
}

#[test]
fn kubectl_drain_delete_options_decode() {
    // `kubectl drain --disable-eviction --grace-period=3` deletes pods through the typed client,
    // whose DeleteOptions body is protobuf, typed `v1, Kind=DeleteOptions`.
    let bytes = std::fs::read(format!("{FIXTURES}/delete-options-drain.pb")).unwrap();
    let expected = json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 3});
    assert_eq!(decode(&bytes).unwrap(), expected);
}

#[test]
fn malformed_bodies_are_refused() {
    let config_map = pb_core::ConfigMap {
        metadata: Some(meta("x")),
        ..Default::default()
    };
    let good = body("v1", "ConfigMap", &config_map);
    assert!(matches!(
        decode(b"{\"kind\":\"ConfigMap\"}"),
        Err(ProtobufError::Magic)
    ));
    assert!(matches!(
        decode(&good[..good.len() - 3]),
        Err(ProtobufError::Envelope(_))
    ));
    assert!(matches!(
        decode(&body("v1", "Frobnicator", &config_map)),
        Err(ProtobufError::UnknownKind { .. })
    ));
    assert!(matches!(
        decode(&body("", "ConfigMap", &config_map)),
        Err(ProtobufError::MissingType)
    ));
    let mut unknown = Unknown::decode(&good[MAGIC.len()..]).unwrap();
    unknown.raw = Some(vec![0x0a, 0x05, 0x01]);
    let truncated = [&MAGIC[..], &unknown.encode_to_vec()].concat();
    assert!(matches!(
        decode(&truncated),
        Err(ProtobufError::Object { .. })
    ));
    unknown.content_encoding = Some("gzip".into());
    let gzip = [&MAGIC[..], &unknown.encode_to_vec()].concat();
    let err = decode(&gzip).unwrap_err();
    assert!(matches!(err, ProtobufError::ContentEncoding(_)), "{err}");
}

/// Every fixture kubectl sent decodes, re-encodes and decodes again to the same JSON.
#[test]
fn kubectl_bodies_round_trip_through_the_encoder() {
    let dir = std::fs::read_dir(FIXTURES).expect("the fixtures");
    let mut seen = 0;
    for entry in dir {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "pb") {
            continue;
        }
        let decoded = decode(&std::fs::read(&path).unwrap()).unwrap();
        let encoded = encode(&decoded).unwrap_or_else(|err| panic!("{path:?}: {err}"));
        assert_eq!(decode(&encoded).unwrap(), decoded, "{path:?}");
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} fixtures");
}

/// What the encoder writes is what client-go's generated types read: decoded here by k8s-pb's
/// prost messages, the envelope's type and every field are as the JSON said.
#[test]
fn encoded_objects_read_as_the_generated_types() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "resourceVersion": "42",
                     "creationTimestamp": "2026-12-03T06:00:00Z"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx",
                    "resources": {"limits": {"cpu": "500m"}}}]},
            },
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
        },
    });
    let body = encode(&deployment).unwrap();
    let unknown = Unknown::decode(&body[MAGIC.len()..]).expect("a runtime.Unknown");
    let type_meta = unknown.type_meta.unwrap();
    assert_eq!(type_meta.api_version.as_deref(), Some("apps/v1"));
    assert_eq!(type_meta.kind.as_deref(), Some("Deployment"));
    let read = pb_apps::Deployment::decode(unknown.raw.unwrap().as_slice()).unwrap();
    let metadata = read.metadata.unwrap();
    assert_eq!(metadata.name.as_deref(), Some("web"));
    assert_eq!(metadata.resource_version.as_deref(), Some("42"));
    let created = metadata.creation_timestamp.unwrap();
    assert_eq!(created.seconds, Some(1_796_277_600));
    let spec = read.spec.unwrap();
    assert_eq!(spec.replicas, Some(0), "an explicit zero is sent");
    let strategy = spec.strategy.unwrap().rolling_update.unwrap();
    let max_unavailable = strategy.max_unavailable.unwrap();
    assert_eq!(max_unavailable.r#type, Some(1));
    assert_eq!(max_unavailable.str_val.as_deref(), Some("25%"));
    assert_eq!(strategy.max_surge.unwrap().int_val, Some(1));
    let container = &spec.template.unwrap().spec.unwrap().containers[0];
    let limits = &container.resources.as_ref().unwrap().limits;
    assert_eq!(limits["cpu"].string.as_deref(), Some("500m"));
}

#[test]
fn lists_and_statuses_encode() {
    let list = json!({"apiVersion": "v1", "kind": "ConfigMapList",
        "metadata": {"resourceVersion": "7", "continue": "abc"},
        "items": [{"metadata": {"name": "a"}, "data": {"k": "v"}},
                  {"metadata": {"name": "b"}}]});
    let unknown = Unknown::decode(&encode(&list).unwrap()[MAGIC.len()..]).unwrap();
    let read = pb_core::ConfigMapList::decode(unknown.raw.unwrap().as_slice()).unwrap();
    assert_eq!(read.metadata.unwrap().r#continue.as_deref(), Some("abc"));
    assert_eq!(read.items.len(), 2);
    assert_eq!(read.items[0].data["k"], "v");
    let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Success",
        "details": {"name": "a", "kind": "configmaps", "uid": "u"}});
    let unknown = Unknown::decode(&encode(&status).unwrap()[MAGIC.len()..]).unwrap();
    let read = pb_meta::Status::decode(unknown.raw.unwrap().as_slice()).unwrap();
    assert_eq!(read.status.as_deref(), Some("Success"));
    assert_eq!(read.details.unwrap().uid.as_deref(), Some("u"));
}
