//! The deprecated rollback (kube's `rollback.go`): a Deployment annotated
//! `deprecated.deployment.rollback.to` (what extensions/v1beta1's rollback wrote, and what
//! kube's iterative-rollouts test still sets) takes the template and annotations of the
//! ReplicaSet of that revision (0: the previous one), and the annotation is cleared whatever
//! happens, so a rollback is never retried.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use kube::api::PostParams;
use kube::ResourceExt;

use super::hash::DEFAULT_LABEL_KEY;
use super::revision::{self, DEPRECATED_ROLLBACK_TO};
use super::rollout::{ReconcileError, Requeue, Rollout};
use super::template;
use crate::controllers::events::Event;

/// `deploymentutil.RollbackDone`.
const ROLLBACK_DONE: &str = "DeploymentRollback";
/// `deploymentutil.RollbackRevisionNotFound`.
const ROLLBACK_REVISION_NOT_FOUND: &str = "DeploymentRollbackRevisionNotFound";
/// `deploymentutil.RollbackTemplateUnchanged`.
const ROLLBACK_TEMPLATE_UNCHANGED: &str = "DeploymentRollbackTemplateUnchanged";

/// `getRollbackTo`: the revision asked for; none when unset, empty or not a number.
pub fn rollback_to(d: &Deployment) -> Option<i64> {
    let annotations = d.metadata.annotations.as_ref()?;
    annotations.get(DEPRECATED_ROLLBACK_TO)?.parse().ok()
}

/// `SetFromReplicaSetTemplate` and `SetDeploymentAnnotationsTo`: the set's template without
/// its pod-template-hash, and its annotations (but the ones never copied) over the
/// Deployment's own, so the change cause goes back with the template.
fn roll_back_to_template(d: &mut Deployment, rs: &ReplicaSet) {
    let mut template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    let metadata = template.metadata.get_or_insert_default();
    if let Some(labels) = metadata.labels.as_mut() {
        labels.remove(DEFAULT_LABEL_KEY);
    }
    d.spec.get_or_insert_default().template = template;
    let annotations = d.metadata.annotations.get_or_insert_default();
    annotations.retain(|key, _| revision::skips_copy(key));
    for (key, value) in rs.metadata.annotations.iter().flatten() {
        if !revision::skips_copy(key) {
            annotations.insert(key.clone(), value.clone());
        }
    }
}

/// What a rollback comes to, once the target revision is looked for.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The template was copied from the set of that revision.
    RolledBack(i64),
    /// The set of that revision has the Deployment's template already.
    Unchanged,
    /// No previous revision (`to` 0) or no set of that revision.
    NotFound(&'static str),
}

/// `rollback` without its writes: `d` takes the template of the set of revision `to` (0: the
/// one before the latest) among `sets`.
fn plan(d: &mut Deployment, sets: &[&ReplicaSet], to: i64) -> Outcome {
    let to = match to {
        0 => match revision::last_revision(sets) {
            0 => return Outcome::NotFound("Unable to find last revision."),
            last => last,
        },
        to => to,
    };
    let found = sets
        .iter()
        .find(|rs| revision::revision(&rs.metadata).ok() == Some(to));
    let Some(rs) = found else {
        return Outcome::NotFound("Unable to find the revision to rollback to.");
    };
    let current = d
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let wanted = rs.spec.as_ref().and_then(|s| s.template.clone());
    if template::equal_ignore_hash(&current, &wanted.unwrap_or_default()) {
        return Outcome::Unchanged;
    }
    roll_back_to_template(d, rs);
    Outcome::RolledBack(to)
}

