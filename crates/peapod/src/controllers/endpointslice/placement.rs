//! Where each wanted endpoint goes, as kube's reconciler places it with minimal churn: kept
//! in the slice that has it (updated when it changed), slices that lost endpoints filled up
//! first (the fullest first), what is left put into the unchanged slice it fills closest to
//! full, else into new slices of at most 100; a slice left empty is deleted, a create paired
//! with a delete becomes an update of the doomed slice, and a Service with no endpoints keeps
//! one empty placeholder slice.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::desired::{
    endpoint_key, new_slice, owned_by, ports_key, slice_labels, PortGroup, PortsKey,
};
use super::trigger_time::{self, LAST_CHANGE_TRIGGER_TIME};

/// The writes that bring a Service's slices to what it wants.
#[derive(Debug, Default)]
pub struct Plan {
    pub create: Vec<EndpointSlice>,
    pub update: Vec<EndpointSlice>,
    pub delete: Vec<EndpointSlice>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// `reconcileByAddressType` and `finalize`: the plan for `existing` (the slices this
/// controller manages for the Service) given the `desired` groups.
pub fn plan(
    service: &Service,
    existing: Vec<EndpointSlice>,
    mut desired: BTreeMap<PortsKey, PortGroup>,
    max_per_slice: usize,
    trigger: Option<Timestamp>,
) -> Plan {
    let mut plan = Plan::default();
    let existing_count = existing.len();
    let mut by_ports: BTreeMap<PortsKey, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        match owned_by(&slice, service) {
            true => {
                let key = ports_key(slice.ports.as_deref().unwrap_or_default());
                by_ports.entry(key).or_default().push(slice);
            }
            false => plan.delete.push(slice),
        }
    }
    for (key, group) in &mut desired {
        let slices = by_ports.remove(key).unwrap_or_default();
        let part = place_group(service, slices, group, max_per_slice);
        plan.create.extend(part.create);
        plan.update.extend(part.update);
        plan.delete.extend(part.delete);
    }
    plan.delete.extend(by_ports.into_values().flatten());
    if existing_count == plan.delete.len() && plan.create.is_empty() {
        let placeholder = new_slice(service, &[]);
        match plan.delete.as_slice() {
            [only] if same_placeholder(only, &placeholder) => plan.delete.clear(),
            _ => plan.create.push(placeholder),
        }
    }
    finalize(service, plan, trigger)
}

/// `reconcileByPortMapping` for one set of ports.
fn place_group(
    service: &Service,
    existing: Vec<EndpointSlice>,
    group: &mut PortGroup,
    max_per_slice: usize,
) -> Plan {
    let mut by_name: BTreeMap<String, EndpointSlice> = BTreeMap::new();
    let (mut unchanged, mut to_update, mut to_delete) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for slice in existing {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let (kept, endpoint_changed) = keep_desired(&slice, group);
        let (labels, labels_changed) = slice_labels(slice.metadata.labels.as_ref(), service);
        let mut changed = slice.clone();
        if endpoint_changed || kept.len() != slice.endpoints.len() {
            if kept.is_empty() {
                to_delete.insert(name.clone());
            } else {
                to_update.insert(name.clone());
            }
            changed.endpoints = kept;
            changed.metadata.labels = Some(labels);
        } else if labels_changed {
            to_update.insert(name.clone());
            changed.metadata.labels = Some(labels);
        } else {
            unchanged.insert(name.clone());
        }
        by_name.insert(name, changed);
    }
    if !group.endpoints.is_empty() {
        let mut fullest_first: Vec<&String> = to_update.iter().collect();
        fullest_first.sort_by_key(|name| std::cmp::Reverse(by_name[*name].endpoints.len()));
        for name in fullest_first {
            let slice = by_name.get_mut(name).expect("marked slices are known");
            fill(slice, group, max_per_slice);
        }
    }
    let mut create = Vec::new();
    while !group.endpoints.is_empty() {
        let target = match group.endpoints.len() < max_per_slice {
            true => slice_to_fill(&unchanged, &by_name, group.endpoints.len(), max_per_slice),
            false => None,
        };
        match target {
            Some(name) => {
                let slice = by_name.get_mut(&name).expect("unchanged slices are known");
                fill(slice, group, max_per_slice);
                unchanged.remove(&name);
                to_update.insert(name);
            }
            None => {
                let mut slice = new_slice(service, &group.ports);
                fill(&mut slice, group, max_per_slice);
                create.push(slice);
            }
        }
    }
    let mut take = |names: BTreeSet<String>| -> Vec<EndpointSlice> {
        names.iter().filter_map(|n| by_name.remove(n)).collect()
    };
    Plan {
        update: take(to_update),
        delete: take(to_delete),
        create,
    }
}

