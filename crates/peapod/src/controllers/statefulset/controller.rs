//! The StatefulSet controller's loop: kube-runtime's Controller over the in-process API,
//! triggered by StatefulSets, by pods and ControllerRevisions (their controlling set;
//! orphans, the sets that select them); each reconcile is kube's `syncStatefulSet` on a
//! fresh read, in the [shared loop](crate::controllers::reconciler): claim the pods and
//! revisions, find the current and update revisions, send what [`plan`](super::plan)
//! decides (claims before their pod), write the status, truncate the history.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::{Api, Client, ResourceExt};
use peapod_api::label_selector;
use peapod_api::selector::LabelSelector as Selector;

use super::identity::{claims_for, new_pod, ordinal_of, ordinal_range, pod_name};
use super::plan::{self, Revision, Revisions, Step};
use super::retention;
use super::revisions::{self, History};
use super::status;
use crate::controllers::events::{Event, Events};
use crate::controllers::ownership::{self, AdoptionError};
use crate::controllers::reconciler::{self, Reconciler};

/// The controller's name, in its events.
pub const NAME: &str = "statefulset-controller";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Adoption(#[from] AdoptionError),
}

pub struct Context {
    client: Client,
    events: Events,
}

impl Reconciler for Context {
    type Object = StatefulSet;
    type Error = ReconcileError;
    const LOG_NAME: &'static str = "statefulset controller";

    fn client(&self) -> &Client {
        &self.client
    }

    async fn sync(&self, set: StatefulSet) -> Result<Action, ReconcileError> {
        sync(&set, self).await
    }
}

/// Runs the controller until its task is aborted.
pub async fn run(client: Client) {
    let controller = Controller::new(Api::<StatefulSet>::all(client.clone()), Default::default());
    let (pod_cache, revision_cache) = (controller.store(), controller.store());
    let controller = controller
        .watches(
            Api::<Pod>::all(client.clone()),
            Default::default(),
            move |pod| ownership::controllers_to_sync(&pod_cache, &pod),
        )
        .watches(
            Api::<ControllerRevision>::all(client.clone()),
            Default::default(),
            move |revision| ownership::controllers_to_sync(&revision_cache, &revision),
        );
    let context = Context {
        events: Events::new(client.clone(), NAME),
        client,
    };
    reconciler::run(controller, context).await;
}

/// `syncStatefulSet` for a fresh read of the set.
async fn sync(set: &StatefulSet, ctx: &Context) -> Result<Action, ReconcileError> {
    let Some(selector) = ownership::valid_selector(set) else {
        return Ok(Action::await_change());
    };
    let given = set.spec.as_ref().map(|s| &s.selector);
    if given.is_some_and(label_selector::is_empty) || set.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let history = revisions::history(set, &selector, &ctx.client).await?;
    let pods = claim_pods(set, &selector, ctx).await?;
    let pods: Vec<&Pod> = pods.iter().collect();
    let (current, update) = (history.current.name_any(), history.update.name_any());
    let names = Revisions {
        current: &current,
        update: &update,
    };
    let now = Timestamp::now();
    let decided = plan::plan(set, &pods, &names, now);
    update_claim_owners(set, &pods, ctx).await?;
    for ordinal in &decided.missing_claims {
        create_claims(set, *ordinal, ctx).await?;
    }
    let sent = send(set, &decided.steps, &history, ctx).await;
    let new_status = status::compute(set, &pods, &names, now);
    if set.status.as_ref() != Some(&new_status) {
        write_status(set, new_status, ctx).await?;
    }
    sent?;
    revisions::truncate(set, &history, &pods, &ctx.client).await?;
    Ok(decided.requeue.map_or_else(Action::await_change, |wait| {
        Action::requeue(wait + Duration::from_millis(100))
    }))
}

/// The plan's creates (claims first) and deletes, each recorded as kube's pod control does.
async fn send(
    set: &StatefulSet,
    steps: &[Step],
    history: &History,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let pods = Api::<Pod>::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let set_name = set.name_any();
    for step in steps {
        match step {
            Step::Create(ordinal, revision) => {
                let at = match revision {
                    Revision::Current => &history.current,
                    Revision::Update => &history.update,
                };
                let template = revisions::template_at(at)
                    .unwrap_or_else(|| set.spec.clone().unwrap_or_default().template);
                create_claims(set, *ordinal, ctx).await?;
                let pod = new_pod(set, &template, *ordinal, &at.name_any());
                let name = pod_name(set, *ordinal);
                let result = pods.create(&PostParams::default(), &pod).await;
                record(set, "create", "Pod", &name, result.as_ref().err(), ctx).await;
                result?;
            }
            Step::Delete(name) => {
                let result = pods.delete(name, &DeleteParams::default()).await;
                let gone = matches!(&result, Err(kube::Error::Api(s)) if s.is_not_found());
                if !gone {
                    record(set, "delete", "Pod", name, result.as_ref().err(), ctx).await;
                    result?;
                }
            }
        }
    }
    tracing::debug!(statefulset = %set_name, steps = steps.len(), "statefulset synced");
    Ok(())
}

