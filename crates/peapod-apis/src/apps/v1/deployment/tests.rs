//! kube's TestSetDefaultDeployment, TestValidateDeployment, TestValidateDeploymentUpdate,
//! TestValidateDeploymentStatus and TestValidateDeploymentStatusUpdate, ported.

use k8s_openapi::api::apps::v1::Deployment;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::DeploymentKindStrategy;

/// A Deployment named `name` in `default` from `spec`, defaulted as the API server does.
fn deployment(name: &str, spec: Value) -> Deployment {
    let mut deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    DeploymentKindStrategy.default(&mut deployment);
    deployment
}

/// kube's validDeployment: selector and template labels `name: abc`, a rolling update of one
/// pod each way.
fn valid_spec() -> Value {
    json!({
        "selector": {"matchLabels": {"name": "abc"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
        "template": {
            "metadata": {"labels": {"name": "abc"}},
            "spec": {"restartPolicy": "Always", "dnsPolicy": "Default",
                     "containers": [{"name": "nginx", "image": "image", "imagePullPolicy": "Never",
                                     "terminationMessagePolicy": "File"}]}
        }
    })
}

/// `valid_spec` with `field` set to `value`.
fn valid_with(field: &str, value: Value) -> Value {
    let mut spec = valid_spec();
    spec[field] = value;
    spec
}

fn errors(deployment: &Deployment) -> Vec<String> {
    messages(DeploymentKindStrategy.validate(deployment))
}

fn update_errors(new: &Deployment, old: &Deployment) -> Vec<String> {
    messages(DeploymentKindStrategy.validate_update(new, old))
}

fn messages(errors: Vec<peapod_api::validation::FieldError>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn an_empty_spec_gets_apps_v1_defaults() {
    let defaulted = deployment("abc", json!({}));
    let value = serde_json::to_value(&defaulted).unwrap();
    let spec = &value["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let pod_spec = &spec["template"]["spec"];
    assert_eq!(pod_spec["restartPolicy"], "Always");
    assert_eq!(pod_spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod_spec["schedulerName"], "default-scheduler");
    assert_eq!(pod_spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod_spec["securityContext"], json!({}));
    assert!(DeploymentKindStrategy.tracks_generation());
}

#[test]
fn given_values_are_kept_and_recreate_gets_no_rolling_update() {
    let surge_only = deployment(
        "abc",
        json!({"replicas": 5, "strategy": {"rollingUpdate": {"maxSurge": 1}}}),
    );
    let value = serde_json::to_value(&surge_only).unwrap();
    assert_eq!(value["spec"]["replicas"], 5);
    assert_eq!(
        value["spec"]["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}})
    );

    let recreate = deployment(
        "abc",
        json!({"replicas": 0, "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 0,
               "progressDeadlineSeconds": 30}),
    );
    let value = serde_json::to_value(&recreate).unwrap();
    assert_eq!(value["spec"]["replicas"], 0);
    assert_eq!(value["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(value["spec"]["revisionHistoryLimit"], 0);
    assert_eq!(value["spec"]["progressDeadlineSeconds"], 30);
}

#[test]
fn valid_deployments_pass() {
    let recreate = valid_with("strategy", json!({"type": "Recreate"}));
    let percentages = valid_with(
        "strategy",
        json!({"rollingUpdate": {"maxSurge": "200%", "maxUnavailable": "0%"}}),
    );
    let paused = valid_with("paused", json!(true));
    for spec in [valid_spec(), recreate, percentages, paused] {
        let valid = deployment("abc", spec.clone());
        assert!(errors(&valid).is_empty(), "{spec}: {:?}", errors(&valid));
    }
}

#[test]
fn invalid_deployments_are_refused_with_kubes_messages() {
    let rolling = |update: Value| {
        valid_with(
            "strategy",
            json!({"type": "RollingUpdate", "rollingUpdate": update}),
        )
    };
    let cases: Vec<(&str, Deployment, Vec<&str>)> = vec![
        (
            "no name",
            deployment("", valid_spec()),
            vec!["metadata.name: Required value: name or generateName is required"],
        ),
        (
            "selector mismatch",
            deployment("abc", valid_with("selector", json!({"matchLabels": {"name": "def"}}))),
            vec![r#"spec.template.metadata.labels: Invalid value: {"name":"abc"}: `selector` does not match template `labels`"#],
        ),
        (
            "missing selector",
            {
                let mut spec = valid_spec();
                spec.as_object_mut().unwrap().remove("selector");
                deployment("abc", spec)
            },
            vec![
                "spec.selector: Required value",
                r#"spec.template.metadata.labels: Invalid value: {"name":"abc"}: `selector` does not match template `labels`"#,
            ],
        ),
        (
            "restart policy",
            {
                let mut spec = valid_spec();
                spec["template"]["spec"]["restartPolicy"] = json!("Never");
                deployment("abc", spec)
            },
            vec![r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#],
        ),
        (
            "strategy type",
            {
                let mut spec = valid_spec();
                spec["strategy"]["type"] = json!("randomType");
                deployment("abc", spec)
            },
            vec![r#"spec.strategy: Unsupported value: {"rollingUpdate":{"maxSurge":1,"maxUnavailable":1},"type":"randomType"}: supported values: "Recreate", "RollingUpdate""#],
        ),
        (
            "recreate with rollingUpdate",
            deployment("abc", valid_with("strategy", json!({"type": "Recreate", "rollingUpdate": {}}))),
            vec!["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"],
        ),
        (
            "maxSurge no percentage",
            deployment("abc", rolling(json!({"maxSurge": "20Percent"}))),
            vec![r#"spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"20Percent"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"#],
        ),
        (
            "both zero",
            deployment("abc", rolling(json!({"maxSurge": "0%", "maxUnavailable": 0}))),
            vec![r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0"#],
        ),
        (
            "maxUnavailable over 100%",
            deployment("abc", rolling(json!({"maxUnavailable": "110%"}))),
            vec![r#"spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"110%"}: must not be greater than 100%"#],
        ),
        (
            "negative maxSurge",
            deployment("abc", rolling(json!({"maxSurge": -1, "maxUnavailable": 1}))),
            vec!["spec.strategy.rollingUpdate.maxSurge: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            "progress deadline not above minReadySeconds",
            {
                let mut spec = valid_spec();
                spec["minReadySeconds"] = json!(600);
                spec["progressDeadlineSeconds"] = json!(600);
                deployment("abc", spec)
            },
            vec!["spec.progressDeadlineSeconds: Invalid value: 600: must be greater than minReadySeconds"],
        ),
        (
            "negative counts",
            {
                let mut spec = valid_spec();
                spec["replicas"] = json!(-1);
                spec["minReadySeconds"] = json!(-1);
                spec["revisionHistoryLimit"] = json!(-1);
                spec["progressDeadlineSeconds"] = json!(-2);
                deployment("abc", spec)
            },
            vec![
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.minReadySeconds: Invalid value: -1: must be greater than or equal to 0",
                "spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
                "spec.progressDeadlineSeconds: Invalid value: -2: must be greater than or equal to 0",
                "spec.progressDeadlineSeconds: Invalid value: -2: must be greater than minReadySeconds",
            ],
        ),
        (
            "active deadline",
            {
                let mut spec = valid_spec();
                spec["template"]["spec"]["activeDeadlineSeconds"] = json!(10);
                deployment("abc", spec)
            },
            vec!["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"],
        ),
    ];
    for (name, invalid, want) in cases {
        assert_eq!(errors(&invalid), want, "{name}");
    }
}

#[test]
fn updates_keep_the_selector_and_may_change_the_rest() {
    let old = deployment("abc", valid_spec());
    let mut changed = old.clone();
    let spec = changed.spec.as_mut().unwrap();
    spec.replicas = Some(3);
    spec.paused = Some(true);
    spec.template.spec.as_mut().unwrap().containers[0].image = Some("image:2".into());
    assert!(update_errors(&changed, &old).is_empty());

    let mut moved = old.clone();
    let spec = moved.spec.as_mut().unwrap();
    let labels = [("name".into(), "abc".into()), ("tier".into(), "web".into())];
    spec.selector.match_labels = Some(labels.clone().into());
    spec.template.metadata.as_mut().unwrap().labels = Some(labels.into());
    assert_eq!(
        update_errors(&moved, &old),
        [
            r#"spec.selector: Invalid value: {"matchLabels":{"name":"abc","tier":"web"}}: field is immutable"#
        ]
    );
}

/// kube's TestValidateDeploymentStatus and TestValidateDeploymentStatusUpdate.
#[test]
fn status_counts_and_collisions_are_checked_on_update() {
    let old = deployment("abc", valid_spec());
    let with_status = |status: Value| {
        let mut with = old.clone();
        with.status = Some(serde_json::from_value(status).unwrap());
        with
    };
    let fine = with_status(
        json!({"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2,
                                  "availableReplicas": 1, "observedGeneration": 2}),
    );
    assert!(update_errors(&fine, &old).is_empty());
    let cases = [
        (
            json!({"replicas": 3, "updatedReplicas": 4, "readyReplicas": 2, "availableReplicas": 3}),
            vec![
                "status.updatedReplicas: Invalid value: 4: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 3: cannot be greater than readyReplicas",
            ],
        ),
        (
            json!({"replicas": -1, "observedGeneration": -1, "unavailableReplicas": -1, "collisionCount": -3}),
            vec![
                "status.observedGeneration: Invalid value: -1: must be greater than or equal to 0",
                "status.replicas: Invalid value: -1: must be greater than or equal to 0",
                "status.unavailableReplicas: Invalid value: -1: must be greater than or equal to 0",
                "status.collisionCount: Invalid value: -3: must be greater than or equal to 0",
                // Zero counts are above a negative replicas.
                "status.updatedReplicas: Invalid value: 0: cannot be greater than status.replicas",
                "status.readyReplicas: Invalid value: 0: cannot be greater than status.replicas",
                "status.availableReplicas: Invalid value: 0: cannot be greater than status.replicas",
            ],
        ),
    ];
    for (status, want) in cases {
        assert_eq!(
            update_errors(&with_status(status.clone()), &old),
            want,
            "{status}"
        );
    }

    let collided = with_status(json!({"collisionCount": 2}));
    let increased = with_status(json!({"collisionCount": 3}));
    assert!(update_errors(&increased, &collided).is_empty());
    assert_eq!(
        update_errors(&with_status(json!({"collisionCount": 1})), &collided),
        ["status.collisionCount: Invalid value: 1: cannot be decremented"]
    );
    assert_eq!(
        update_errors(&with_status(json!({})), &collided),
        ["status.collisionCount: Invalid value: 0: cannot be decremented"]
    );
}

#[test]
fn warnings_name_the_template_fields() {
    let mut spec = valid_spec();
    spec["template"]["spec"]["runtimeClassName"] = json!("kata");
    let warnings = DeploymentKindStrategy.warnings(&deployment("Web.One", spec));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: ["));
    assert_eq!(
        warnings[1],
        "spec.template.spec.runtimeClassName: not supported by peapod, ignored"
    );
}

#[test]
fn rows_show_ready_of_desired_up_to_date_available_and_the_wide_columns() {
    let mut web = deployment(
        "web",
        json!({"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}}),
    );
    web.status = Some(
        serde_json::from_value(
            json!({"replicas": 3, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}),
        )
        .unwrap(),
    );
    let columns = DeploymentKindStrategy.columns();
    let names: Vec<&str> = columns.iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "Name",
            "Ready",
            "Up-to-date",
            "Available",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    assert!(columns[5..].iter().all(|c| c.priority == 1));
    let cells = DeploymentKindStrategy.cells(&web);
    assert_eq!(cells[..4], [json!("web"), json!("1/3"), json!(2), json!(1)]);
    assert_eq!(
        cells[5..],
        [json!("a,b"), json!("nginx,busybox"), json!("app=web")]
    );
    assert!(DeploymentKindStrategy.field_labels().is_empty());
}