/// The slice's endpoints still wanted (in their wanted form, taken out of `group`), and
/// whether any of them changed.
fn keep_desired(slice: &EndpointSlice, group: &mut PortGroup) -> (Vec<Endpoint>, bool) {
    let mut kept = Vec::new();
    let mut changed = false;
    for endpoint in &slice.endpoints {
        if let Some(wanted) = group.endpoints.remove(&endpoint_key(endpoint)) {
            changed |= wanted != *endpoint;
            kept.push(wanted);
        }
    }
    (kept, changed)
}

fn fill(slice: &mut EndpointSlice, group: &mut PortGroup, max_per_slice: usize) {
    while slice.endpoints.len() < max_per_slice {
        let Some((_, endpoint)) = group.endpoints.pop_first() else {
            break;
        };
        slice.endpoints.push(endpoint);
    }
}

/// `getSliceToFill`: the unchanged slice that `count` more endpoints fill closest to full.
fn slice_to_fill(
    unchanged: &BTreeSet<String>,
    by_name: &BTreeMap<String, EndpointSlice>,
    count: usize,
    max_per_slice: usize,
) -> Option<String> {
    let mut closest: Option<(usize, &String)> = None;
    for name in unchanged {
        let Some(room) = max_per_slice.checked_sub(count + by_name[name].endpoints.len()) else {
            continue;
        };
        if closest.is_none_or(|(best, _)| room < best) {
            closest = Some((room, name));
        }
    }
    closest.map(|(_, name)| name.clone())
}

/// `placeholderSliceCompare`: same namespace, labels, owners, ports and endpoints.
fn same_placeholder(slice: &EndpointSlice, placeholder: &EndpointSlice) -> bool {
    let owners = |s: &EndpointSlice| s.metadata.owner_references.clone().unwrap_or_default();
    let labels = |s: &EndpointSlice| s.metadata.labels.clone().unwrap_or_default();
    slice.metadata.namespace == placeholder.metadata.namespace
        && labels(slice) == labels(placeholder)
        && owners(slice) == owners(placeholder)
        && slice.ports.as_deref().unwrap_or_default()
            == placeholder.ports.as_deref().unwrap_or_default()
        && slice.endpoints == placeholder.endpoints
        && slice.address_type == placeholder.address_type
}

