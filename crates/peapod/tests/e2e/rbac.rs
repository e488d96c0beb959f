//! RBAC through the real kubectl: a user of the token file may do nothing until bound
//! (kube's Forbidden message, `auth can-i` no), a RoleBinding to a Role grants exactly its
//! rules (`can-i` yes, `--list` lists them), a ClusterRole labelled into `view` extends it,
//! and binding `admin` is refused as an escalation until the user may `bind` it; `--as`
//! (impersonation) acts as another user only for those allowed to `impersonate` them.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::common::kubectl::{start_with_kubectl, Kubectl};
use crate::common::*;

const ALICE_TOKEN: &str = "alice-s3cret";

#[test]
fn a_user_may_do_what_their_bindings_grant_and_grant_no_more() {
    let (agent, admin) = start_with_kubectl();
    let data = agent.path().join("var/lib/peapod");
    std::fs::write(
        data.join("tokens.csv"),
        format!("{ALICE_TOKEN},alice,1002,\"dev\"\n"),
    )
    .unwrap();
    let alice = Alice::new(&admin, &data);

    admin.apply(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: guarded\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: busybox\n    imagePullPolicy: Never\n    command: [sh, -c, 'echo hello from guarded; sleep 3600']\n",
    );
    agent.wait_running("guarded");
    let uid = agent.uid("guarded");

    denied_until_bound(&admin, &alice);
    aggregated_into_view(&admin, &alice);
    escalation_refused_until_bind(&admin, &alice);
    impersonation(&admin, &alice);
    subject_access_reviews(&admin, &alice);

    admin.ok(&["delete", "pod", "guarded", "--timeout=60s"]);
    agent.leak_check(&uid);
}

/// kubectl as alice: the admin's kubeconfig with her token instead of the certificate.
struct Alice<'a> {
    kubectl: &'a Kubectl,
    kubeconfig: PathBuf,
}

