use serde_json::json;

use super::*;
use crate::controllers::job::fixtures::{build_pod, job};

#[test]
fn finalizers_are_released_when_no_running_job_will_count_the_pod() {
    let tracked = build_pod().tracking_finalizer().pod();
    let running = job(json!({}));
    let mut finished = job(json!({}));
    finished.status = Some(
        serde_json::from_value(json!({"conditions": [
        {"type": "Complete", "status": "True"}]}))
        .unwrap(),
    );
    let mut external = finished.clone();
    external.spec.as_mut().unwrap().managed_by = Some("example.com/other".into());

    assert!(releases(&tracked, Owner::None));
    assert!(releases(&tracked, Owner::Job(None)));
    assert!(releases(&tracked, Owner::Job(Some(&finished))));
    assert!(!releases(&tracked, Owner::Job(Some(&running))));
    assert!(!releases(&tracked, Owner::Job(Some(&external))));
    assert!(!releases(&tracked, Owner::OtherKind));
    assert!(!releases(&build_pod().pod(), Owner::None));
}