/// `finalize`'s planning: creates turned into updates of slices otherwise deleted, no
/// creates for a Service being deleted, and the trigger time on every write.
fn finalize(service: &Service, mut plan: Plan, trigger: Option<Timestamp>) -> Plan {
    let mut index = 0;
    while index < plan.delete.len() && !plan.create.is_empty() {
        let doomed = &plan.delete[index];
        let last = plan.create.last().expect("creates are left");
        if doomed.address_type == last.address_type && owned_by(doomed, service) {
            let doomed = plan.delete.remove(index);
            let mut reused = plan.create.pop().expect("creates are left");
            reused.metadata.name = doomed.metadata.name;
            reused.metadata.resource_version = doomed.metadata.resource_version;
            plan.update.push(reused);
        } else {
            index += 1;
        }
    }
    if service.metadata.deletion_timestamp.is_some() {
        plan.create.clear();
    }
    for slice in plan.create.iter_mut().chain(plan.update.iter_mut()) {
        let annotations = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match trigger {
            Some(at) => annotations.insert(
                LAST_CHANGE_TRIGGER_TIME.to_owned(),
                trigger_time::format(at),
            ),
            None => annotations.remove(LAST_CHANGE_TRIGGER_TIME),
        };
    }
    plan
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Pod, PodCondition, PodIP, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    use super::*;
    use crate::controllers::endpointslice::desired::{
        desired_groups, LABEL_MANAGED_BY, LABEL_SERVICE_NAME,
    };

    fn service() -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("foo".to_owned()),
                namespace: Some("ns".to_owned()),
                uid: Some("svc-uid".to_owned()),
                labels: Some([("team".to_owned(), "a".to_owned())].into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.43.0.20".to_owned()),
                selector: Some([("app".to_owned(), "foo".to_owned())].into()),
                ports: Some(vec![ServicePort {
                    name: Some("http".to_owned()),
                    port: 80,
                    target_port: Some(IntOrString::Int(8080)),
                    protocol: Some("TCP".to_owned()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn pod(index: usize, ready: bool) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(format!("pod{index}")),
                namespace: Some("ns".to_owned()),
                uid: Some(format!("uid{index}")),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-1".to_owned()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".to_owned()),
                pod_ips: Some(vec![PodIP {
                    ip: format!("10.0.{}.{}", index / 250, index % 250 + 1),
                }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".to_owned(),
                    status: if ready { "True" } else { "False" }.to_owned(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        }
    }

    fn pods(count: usize) -> Vec<Pod> {
        (0..count).map(|i| pod(i, true)).collect()
    }

    fn plan_for(service: &Service, pods: &[Pod], existing: Vec<EndpointSlice>) -> Plan {
        let pods: Vec<&Pod> = pods.iter().collect();
        let desired = desired_groups(service, &pods);
        plan(service, existing, desired, 100, None)
    }

    /// The slices as stored after `plan`'s writes, creates given names.
    fn stored(existing: Vec<EndpointSlice>, plan: Plan) -> Vec<EndpointSlice> {
        let mut slices: BTreeMap<String, EndpointSlice> = existing
            .into_iter()
            .map(|s| (s.metadata.name.clone().unwrap(), s))
            .collect();
        for slice in &plan.delete {
            slices.remove(slice.metadata.name.as_ref().unwrap());
        }
        for slice in plan.update {
            slices.insert(slice.metadata.name.clone().unwrap(), slice);
        }
        for (index, mut slice) in plan.create.into_iter().enumerate() {
            let name = format!("foo-new{}-{index}", slices.len());
            slice.metadata.name = Some(name.clone());
            slices.insert(name, slice);
        }
        slices.into_values().collect()
    }

    fn sizes(slices: &[EndpointSlice]) -> Vec<usize> {
        let mut sizes: Vec<usize> = slices.iter().map(|s| s.endpoints.len()).collect();
        sizes.sort_unstable();
        sizes
    }

    #[test]
    fn no_pods_get_one_placeholder_slice_kept_across_syncs() {
        let service = service();
        let first = plan_for(&service, &[], Vec::new());
        assert_eq!(first.create.len(), 1);
        let placeholder = &first.create[0];
        assert!(placeholder.endpoints.is_empty());
        assert_eq!(placeholder.ports.as_deref(), Some(&[][..]));
        assert_eq!(placeholder.metadata.generate_name.as_deref(), Some("foo-"));
        let labels = placeholder.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_SERVICE_NAME], "foo");
        assert_eq!(labels[LABEL_MANAGED_BY], "endpointslice-controller.k8s.io");
        assert_eq!(labels["team"], "a");
        let owner = &placeholder.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Service", "svc-uid")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let existing = stored(Vec::new(), first);
        assert!(plan_for(&service, &[], existing).is_empty());
    }

    #[test]
    fn one_pod_gets_one_slice_with_its_endpoint() {
        let service = service();
        let plan = plan_for(&service, &[pod(1, true)], Vec::new());
        assert_eq!((plan.create.len(), plan.update.len()), (1, 0));
        let slice = &plan.create[0];
        assert_eq!(slice.address_type, "IPv4");
        let port = &slice.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port),
            (Some("http"), Some(8080))
        );
        let endpoint = &slice.endpoints[0];
        assert_eq!(endpoint.addresses, vec!["10.0.0.2"]);
        assert_eq!(endpoint.node_name.as_deref(), Some("node-1"));
        assert_eq!(endpoint.zone, None);
        let conditions = endpoint.conditions.clone().unwrap();
        assert_eq!(
            (conditions.ready, conditions.serving, conditions.terminating),
            (Some(true), Some(true), Some(false))
        );
        let target = endpoint.target_ref.clone().unwrap();
        assert_eq!(
            (target.kind.as_deref(), target.name.as_deref()),
            (Some("Pod"), Some("pod1"))
        );
    }

    #[test]
    fn many_pods_fill_slices_of_a_hundred() {
        let service = service();
        let plan = plan_for(&service, &pods(250), Vec::new());
        assert_eq!(sizes(&plan.create), vec![50, 100, 100]);
    }

    #[test]
    fn an_unchanged_set_writes_nothing() {
        let service = service();
        let all = pods(250);
        let existing = stored(Vec::new(), plan_for(&service, &all, Vec::new()));
        assert!(plan_for(&service, &all, existing).is_empty());
    }

    #[test]
    fn a_changed_endpoint_updates_its_slice_in_place() {
        let service = service();
        let mut all = pods(150);
        let existing = stored(Vec::new(), plan_for(&service, &all, Vec::new()));
        all[3] = pod(3, false);
        let plan = plan_for(&service, &all, existing.clone());
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0)
        );
        let updated = &plan.update[0];
        let before = existing
            .iter()
            .find(|s| s.metadata.name == updated.metadata.name)
            .unwrap();
        assert_eq!(updated.endpoints.len(), before.endpoints.len());
        let changed: Vec<&Endpoint> = updated
            .endpoints
            .iter()
            .filter(|e| e.conditions.as_ref().unwrap().ready == Some(false))
            .collect();
        assert_eq!(changed.len(), 1);
    }

    #[test]
    fn removed_pods_shrink_slices_and_new_ones_fill_the_changed_first() {
        let service = service();
        let all = pods(150);
        let existing = stored(Vec::new(), plan_for(&service, &all, Vec::new()));
        let full = existing.iter().find(|s| s.endpoints.len() == 100).unwrap();
        let removed = full.endpoints[0].target_ref.clone().unwrap().name.unwrap();
        let mut next: Vec<Pod> = all
            .into_iter()
            .filter(|p| p.metadata.name.as_deref() != Some(&removed))
            .collect();
        next.push(pod(400, true));
        let plan = plan_for(&service, &next, existing);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0)
        );
        assert_eq!(plan.update[0].endpoints.len(), 100);
    }

    #[test]
    fn leftovers_go_into_the_unchanged_slice_they_fill_closest() {
        let service = service();
        let existing = stored(Vec::new(), plan_for(&service, &pods(160), Vec::new()));
        assert_eq!(sizes(&existing), vec![60, 100]);
        let plan = plan_for(&service, &pods(190), existing);
        assert_eq!((plan.create.len(), plan.update.len()), (0, 1));
        assert_eq!(plan.update[0].endpoints.len(), 90);
    }

    #[test]
    fn a_slice_left_empty_becomes_the_new_slice() {
        let mut service = service();
        let existing = stored(Vec::new(), plan_for(&service, &pods(3), Vec::new()));
        let old_name = existing[0].metadata.name.clone();
        service.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
            Some(IntOrString::Int(9090));
        let plan = plan_for(&service, &pods(3), existing);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0)
        );
        assert_eq!(plan.update[0].metadata.name, old_name);
        assert_eq!(plan.update[0].ports.as_ref().unwrap()[0].port, Some(9090));
    }

    #[test]
    fn slices_of_another_service_with_the_name_are_replaced() {
        let service = service();
        let mut existing = stored(Vec::new(), plan_for(&service, &pods(2), Vec::new()));
        existing[0].metadata.owner_references.as_mut().unwrap()[0].uid = "old-uid".to_owned();
        let plan = plan_for(&service, &pods(2), existing);
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (1, 0, 1)
        );
    }

    #[test]
    fn the_services_label_change_updates_the_slices() {
        let mut service = service();
        let existing = stored(Vec::new(), plan_for(&service, &pods(2), Vec::new()));
        service.metadata.labels = Some([("team".to_owned(), "b".to_owned())].into());
        let plan = plan_for(&service, &pods(2), existing);
        assert_eq!(plan.update.len(), 1);
        assert_eq!(
            plan.update[0].metadata.labels.as_ref().unwrap()["team"],
            "b"
        );
    }

    #[test]
    fn pods_whose_named_port_does_not_resolve_get_their_own_slice() {
        let mut service = service();
        service.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].target_port =
            Some(IntOrString::String("web".to_owned()));
        let mut named = pod(1, true);
        named.spec.as_mut().unwrap().containers = vec![k8s_openapi::api::core::v1::Container {
            ports: Some(vec![k8s_openapi::api::core::v1::ContainerPort {
                name: Some("web".to_owned()),
                container_port: 8081,
                ..Default::default()
            }]),
            ..Default::default()
        }];
        let plan = plan_for(&service, &[named, pod(2, true)], Vec::new());
        let mut ports: Vec<Vec<Option<i32>>> = plan
            .create
            .iter()
            .map(|s| s.ports.iter().flatten().map(|p| p.port).collect())
            .collect();
        ports.sort();
        assert_eq!(ports, vec![vec![], vec![Some(8081)]]);
    }

    #[test]
    fn terminating_and_not_ready_pods_as_kube_marks_them() {
        let mut service = service();
        let mut terminating = pod(1, true);
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
        );
        let conditions = |plan: &Plan| -> Vec<(Option<bool>, Option<bool>, Option<bool>)> {
            plan.create[0]
                .endpoints
                .iter()
                .map(|e| e.conditions.clone().unwrap())
                .map(|c| (c.ready, c.serving, c.terminating))
                .collect()
        };
        let both = [terminating, pod(2, false)];
        let plan = plan_for(&service, &both, Vec::new());
        assert_eq!(
            conditions(&plan),
            vec![
                (Some(false), Some(true), Some(true)),
                (Some(false), Some(false), Some(false))
            ]
        );
        service.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let plan = plan_for(&service, &both, Vec::new());
        assert_eq!(
            conditions(&plan),
            vec![
                (Some(true), Some(true), Some(true)),
                (Some(true), Some(false), Some(false))
            ]
        );
    }

    #[test]
    fn writes_carry_the_trigger_time() {
        let service = service();
        let pods: Vec<Pod> = pods(1);
        let refs: Vec<&Pod> = pods.iter().collect();
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let plan = plan(
            &service,
            Vec::new(),
            desired_groups(&service, &refs),
            100,
            Some(at),
        );
        let annotations = plan.create[0].metadata.annotations.clone().unwrap();
        assert_eq!(
            annotations[LAST_CHANGE_TRIGGER_TIME],
            "2023-11-14T22:13:20Z"
        );
    }
}
