//! Manifests read as kubectl reads them: YAML 1.1 plain scalars (sigs.k8s.io/yaml).

use serde_json::{json, Value};

use super::fake::Fake;
use super::{created, run_at};

/// A pod `p` mounting a Secret volume whose `secret` mapping has `extra` (block entries).
fn secret_volume_pod(extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n    volumeMounts:\n    - {{name: s, mountPath: /s, readOnly: yes}}\n  volumes:\n  - name: s\n    secret:\n      secretName: s\n      {extra}\n"
    )
}

#[tokio::test]
async fn apply_reads_an_unquoted_leading_zero_mode_as_octal() {
    let fake = Fake::start(|req| created(req, &[]));
    let input = secret_volume_pod("defaultMode: 0400");
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!((o.code, o.err.as_str()), (0, ""));
    assert_eq!(o.out, "pod/p created\n");
    let requests = fake.requests();
    let body: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_eq!(
        body["spec"]["volumes"][0]["secret"]["defaultMode"],
        json!(256)
    );
    assert_eq!(
        body["spec"]["containers"][0]["volumeMounts"][0]["readOnly"],
        json!(true)
    );
}

#[tokio::test]
async fn apply_keeps_a_quoted_mode_a_string_and_refuses_it() {
    let fake = Fake::start(|req| created(req, &[]));
    let input = secret_volume_pod("defaultMode: \"0400\"");
    let o = run_at(&fake.socket, &["apply", "-f", "-"], input.as_bytes()).await;
    assert_eq!(o.code, 1);
    assert_eq!(
        o.err,
        "error: unable to decode \"STDIN\" (document 0): spec.volumes[0].secret.defaultMode: invalid type: string \"0400\", expected i32\n"
    );
    assert!(fake.requests().is_empty(), "nothing is sent");
}

#[tokio::test]
async fn get_o_yaml_quotes_what_yaml_1_1_would_read_as_another_type_and_applies_back() {
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "flags", "namespace": "default", "resourceVersion": "3"},
        "data": {"enabled": "yes", "mode": "0400", "n": "n", "count": "1_000"}});
    let fake = Fake::start(move |_| super::fake::Reply::json(200, config_map.clone()));
    let o = run_at(&fake.socket, &["get", "cm", "flags", "-o", "yaml"], b"").await;
    assert_eq!(o.code, 0, "{}", o.err);
    assert!(
        o.out.starts_with(
            "apiVersion: v1\ndata:\n  count: \"1_000\"\n  enabled: \"yes\"\n  mode: \"0400\"\n  \"n\": \"n\"\n"
        ),
        "{}",
        o.out
    );
    let read_back = peapod_api::decode::decode_documents(o.out.as_bytes()).unwrap();
    assert_eq!(
        read_back[0].value["data"],
        json!({"enabled": "yes", "mode": "0400", "n": "n", "count": "1_000"})
    );
}