impl Rollout<'_> {
    /// `rollback`: the Deployment written with the template of the revision asked for (the
    /// next sync rolls it out) and without the rollback annotation; events say what happened.
    pub async fn rollback(
        &mut self,
        sets: &[ReplicaSet],
        to: i64,
    ) -> Result<Requeue, ReconcileError> {
        let (new_rs, old) = self.all_replica_sets_and_sync_revision(sets, true).await?;
        let all: Vec<&ReplicaSet> = old.iter().chain(new_rs.as_ref()).collect();
        let outcome = plan(&mut self.d, &all, to);
        if let Some(annotations) = self.d.metadata.annotations.as_mut() {
            annotations.remove(DEPRECATED_ROLLBACK_TO);
        }
        let name = self.d.name_any();
        self.d = self
            .deployments
            .replace(&name, &PostParams::default(), &self.d)
            .await?;
        let event = match outcome {
            Outcome::RolledBack(to) => Event::normal(
                ROLLBACK_DONE,
                format!("Rolled back deployment {name:?} to revision {to}"),
            ),
            Outcome::Unchanged => Event::warning(
                ROLLBACK_TEMPLATE_UNCHANGED,
                format!("The rollback revision contains the same template as current deployment {name:?}"),
            ),
            Outcome::NotFound(message) => {
                Event::warning(ROLLBACK_REVISION_NOT_FOUND, message.to_owned())
            }
        };
        self.ctx.events.record(&self.d, event).await;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::deployment::fixtures::{generate_deployment, generate_rs, labels};

    fn with_revision(mut rs: ReplicaSet, revision: &str, cause: &str) -> ReplicaSet {
        rs.metadata.annotations = Some(labels(&[
            (revision::REVISION_ANNOTATION, revision),
            ("kubernetes.io/change-cause", cause),
        ]));
        let template = rs.spec.as_mut().unwrap().template.as_mut().unwrap();
        let meta = template.metadata.as_mut().unwrap();
        meta.labels
            .as_mut()
            .unwrap()
            .insert(DEFAULT_LABEL_KEY.into(), format!("h{revision}"));
        rs
    }

    fn rolled_back(to: &str) -> Deployment {
        let mut d = generate_deployment("nginx");
        d.metadata.annotations = Some(labels(&[
            (DEPRECATED_ROLLBACK_TO, to),
            (revision::REVISION_ANNOTATION, "2"),
            ("kubernetes.io/change-cause", "edit"),
        ]));
        d
    }

    #[test]
    fn the_rollback_annotation_is_read_as_kube_does() {
        assert_eq!(rollback_to(&rolled_back("3")), Some(3));
        assert_eq!(rollback_to(&rolled_back("0")), Some(0));
        assert_eq!(rollback_to(&rolled_back("")), None);
        assert_eq!(rollback_to(&rolled_back("three")), None);
        assert_eq!(rollback_to(&generate_deployment("nginx")), None);
    }

    /// kube's rollback.go comment: RS1 {change-cause: create}, RS2 {change-cause: edit};
    /// rolled back, the Deployment has RS1's template and change cause.
    #[test]
    fn a_rollback_takes_the_template_and_change_cause_of_the_revision() {
        let old = with_revision(
            generate_rs(&generate_deployment("old"), "rs1"),
            "1",
            "create",
        );
        let mut d = rolled_back("0");
        let new = with_revision(generate_rs(&d, "rs2"), "2", "edit");
        assert_eq!(plan(&mut d, &[&old, &new], 0), Outcome::RolledBack(1));
        let template = &d.spec.as_ref().unwrap().template;
        assert!(template::equal_ignore_hash(
            template,
            old.spec.as_ref().unwrap().template.as_ref().unwrap()
        ));
        let labels_now = template.metadata.as_ref().unwrap().labels.clone().unwrap();
        assert!(!labels_now.contains_key(DEFAULT_LABEL_KEY));
        let annotations = d.metadata.annotations.unwrap();
        assert_eq!(annotations["kubernetes.io/change-cause"], "create");
        assert_eq!(annotations[revision::REVISION_ANNOTATION], "2", "kept");
        assert!(
            annotations.contains_key(DEPRECATED_ROLLBACK_TO),
            "cleared by the caller"
        );
        assert!(!annotations.contains_key(revision::REVISION_HISTORY_ANNOTATION));
    }

    #[test]
    fn missing_revisions_and_same_templates_roll_nothing_back() {
        let mut d = rolled_back("0");
        let new = with_revision(generate_rs(&d, "rs2"), "2", "edit");
        let before = d.clone();
        assert_eq!(
            plan(&mut d, &[&new], 0),
            Outcome::NotFound("Unable to find last revision.")
        );
        assert_eq!(
            plan(&mut d, &[&new], 7),
            Outcome::NotFound("Unable to find the revision to rollback to.")
        );
        assert_eq!(plan(&mut d, &[&new], 2), Outcome::Unchanged);
        assert_eq!(d, before);
    }
}
