//! kube's TestValidateReplicaSet, TestValidateReplicaSetUpdate and the strategy's rules, ported.

use k8s_openapi::api::apps::v1::ReplicaSet;
use peapod_apiserver::registry::KindStrategy;
use serde_json::{json, Value};

use super::ReplicaSetStrategy;

/// A ReplicaSet named `name` in `default` from `spec`, defaulted as the API server does.
fn replica_set(name: &str, spec: Value) -> ReplicaSet {
    let mut rs: ReplicaSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))
    .unwrap();
    ReplicaSetStrategy.default(&mut rs);
    rs
}

fn template(labels: Value, restart_policy: &str) -> Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {"restartPolicy": restart_policy, "dnsPolicy": "ClusterFirst",
                 "containers": [{"name": "abc", "image": "image",
                                 "imagePullPolicy": "IfNotPresent",
                                 "terminationMessagePolicy": "File"}]}
    })
}

fn valid_spec() -> Value {
    json!({"selector": {"matchLabels": {"a": "b"}}, "template": template(json!({"a": "b"}), "Always")})
}

fn errors(rs: &ReplicaSet) -> Vec<String> {
    ReplicaSetStrategy
        .validate(rs)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn valid_replica_sets_pass() {
    let host_network = json!({
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}},
                     "spec": {"hostNetwork": true, "containers": [{"name": "abc", "image": "image",
                              "ports": [{"containerPort": 12345, "protocol": "TCP"}]}]}}
    });
    for (name, spec) in [
        ("abc", valid_spec()),
        ("abc-123", valid_spec()),
        ("hostnet", host_network),
    ] {
        let rs = replica_set(name, spec);
        assert!(errors(&rs).is_empty(), "{name}: {:?}", errors(&rs));
    }
}

#[test]
fn invalid_replica_sets_are_refused_with_kubes_messages() {
    let cases: Vec<(&str, ReplicaSet, Vec<&str>)> = vec![
        (
            "zero-length ID",
            replica_set("", valid_spec()),
            vec!["metadata.name: Required value: name or generateName is required"],
        ),
        (
            "missing selector",
            replica_set(
                "abc",
                json!({"template": template(json!({"a": "b"}), "Always")}),
            ),
            vec![
                "spec.selector: Required value",
                r#"spec.template.metadata.labels: Invalid value: {"a":"b"}: `selector` does not match template `labels`"#,
            ],
        ),
        (
            "selector_doesnt_match",
            replica_set(
                "abc",
                json!({"selector": {"matchLabels": {"foo": "bar"}},
                                      "template": template(json!({"a": "b"}), "Always")}),
            ),
            vec![
                r#"spec.template.metadata.labels: Invalid value: {"a":"b"}: `selector` does not match template `labels`"#,
            ],
        ),
        (
            "invalid manifest",
            replica_set("abc", json!({"selector": {"matchLabels": {"a": "b"}}})),
            vec![
                r#"spec.template.metadata.labels: Invalid value: {}: `selector` does not match template `labels`"#,
                "spec.template.spec.containers: Required value",
            ],
        ),
        (
            "negative_replicas",
            replica_set(
                "abc",
                json!({"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                                      "template": template(json!({"a": "b"}), "Always")}),
            ),
            vec!["spec.replicas: Invalid value: -1: must be greater than or equal to 0"],
        ),
        (
            "invalid restart policy 1",
            replica_set(
                "abc-123",
                json!({"selector": {"matchLabels": {"a": "b"}},
                                          "template": template(json!({"a": "b"}), "OnFailure")}),
            ),
            vec![
                r#"spec.template.spec.restartPolicy: Unsupported value: "OnFailure": supported values: "Always""#,
            ],
        ),
        (
            "invalid restart policy 2",
            replica_set(
                "abc-123",
                json!({"selector": {"matchLabels": {"a": "b"}},
                                          "template": template(json!({"a": "b"}), "Never")}),
            ),
            vec![
                r#"spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always""#,
            ],
        ),
    ];
    for (name, rs, want) in cases {
        assert_eq!(errors(&rs), want, "{name}");
    }
}

#[test]
fn labels_annotations_and_selector_requirements_are_checked() {
    let mut labelled = replica_set("abc-123", valid_spec());
    labelled.metadata.labels =
        Some([("NoUppercaseOrSpecialCharsLike=Equals".into(), "bar".into())].into());
    let errs = errors(&labelled);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0]
        .starts_with(r#"metadata.labels: Invalid value: "NoUppercaseOrSpecialCharsLike=Equals""#));

    let bad_template = json!({"selector": {"matchLabels": {"a": "b"}},
        "template": template(json!({"a": "b", "NoUppercaseOrSpecialCharsLike=Equals": "b"}), "Always")});
    let errs = errors(&replica_set("abc-123", bad_template));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with(
        r#"spec.template.labels: Invalid value: "NoUppercaseOrSpecialCharsLike=Equals""#
    ));

    let deadline = json!({"selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}},
                     "spec": {"activeDeadlineSeconds": 10, "containers": [{"name": "c", "image": "i"}]}}});
    assert_eq!(
        errors(&replica_set("abc", deadline)),
        ["spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported"]
    );

    let expression = json!({"selector": {"matchExpressions": [{"key": "a", "operator": "In"}]},
                            "template": template(json!({"a": "b"}), "Always")});
    assert_eq!(
        errors(&replica_set("abc", expression)),
        [
            "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            // LabelSelectorAsSelector fails too, and the template goes unchecked.
            r#"spec.selector: Invalid value: {"matchExpressions":[{"key":"a","operator":"In"}]}: invalid label selector"#,
        ]
    );
}

