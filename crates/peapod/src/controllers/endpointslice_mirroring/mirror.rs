//! The EndpointSlices that mirror a user-written Endpoints, as kube's mirroring reconciler
//! builds them: the repacked subsets' addresses (ready or not, at most 1000 per subset, IPs
//! only) grouped by ports and address type, one slice per group, owned by the Endpoints and
//! carrying its labels and annotations (but the trigger time and last-applied ones).

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{EndpointAddress, Endpoints};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::controllers::endpoints::subsets::repack;
use crate::controllers::endpointslice::desired::{
    endpoint_key, ports_key, slice_prefix, LABEL_MANAGED_BY, LABEL_SERVICE_NAME,
};
use crate::controllers::endpointslice::placement::Plan;
use crate::controllers::endpointslice::trigger_time::LAST_CHANGE_TRIGGER_TIME;
use crate::controllers::ownership::claims::controller_ref;

/// The mirroring controller's name in the managed-by label.
pub const CONTROLLER_NAME: &str = "endpointslicemirroring-controller.k8s.io";
/// Endpoints labelled so are not mirrored.
pub const LABEL_SKIP_MIRROR: &str = "endpointslice.kubernetes.io/skip-mirror";
/// kube's `maxEndpointsPerSubset` (and per mirrored slice).
pub const MAX_PER_SUBSET: usize = 1000;
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// One mirrored slice's wanted content.
#[derive(Debug, Default)]
pub struct Group {
    pub ports: Vec<EndpointPort>,
    pub address_type: String,
    pub endpoints: BTreeMap<String, Endpoint>,
}

/// What mirroring `endpoints` wants, and how many addresses it skipped: invalid, and all.
#[derive(Debug, Default)]
pub struct Desired {
    pub groups: BTreeMap<String, Group>,
    pub invalid: usize,
    pub skipped: usize,
}