/// `createPersistentVolumeClaims`: the pod's claims that do not exist yet.
async fn create_claims(
    set: &StatefulSet,
    ordinal: i32,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let api = Api::<PersistentVolumeClaim>::namespaced(
        ctx.client.clone(),
        &set.namespace().unwrap_or_default(),
    );
    for (_, mut claim) in claims_for(set, ordinal) {
        let name = claim.name_any();
        if api.get_opt(&name).await?.is_some() {
            continue;
        }
        claim.metadata.owner_references = retention::wanted_owners(&[], set, None, true);
        let result = api.create(&PostParams::default(), &claim).await;
        match &result {
            Err(kube::Error::Api(s)) if s.is_already_exists() => continue,
            _ => record(set, "create", "Claim", &name, result.as_ref().err(), ctx).await,
        }
        result?;
    }
    Ok(())
}

/// `UpdatePodClaimForRetentionPolicy` for every pod: the owner references of its existing
/// claims as the retention policy wants them (before a scaled-down pod is deleted).
async fn update_claim_owners(
    set: &StatefulSet,
    pods: &[&Pod],
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let templates = set
        .spec
        .as_ref()
        .and_then(|s| s.volume_claim_templates.as_ref());
    if templates.is_none_or(Vec::is_empty) {
        return Ok(());
    }
    let api = Api::<PersistentVolumeClaim>::namespaced(
        ctx.client.clone(),
        &set.namespace().unwrap_or_default(),
    );
    let range = ordinal_range(set);
    for pod in pods {
        let Some(ordinal) = ordinal_of(set, pod) else {
            continue;
        };
        for (_, wanted) in claims_for(set, ordinal) {
            let Some(mut claim) = api.get_opt(&wanted.name_any()).await? else {
                continue;
            };
            let existing = claim.metadata.owner_references.clone().unwrap_or_default();
            let in_range = range.contains(&ordinal);
            if let Some(owners) = retention::wanted_owners(&existing, set, Some(pod), in_range) {
                claim.metadata.owner_references = Some(owners);
                api.replace(&claim.name_any(), &PostParams::default(), &claim)
                    .await?;
            }
        }
    }
    Ok(())
}

/// `recordPodEvent`/`recordClaimEvent`: `SuccessfulCreate` "create Pod web-0 in StatefulSet
/// web successful", or `FailedCreate` with the error.
async fn record(
    set: &StatefulSet,
    verb: &str,
    what: &str,
    name: &str,
    err: Option<&kube::Error>,
    ctx: &Context,
) {
    let set_name = set.name_any();
    let event = match (verb, err) {
        ("create", None) => Event::normal(
            "SuccessfulCreate",
            format!("create {what} {name} in StatefulSet {set_name} successful"),
        ),
        ("create", Some(err)) => Event::warning(
            "FailedCreate",
            format!("create {what} {name} in StatefulSet {set_name} failed error: {err}"),
        ),
        (_, None) => Event::normal(
            "SuccessfulDelete",
            format!("delete {what} {name} in StatefulSet {set_name} successful"),
        ),
        (_, Some(err)) => Event::warning(
            "FailedDelete",
            format!("delete {what} {name} in StatefulSet {set_name} failed error: {err}"),
        ),
    };
    ctx.events.record(set, event).await;
}

/// The namespace's pods the set owns or adopts.
async fn claim_pods(
    set: &StatefulSet,
    selector: &Selector,
    ctx: &Context,
) -> Result<Vec<Pod>, ReconcileError> {
    let api = Api::<Pod>::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let all = api.list(&ListParams::default()).await?.items;
    let all: Vec<&Pod> = all.iter().collect();
    Ok(ownership::claim_all(set, selector, &all, &api).await?)
}

async fn write_status(
    set: &StatefulSet,
    new_status: k8s_openapi::api::apps::v1::StatefulSetStatus,
    ctx: &Context,
) -> Result<(), ReconcileError> {
    let sets =
        Api::<StatefulSet>::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    let mut updated = set.clone();
    updated.status = Some(new_status);
    sets.replace_status(&set.name_any(), &PostParams::default(), &updated)
        .await?;
    Ok(())
}
