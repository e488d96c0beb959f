//! kube's `TestValidateSecret`, `TestValidateDockerConfigSecret`, `TestValidateBasicAuthSecret`,
//! `TestValidateSSHAuthSecret`, `TestValidateTLSSecret` and `TestValidateSecretUpdate`, ported,
//! with the messages kube-apiserver 1.32 prints.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::ByteString;
use peapod_apiserver::registry::KindStrategy;

use super::SecretStrategy;

fn secret(type_: &str, data: &[(&str, &[u8])]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some("foo".into()),
            namespace: Some("bar".into()),
            ..ObjectMeta::default()
        },
        type_: Some(type_.into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect(),
        ),
        ..Secret::default()
    }
}

fn opaque() -> Secret {
    secret("Opaque", &[("data-1", b"bar")])
}

fn errors(secret: &Secret) -> Vec<String> {
    SecretStrategy
        .validate(secret)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn with_key(mut secret: Secret, key: &str) -> Secret {
    let data = secret.data.get_or_insert_with(BTreeMap::new);
    data.insert(key.into(), ByteString(b"bar".to_vec()));
    secret
}

#[test]
fn opaque_secrets_check_names_keys_and_size() {
    assert!(errors(&opaque()).is_empty());
    let mut unnamed = opaque();
    unnamed.metadata.name = Some(String::new());
    assert_eq!(
        errors(&unnamed),
        ["metadata.name: Required value: name or generateName is required"]
    );
    let mut no_namespace = opaque();
    no_namespace.metadata.namespace = None;
    assert_eq!(
        errors(&no_namespace),
        ["metadata.namespace: Required value"]
    );
    let mut bad_name = opaque();
    bad_name.metadata.name = Some("NoUppercaseOrSpecialCharsLike=Equals".into());
    assert_eq!(errors(&bad_name).len(), 1, "{:?}", errors(&bad_name));

    assert_eq!(
        errors(&with_key(opaque(), "a*b")),
        [
            r#"data[a*b]: Invalid value: "a*b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"#
        ]
    );
    assert!(errors(&with_key(opaque(), ".key")).is_empty());
    assert_eq!(
        errors(&with_key(opaque(), ".")),
        [r#"data[.]: Invalid value: ".": must not be '.'"#]
    );
    assert_eq!(
        errors(&with_key(opaque(), "..")),
        [r#"data[..]: Invalid value: "..": must not be '..'"#]
    );

    let over = vec![0u8; 1024 * 1024 + 1];
    assert_eq!(
        errors(&secret("Opaque", &[("over", &over)])),
        ["data: Too long: may not be more than 1048576 bytes"]
    );
    // Keys do not count: exactly 1 MiB of values is allowed.
    let exact = vec![0u8; 1024 * 1024];
    assert!(errors(&secret("Opaque", &[("exactly-a-mebibyte", &exact)])).is_empty());
    assert!(errors(&secret("my-own/type", &[])).is_empty());
    assert!(errors(&secret("bootstrap.kubernetes.io/token", &[])).is_empty());
}

#[test]
fn service_account_token_secrets_name_their_account() {
    let token = |annotations: Option<&[(&str, &str)]>| {
        let mut token = secret("kubernetes.io/service-account-token", &[("data-1", b"bar")]);
        token.metadata.annotations = annotations.map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
        token
    };
    assert!(errors(&token(Some(&[(
        "kubernetes.io/service-account.name",
        "foo"
    )])))
    .is_empty());
    let missing = ["metadata.annotations[kubernetes.io/service-account.name]: Required value"];
    assert_eq!(
        errors(&token(Some(&[("kubernetes.io/service-account.name", "")]))),
        missing
    );
    assert_eq!(errors(&token(Some(&[("other", "x")]))), missing);
    assert_eq!(errors(&token(None)), missing);
}

#[test]
fn docker_config_secrets_hold_a_json_object() {
    let config = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"Zm9vOmJhcg=="}}}"#;
    let cfg = br#"{"https://index.docker.io/v1/":{"auth":"Zm9vOmJhcg==","email":"a@b.c"}}"#;
    let json = "kubernetes.io/dockerconfigjson";
    let legacy = "kubernetes.io/dockercfg";
    assert!(errors(&secret(json, &[(".dockerconfigjson", config)])).is_empty());
    assert!(errors(&secret(legacy, &[(".dockercfg", cfg)])).is_empty());
    assert_eq!(
        errors(&secret(json, &[(".dockercfg", config)])),
        ["data[.dockerconfigjson]: Required value"]
    );
    assert_eq!(
        errors(&secret(legacy, &[])),
        ["data[.dockercfg]: Required value"]
    );
    assert_eq!(
        errors(&secret(json, &[(".dockerconfigjson", b"not json")])),
        [
            r#"data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": invalid character 'o' in literal null (expecting 'u')"#
        ]
    );
    assert_eq!(
        errors(&secret(legacy, &[(".dockercfg", b"")])),
        [
            r#"data[.dockercfg]: Invalid value: "<secret contents redacted>": unexpected end of JSON input"#
        ]
    );
    assert_eq!(
        errors(&secret(json, &[(".dockerconfigjson", b"[]")])),
        [
            r#"data[.dockerconfigjson]: Invalid value: "<secret contents redacted>": json: cannot unmarshal array into Go value of type map[string]interface {}"#
        ]
    );
}