pub fn desired(endpoints: &Endpoints) -> Desired {
    let mut desired = Desired::default();
    for subset in repack(endpoints.subsets.clone().unwrap_or_default()) {
        let ports: Vec<EndpointPort> = subset
            .ports
            .iter()
            .flatten()
            .map(|p| EndpointPort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".to_owned())),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let ready = subset.addresses.iter().flatten().map(|a| (a, true));
        let not_ready = subset
            .not_ready_addresses
            .iter()
            .flatten()
            .map(|a| (a, false));
        let mut added = 0;
        for (address, ready) in ready.chain(not_ready) {
            if added >= MAX_PER_SUBSET {
                desired.skipped += 1;
                continue;
            }
            let Ok(ip) = address.ip.parse::<IpAddr>() else {
                desired.invalid += 1;
                desired.skipped += 1;
                continue;
            };
            let address_type = if ip.is_ipv4() { "IPv4" } else { "IPv6" };
            let key = format!("{}|{address_type}", ports_key(&ports));
            let group = desired.groups.entry(key).or_insert_with(|| Group {
                ports: ports.clone(),
                address_type: address_type.to_owned(),
                endpoints: BTreeMap::new(),
            });
            let endpoint = address_to_endpoint(address, ready);
            group.endpoints.insert(endpoint_key(&endpoint), endpoint);
            added += 1;
        }
    }
    desired
}

/// `addressToEndpoint`.
fn address_to_endpoint(address: &EndpointAddress, ready: bool) -> Endpoint {
    Endpoint {
        addresses: vec![address.ip.clone()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        target_ref: address.target_ref.clone(),
        node_name: address.node_name.clone(),
        hostname: address.hostname.clone().filter(|h| !h.is_empty()),
        ..Endpoint::default()
    }
}

/// The key of an existing mirrored slice's group.
fn slice_key(slice: &EndpointSlice) -> String {
    let ports = ports_key(slice.ports.as_deref().unwrap_or_default());
    format!("{ports}|{}", slice.address_type)
}

/// The mirrored slice's labels: the Endpoints' own, with its name and the controller's.
fn mirrored_labels(endpoints: &Endpoints) -> BTreeMap<String, String> {
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        LABEL_SERVICE_NAME.to_owned(),
        endpoints.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(LABEL_MANAGED_BY.to_owned(), CONTROLLER_NAME.to_owned());
    labels
}

fn mirrored_annotations(endpoints: &Endpoints) -> BTreeMap<String, String> {
    let mut annotations = endpoints.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_CHANGE_TRIGGER_TIME);
    annotations.remove(LAST_APPLIED);
    annotations
}

/// The mirroring reconciler's plan: per group, the first existing slice rewritten when its
/// endpoints, labels or annotations differ (the others deleted), else a new slice; slices of
/// groups no longer wanted deleted; creates paired with deletes become updates.
pub fn plan(endpoints: &Endpoints, existing: Vec<EndpointSlice>, desired: Desired) -> Plan {
    let mut by_key: BTreeMap<String, Vec<EndpointSlice>> = BTreeMap::new();
    for slice in existing {
        by_key.entry(slice_key(&slice)).or_default().push(slice);
    }
    let mut plan = Plan::default();
    for (key, group) in desired.groups {
        let mut slices = by_key.remove(&key).unwrap_or_default().into_iter();
        let first = slices.next();
        plan.delete.extend(slices);
        if first
            .as_ref()
            .is_some_and(|f| mirrors(f, endpoints, &group))
        {
            continue;
        }
        let mut slice = new_slice(endpoints, &group, first.as_ref());
        slice.endpoints = group.endpoints.into_values().take(MAX_PER_SUBSET).collect();
        match slice.metadata.name.is_some() {
            true => plan.update.push(slice),
            false => plan.create.push(slice),
        }
    }
    plan.delete.extend(by_key.into_values().flatten());
    reuse_deleted(endpoints, plan)
}

/// Whether `slice` already mirrors `group` with the Endpoints' labels and annotations.
fn mirrors(slice: &EndpointSlice, endpoints: &Endpoints, group: &Group) -> bool {
    let same_endpoints = slice.endpoints.len() == group.endpoints.len()
        && slice
            .endpoints
            .iter()
            .all(|e| group.endpoints.get(&endpoint_key(e)) == Some(e));
    same_endpoints
        && slice.metadata.labels.clone().unwrap_or_default() == mirrored_labels(endpoints)
        && slice.metadata.annotations.clone().unwrap_or_default() == mirrored_annotations(endpoints)
}

/// `newEndpointSlice` of the mirroring controller, named as `existing` when it rewrites it.
fn new_slice(
    endpoints: &Endpoints,
    group: &Group,
    existing: Option<&EndpointSlice>,
) -> EndpointSlice {
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    let existing_meta = existing.map(|e| &e.metadata);
    EndpointSlice {
        metadata: ObjectMeta {
            name: existing_meta.and_then(|m| m.name.clone()),
            resource_version: existing_meta.and_then(|m| m.resource_version.clone()),
            generate_name: existing.is_none().then(|| slice_prefix(&name)),
            namespace: endpoints.metadata.namespace.clone(),
            labels: Some(mirrored_labels(endpoints)),
            annotations: Some(mirrored_annotations(endpoints)),
            owner_references: Some(vec![controller_ref(endpoints)]),
            ..ObjectMeta::default()
        },
        address_type: group.address_type.clone(),
        ports: Some(group.ports.clone()),
        endpoints: Vec::new(),
    }
}

/// `finalize`'s pairing: a create takes over a slice of the same address type owned by the
/// Endpoints that would otherwise be deleted.
fn reuse_deleted(endpoints: &Endpoints, mut plan: Plan) -> Plan {
    let uid = endpoints.metadata.uid.clone().unwrap_or_default();
    let owned = |slice: &EndpointSlice| {
        let owners = slice.metadata.owner_references.iter().flatten();
        owners
            .into_iter()
            .any(|o| o.uid == uid && o.kind == "Endpoints")
    };
    let mut index = 0;
    while index < plan.delete.len() && !plan.create.is_empty() {
        let doomed = &plan.delete[index];
        if doomed.address_type == plan.create[0].address_type && owned(doomed) {
            let doomed = plan.delete.remove(index);
            let mut reused = plan.create.remove(0);
            reused.metadata.name = doomed.metadata.name;
            reused.metadata.generate_name = None;
            reused.metadata.resource_version = doomed.metadata.resource_version;
            plan.update.push(reused);
        } else {
            index += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{EndpointPort as CorePort, EndpointSubset};

    use super::*;

    fn endpoints(ready: &[&str], not_ready: &[&str]) -> Endpoints {
        let addresses = |ips: &[&str]| {
            Some(
                ips.iter()
                    .map(|ip| EndpointAddress {
                        ip: (*ip).to_owned(),
                        ..EndpointAddress::default()
                    })
                    .collect(),
            )
        };
        Endpoints {
            metadata: ObjectMeta {
                name: Some("ext".to_owned()),
                namespace: Some("ns".to_owned()),
                uid: Some("ep-uid".to_owned()),
                labels: Some(BTreeMap::from([("team".to_owned(), "a".to_owned())])),
                annotations: Some(BTreeMap::from([
                    ("note".to_owned(), "kept".to_owned()),
                    (LAST_APPLIED.to_owned(), "{}".to_owned()),
                    (LAST_CHANGE_TRIGGER_TIME.to_owned(), "x".to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            subsets: Some(vec![EndpointSubset {
                addresses: addresses(ready),
                not_ready_addresses: addresses(not_ready),
                ports: Some(vec![CorePort {
                    name: Some("http".to_owned()),
                    port: 80,
                    ..CorePort::default()
                }]),
            }]),
        }
    }

    /// The slices as stored after `plan`'s writes.
    fn stored(plan: Plan) -> Vec<EndpointSlice> {
        let mut slices = plan.update;
        for (index, mut slice) in plan.create.into_iter().enumerate() {
            slice.metadata.name = Some(format!("ext-{index}"));
            slices.push(slice);
        }
        slices
    }

    #[test]
    fn endpoints_mirror_into_one_slice_per_ports_and_address_type() {
        let endpoints = endpoints(&["10.1.0.1", "fd00::1"], &["10.1.0.2"]);
        let plan = plan(&endpoints, Vec::new(), desired(&endpoints));
        assert_eq!(plan.create.len(), 2);
        let v4 = plan
            .create
            .iter()
            .find(|s| s.address_type == "IPv4")
            .unwrap();
        let ready: Vec<(String, Option<bool>)> = v4
            .endpoints
            .iter()
            .map(|e| (e.addresses[0].clone(), e.conditions.as_ref().unwrap().ready))
            .collect();
        assert_eq!(
            ready,
            vec![
                ("10.1.0.1".to_owned(), Some(true)),
                ("10.1.0.2".to_owned(), Some(false))
            ]
        );
        let port = &v4.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), Some(80), Some("TCP"))
        );
        let labels = v4.metadata.labels.clone().unwrap();
        assert_eq!(labels[LABEL_SERVICE_NAME], "ext");
        assert_eq!(labels[LABEL_MANAGED_BY], CONTROLLER_NAME);
        assert_eq!(labels["team"], "a");
        let annotations = v4.metadata.annotations.clone().unwrap();
        assert_eq!(
            annotations,
            BTreeMap::from([("note".to_owned(), "kept".to_owned())])
        );
        let owner = &v4.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Endpoints", "ep-uid")
        );
        assert_eq!(v4.metadata.generate_name.as_deref(), Some("ext-"));
    }

    #[test]
    fn mirrored_slices_are_kept_then_rewritten_in_place() {
        let first = endpoints(&["10.1.0.1"], &[]);
        let existing = stored(plan(&first, Vec::new(), desired(&first)));
        assert!(plan(&first, existing.clone(), desired(&first)).is_empty());
        let changed = endpoints(&["10.1.0.1", "10.1.0.3"], &[]);
        let rewrite = plan(&changed, existing, desired(&changed));
        assert_eq!(
            (
                rewrite.create.len(),
                rewrite.update.len(),
                rewrite.delete.len()
            ),
            (0, 1, 0)
        );
        assert_eq!(rewrite.update[0].metadata.name.as_deref(), Some("ext-0"));
        assert_eq!(rewrite.update[0].endpoints.len(), 2);
    }

    #[test]
    fn new_ports_take_over_the_old_slice() {
        let first = endpoints(&["10.1.0.1"], &[]);
        let existing = stored(plan(&first, Vec::new(), desired(&first)));
        let mut moved = first.clone();
        moved.subsets.as_mut().unwrap()[0].ports.as_mut().unwrap()[0].port = 81;
        let plan = plan(&moved, existing, desired(&moved));
        assert_eq!(
            (plan.create.len(), plan.update.len(), plan.delete.len()),
            (0, 1, 0)
        );
        assert_eq!(plan.update[0].ports.as_ref().unwrap()[0].port, Some(81));
    }

    #[test]
    fn invalid_and_excess_addresses_are_skipped() {
        let wanted = desired(&endpoints(&["not-an-ip", "10.2.0.1"], &[]));
        assert_eq!((wanted.invalid, wanted.skipped), (1, 1));
        let ips: Vec<String> = (0..1001)
            .map(|i| format!("10.2.{}.{}", i / 250, i % 250))
            .collect();
        let ips: Vec<&str> = ips.iter().map(String::as_str).collect();
        let wanted = desired(&endpoints(&ips, &[]));
        assert_eq!((wanted.invalid, wanted.skipped), (0, 1));
        let group = wanted.groups.values().next().unwrap();
        assert_eq!(group.endpoints.len(), MAX_PER_SUBSET);
    }
}