#[test]
fn defaults_give_one_replica_and_a_defaulted_template_spec() {
    let rs = replica_set(
        "abc",
        json!({"selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx",
                              "resources": {"limits": {"cpu": "1"}}}]}}}),
    );
    let value = serde_json::to_value(&rs).unwrap();
    assert_eq!(value["spec"]["replicas"], 1);
    let spec = &value["spec"]["template"]["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        spec["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    // SetDefaults_Pod's parts are a pod's only.
    assert!(spec.get("enableServiceLinks").is_none());
    assert!(spec["containers"][0]["resources"].get("requests").is_none());
    let zero = replica_set("abc", json!({"replicas": 0}));
    assert_eq!(zero.spec.unwrap().replicas, Some(0));
    assert!(ReplicaSetStrategy.tracks_generation());
}

#[test]
fn the_selector_is_immutable_and_replicas_may_change() {
    let old = replica_set("abc", valid_spec());
    let mut scaled = old.clone();
    scaled.spec.as_mut().unwrap().replicas = Some(3);
    assert!(ReplicaSetStrategy.validate_update(&scaled, &old).is_empty());

    let mut moved = old.clone();
    let spec = moved.spec.as_mut().unwrap();
    spec.selector.match_labels = Some([("a".into(), "b".into()), ("c".into(), "d".into())].into());
    spec.template
        .as_mut()
        .unwrap()
        .metadata
        .as_mut()
        .unwrap()
        .labels = Some([("a".into(), "b".into()), ("c".into(), "d".into())].into());
    let errs: Vec<String> = ReplicaSetStrategy
        .validate_update(&moved, &old)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [r#"spec.selector: Invalid value: {"matchLabels":{"a":"b","c":"d"}}: field is immutable"#]
    );
}

/// kube's TestValidateReplicaSetStatusUpdate.
#[test]
fn status_counts_are_checked_on_update() {
    let old = replica_set("abc", valid_spec());
    let with_status = |status: Value| {
        let mut rs = old.clone();
        rs.status = Some(serde_json::from_value(status).unwrap());
        rs
    };
    let fine = with_status(json!({"replicas": 3, "readyReplicas": 2, "availableReplicas": 1}));
    assert!(ReplicaSetStrategy.validate_update(&fine, &old).is_empty());
    let errs: Vec<String> = ReplicaSetStrategy
        .validate_update(
            &with_status(json!({"replicas": 2, "readyReplicas": 3, "availableReplicas": -1})),
            &old,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        [
            "status.availableReplicas: Invalid value: -1: must be greater than or equal to 0",
            "status.readyReplicas: Invalid value: 3: cannot be greater than status.replicas",
        ]
    );
}

#[test]
fn warnings_name_the_template_fields() {
    let spec = json!({"selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}},
                     "spec": {"affinity": {"nodeAffinity": {}},
                              "containers": [{"name": "c", "image": "i"}]}}});
    let mut rs = replica_set("Web.One", spec);
    rs.spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .runtime_class_name = Some("kata".into());
    let warnings = ReplicaSetStrategy.warnings(&rs);
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].starts_with("metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: ["));
    assert_eq!(
        warnings[1],
        "spec.template.spec.runtimeClassName: not supported by peapod, ignored"
    );
}

#[test]
fn rows_show_desired_current_ready_and_the_wide_columns() {
    let mut rs = replica_set(
        "web",
        json!({"replicas": 3,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}}),
    );
    rs.status = Some(serde_json::from_value(json!({"replicas": 2, "readyReplicas": 1})).unwrap());
    let names: Vec<&str> = ReplicaSetStrategy
        .columns()
        .iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Desired",
            "Current",
            "Ready",
            "Age",
            "Containers",
            "Images",
            "Selector"
        ]
    );
    let cells = ReplicaSetStrategy.cells(&rs);
    assert_eq!(cells[..4], [json!("web"), json!(3), json!(2), json!(1)]);
    assert_eq!(
        cells[5..],
        [json!("a,b"), json!("nginx,busybox"), json!("app=web")]
    );
    assert_eq!(
        ReplicaSetStrategy.field(&rs, "status.replicas").as_deref(),
        Some("2")
    );
}