#[test]
fn basic_auth_secrets_have_a_username_or_a_password() {
    let basic = "kubernetes.io/basic-auth";
    assert!(errors(&secret(
        basic,
        &[("username", b"admin"), ("password", b"pw")]
    ))
    .is_empty());
    assert!(errors(&secret(basic, &[("username", b"")])).is_empty());
    assert!(errors(&secret(basic, &[("password", b"pw")])).is_empty());
    assert_eq!(
        errors(&secret(basic, &[("user", b"admin")])),
        [
            "data[username]: Required value",
            "data[password]: Required value"
        ]
    );
}

#[test]
fn ssh_auth_secrets_have_a_private_key() {
    let ssh = "kubernetes.io/ssh-auth";
    assert!(errors(&secret(ssh, &[("ssh-privatekey", b"KEY")])).is_empty());
    let missing = ["data[ssh-privatekey]: Required value"];
    assert_eq!(errors(&secret(ssh, &[("ssh-privatekey", b"")])), missing);
    assert_eq!(errors(&secret(ssh, &[("ssh-key", b"KEY")])), missing);
}

#[test]
fn tls_secrets_have_a_certificate_and_a_key() {
    let tls = "kubernetes.io/tls";
    assert!(errors(&secret(tls, &[("tls.crt", b"CRT"), ("tls.key", b"KEY")])).is_empty());
    // kube checks presence only: empty values pass.
    assert!(errors(&secret(tls, &[("tls.crt", b""), ("tls.key", b"")])).is_empty());
    assert_eq!(
        errors(&secret(tls, &[("tls.crt", b"CRT")])),
        ["data[tls.key]: Required value"]
    );
    assert_eq!(
        errors(&secret(tls, &[])),
        [
            "data[tls.crt]: Required value",
            "data[tls.key]: Required value"
        ]
    );
}

#[test]
fn string_data_is_folded_into_data_and_the_type_defaults_to_opaque() {
    let mut secret = opaque();
    secret.type_ = None;
    secret.string_data = Some(BTreeMap::from([
        ("data-1".to_owned(), "overwritten".to_owned()),
        ("plain".to_owned(), "text".to_owned()),
    ]));
    SecretStrategy.default(&mut secret);
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    assert_eq!(secret.string_data, None);
    let data = secret.data.unwrap();
    assert_eq!(data["data-1"].0, b"overwritten");
    assert_eq!(data["plain"].0, b"text");
}

#[test]
fn updates_keep_the_type_and_an_immutable_secret() {
    let update_errors = |new: &Secret, old: &Secret| -> Vec<String> {
        SecretStrategy
            .validate_update(new, old)
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    let mut old = opaque();
    old.metadata.resource_version = Some("1".into());
    let mut changed = with_key(old.clone(), "more");
    assert!(update_errors(&changed, &old).is_empty());

    changed.type_ = Some("kubernetes.io/basic-auth".into());
    assert_eq!(
        update_errors(&changed, &old),
        [
            r#"type: Invalid value: "kubernetes.io/basic-auth": field is immutable"#,
            "data[username]: Required value",
            "data[password]: Required value",
        ]
    );

    old.immutable = Some(true);
    let mut same = old.clone();
    assert!(update_errors(&same, &old).is_empty());
    same.metadata.labels = Some(BTreeMap::from([("a".to_owned(), "b".to_owned())]));
    assert!(update_errors(&same, &old).is_empty(), "metadata may change");
    let mut changed = with_key(old.clone(), "more");
    assert_eq!(
        update_errors(&changed, &old),
        ["data: Forbidden: field is immutable when `immutable` is set"]
    );
    changed.immutable = Some(false);
    assert_eq!(
        update_errors(&changed, &old),
        [
            "immutable: Forbidden: field is immutable when `immutable` is set",
            "data: Forbidden: field is immutable when `immutable` is set",
        ]
    );
}