impl<'a> Alice<'a> {
    fn new(admin: &'a Kubectl, data: &Path) -> Alice<'a> {
        let admin_config = std::fs::read_to_string(data.join("kubeconfig.yaml")).unwrap();
        let mut config: serde_json::Value = serde_yaml_ng::from_str(&admin_config).unwrap();
        config["users"][0]["user"] = serde_json::json!({"token": ALICE_TOKEN});
        let kubeconfig = data.join("alice.kubeconfig");
        std::fs::write(&kubeconfig, serde_json::to_string(&config).unwrap()).unwrap();
        Alice {
            kubectl: admin,
            kubeconfig,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut all = vec!["--kubeconfig", self.kubeconfig.to_str().unwrap()];
        all.extend(args);
        self.kubectl.run(&all, None)
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "alice: kubectl {}: {}",
            args.join(" "),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "alice: kubectl {} should fail: {}",
            args.join(" "),
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// `kubectl auth can-i` as alice: its answer, which its exit code must agree with.
    fn can_i(&self, args: &[&str]) -> String {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        let out = self.run(&all);
        let answer = text(&out.stdout).trim().to_owned();
        assert_eq!(
            out.status.success(),
            answer == "yes",
            "can-i {args:?}: {answer} {}",
            text(&out.stderr)
        );
        answer
    }
}

fn denied_until_bound(admin: &Kubectl, alice: &Alice) {
    assert_eq!(
        alice.ok(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}"
        ]),
        "alice"
    );
    let refused = alice.fails(&["get", "pods"]);
    assert!(
        refused.contains(r#"Error from server (Forbidden): pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{refused}"
    );
    let logs = alice.fails(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/guarded/log",
    ]);
    assert!(
        logs.contains(r#"pods "guarded" is forbidden: User "alice" cannot get resource "pods/log" in API group "" in the namespace "default""#),
        "{logs}"
    );
    assert_eq!(alice.can_i(&["list", "pods"]), "no");

    admin.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods,pods/log",
    ]);
    admin.ok(&[
        "create",
        "rolebinding",
        "alice-reads",
        "--role=pod-reader",
        "--user=alice",
    ]);
    let table = admin.ok(&["get", "roles,rolebindings"]);
    assert!(
        table.contains("role.rbac.authorization.k8s.io/pod-reader"),
        "{table}"
    );
    let binding_row = table
        .lines()
        .find(|l| l.starts_with("rolebinding.rbac.authorization.k8s.io/alice-reads"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(binding_row.contains("Role/pod-reader"), "{table}");
    let wide = admin.ok(&["get", "rolebinding", "alice-reads", "-o", "wide"]);
    assert!(
        wide.lines().nth(1).is_some_and(|row| row.contains("alice")),
        "{wide}"
    );
    let described = admin.ok(&["describe", "role", "pod-reader"]);
    assert!(
        described.contains("pods/log") && described.contains("[get list watch]"),
        "{described}"
    );
    let cluster_roles = admin.ok(&["get", "clusterroles"]);
    for role in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:basic-user",
        "system:discovery",
    ] {
        assert!(
            cluster_roles
                .lines()
                .any(|l| l.split_whitespace().next() == Some(role)),
            "{role}: {cluster_roles}"
        );
    }

    let pods = alice.ok(&["get", "pods", "-o", "name"]);
    assert_eq!(pods.trim(), "pod/guarded");
    assert!(alice
        .ok(&["logs", "guarded"])
        .contains("hello from guarded"));
    assert_eq!(alice.can_i(&["list", "pods"]), "yes");
    assert_eq!(alice.can_i(&["get", "pods/log"]), "yes");
    assert_eq!(alice.can_i(&["delete", "pods"]), "no");
    assert_eq!(alice.can_i(&["list", "pods", "-n", "kube-system"]), "no");
    let list = alice.ok(&["auth", "can-i", "--list"]);
    let pods_row = list
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(pods_row.ends_with("[get list watch]"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list}"
    );
    let refused = alice.fails(&["delete", "pod", "guarded"]);
    assert!(
        refused.contains(r#"User "alice" cannot delete resource "pods""#),
        "{refused}"
    );
}

fn aggregated_into_view(admin: &Kubectl, alice: &Alice) {
    admin.ok(&[
        "create",
        "rolebinding",
        "alice-views",
        "--clusterrole=view",
        "--user=alice",
    ]);
    assert_eq!(alice.can_i(&["list", "configmaps"]), "yes");
    assert_eq!(alice.can_i(&["list", "secrets"]), "no");
    admin.apply(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: secret-reader\n  labels:\n    rbac.authorization.k8s.io/aggregate-to-view: \"true\"\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [list]\n",
    );
    assert_eq!(alice.can_i(&["list", "secrets"]), "yes");
    // The aggregation controller writes the rules into view, as kubectl shows them.
    wait_until(Duration::from_secs(10), "secrets in view's rules", || {
        admin.json(&["get", "clusterrole", "view"])["rules"]
            .as_array()
            .is_some_and(|rules| rules.iter().any(|r| r["resources"] == json!(["secrets"])))
    });
    let described = admin.ok(&["describe", "clusterrole", "view"]);
    assert!(
        described
            .lines()
            .any(|l| l.trim_start().starts_with("secrets ")),
        "{described}"
    );
    assert_eq!(alice.can_i(&["list", "secrets", "-n", "kube-system"]), "no");
}

fn escalation_refused_until_bind(admin: &Kubectl, alice: &Alice) {
    admin.ok(&[
        "create",
        "role",
        "binding-maker",
        "--verb=create",
        "--resource=rolebindings.rbac.authorization.k8s.io",
    ]);
    admin.ok(&[
        "create",
        "rolebinding",
        "alice-binds",
        "--role=binding-maker",
        "--user=alice",
    ]);
    let refused = alice.fails(&[
        "create",
        "rolebinding",
        "alice-admin",
        "--clusterrole=admin",
        "--user=alice",
    ]);
    assert!(
        refused.contains(r#"error: failed to create rolebinding: rolebindings.rbac.authorization.k8s.io "alice-admin" is forbidden: user "alice" (groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#),
        "{refused}"
    );
    assert!(refused.contains(r#"{APIGroups:[""], Resources:["pods"], Verbs:["create" "delete" "deletecollection" "patch" "update"]}"#), "{refused}");
    // A role she holds all of binds without `bind`.
    alice.ok(&[
        "create",
        "rolebinding",
        "alice-reads-again",
        "--role=pod-reader",
        "--user=alice",
    ]);

    admin.ok(&[
        "create",
        "role",
        "admin-binder",
        "--verb=bind",
        "--resource=clusterroles.rbac.authorization.k8s.io",
        "--resource-name=admin",
    ]);
    admin.ok(&[
        "create",
        "rolebinding",
        "alice-binds-admin",
        "--role=admin-binder",
        "--user=alice",
    ]);
    alice.ok(&[
        "create",
        "rolebinding",
        "alice-admin",
        "--clusterrole=admin",
        "--user=alice",
    ]);
    assert_eq!(alice.can_i(&["delete", "pods"]), "yes");
    assert_eq!(alice.can_i(&["delete", "pods", "-n", "kube-system"]), "no");
}

/// The admin (system:masters) acts as others with `--as`, which RBAC then judges as them;
/// alice may not impersonate anyone until a role lets her impersonate one user.
fn impersonation(admin: &Kubectl, alice: &Alice) {
    let account = "--as=system:serviceaccount:default:default";
    let can_i = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        text(&admin.run(&all, None).stdout).trim().to_owned()
    };
    assert_eq!(can_i(&["list", "secrets", account]), "no");
    assert_eq!(can_i(&["list", "secrets"]), "yes");
    let as_jane = admin.run(&["get", "pods", "--as=jane"], None);
    assert_eq!(
        text(&as_jane.stderr).trim(),
        "Error from server (Forbidden): pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let whoami = admin.ok(&[
        "auth",
        "whoami",
        "--as=jane",
        "--as-group=dev",
        "-o",
        "json",
    ]);
    let review: serde_json::Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(
        review["status"]["userInfo"],
        json!({"username": "jane", "groups": ["dev", "system:authenticated"]})
    );

    let refused = alice.fails(&["get", "pods", "--as=jane"]);
    assert!(
        refused.contains("users \"jane\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"),
        "{refused}"
    );
    admin.ok(&[
        "create",
        "clusterrole",
        "impersonate-jane",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=jane",
    ]);
    admin.ok(&[
        "create",
        "clusterrolebinding",
        "alice-as-jane",
        "--clusterrole=impersonate-jane",
        "--user=alice",
    ]);
    wait_until(
        Duration::from_secs(10),
        "alice may impersonate jane",
        || alice.run(&["auth", "whoami", "--as=jane"]).status.success(),
    );
    let other = alice.fails(&["get", "pods", "--as=john"]);
    assert!(
        other.contains("cannot impersonate resource \"users\""),
        "{other}"
    );
}

/// SubjectAccessReview and LocalSubjectAccessReview answer for any user, to those RBAC lets
/// create them, and are refused with kube's messages when malformed. kubectl validates kinds
/// without a PATCH on the client after asking whether they are CRDs, which peapod does not
/// serve: `--validate=false` leaves the validation to the server.
fn subject_access_reviews(admin: &Kubectl, alice: &Alice) {
    let review = |kind: &str, namespace: Option<&str>, spec: serde_json::Value| {
        let mut object =
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": spec});
        if let Some(namespace) = namespace {
            object["metadata"] = json!({"namespace": namespace});
        }
        object.to_string()
    };
    let allowed = |manifest: &str| -> serde_json::Value {
        let out = admin.run(
            &["create", "--validate=false", "-f", "-", "-o", "json"],
            Some(manifest),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        answer["status"]["allowed"].clone()
    };
    let list_pods = json!({"verb": "list", "resource": "pods", "namespace": "default"});
    let nobody = review(
        "SubjectAccessReview",
        None,
        json!({"user": "nobody", "resourceAttributes": list_pods}),
    );
    assert_eq!(allowed(&nobody), json!(false));
    let masters =
        json!({"user": "root", "groups": ["system:masters"], "resourceAttributes": list_pods});
    assert_eq!(
        allowed(&review("SubjectAccessReview", None, masters.clone())),
        json!(true)
    );
    let local = review("LocalSubjectAccessReview", Some("default"), masters);
    assert_eq!(allowed(&local), json!(true));

    let refused = |manifest: &str| {
        let out = admin.run(&["create", "--validate=false", "-f", "-"], Some(manifest));
        assert!(!out.status.success(), "{}", text(&out.stdout));
        text(&out.stderr).trim().to_owned()
    };
    let no_one = review(
        "SubjectAccessReview",
        None,
        json!({"resourceAttributes": list_pods}),
    );
    assert_eq!(
        refused(&no_one),
        "The SubjectAccessReview \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified"
    );
    let elsewhere = json!({"user": "u", "resourceAttributes": {"verb": "get", "resource": "pods", "namespace": "other"}});
    let mismatch = refused(&review(
        "LocalSubjectAccessReview",
        Some("default"),
        elsewhere,
    ));
    assert!(mismatch.contains("spec.resourceAttributes.namespace: Invalid value: \"other\": must match metadata.namespace"), "{mismatch}");

    let config = alice.kubeconfig.to_str().unwrap();
    let as_alice = admin.run(
        &[
            "--kubeconfig",
            config,
            "create",
            "--validate=false",
            "-f",
            "-",
        ],
        Some(&nobody),
    );
    assert!(
        text(&as_alice.stderr).contains("subjectaccessreviews.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"),
        "{}",
        text(&as_alice.stderr)
    );
}
