//! Keeping the table in step with the Services: a full sync at start (base chains and maps
//! rewritten, every Service port's objects written, stale ones a previous run left removed),
//! then partial syncs that diff each changed Service port against what was last applied and
//! send only the difference, as one transaction. The applied state lives in memory: a change
//! never lists the ruleset.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ipnet::Ipv4Net;

use crate::conntrack;
use crate::model::{ServicePortName, ServicePortState};
use crate::nft::{self, NftError};
use crate::rules::{self, ServiceRules, MAPS};

/// The statements of one transaction, in the order nft must see them: objects declared before
/// rules refer to them, map entries removed before the chains they point to.
#[derive(Debug, Default)]
struct Transaction {
    declare: Vec<String>,
    fill: Vec<String>,
    remove_elements: Vec<String>,
    add_elements: Vec<String>,
    flush_stale: Vec<String>,
    delete_stale: Vec<String>,
    delete_sets: Vec<String>,
}

impl Transaction {
    fn is_empty(&self) -> bool {
        self.script().is_empty()
    }

    fn script(&self) -> String {
        [
            &self.declare,
            &self.fill,
            &self.remove_elements,
            &self.add_elements,
            &self.flush_stale,
            &self.delete_stale,
            &self.delete_sets,
        ]
        .into_iter()
        .flatten()
        .map(|statement| format!("{statement}\n"))
        .collect()
    }

    /// The statements turning `old` into `new` in table `t`.
    fn diff(&mut self, t: &str, old: &ServiceRules, new: &ServiceRules) {
        for (set, declaration) in &new.sets {
            if !old.sets.contains_key(set) {
                self.declare
                    .push(format!("add set ip {t} {set} {{ {declaration} }}"));
            }
        }
        for (chain, chain_rules) in &new.chains {
            match old.chains.get(chain) {
                Some(applied) if applied == chain_rules => continue,
                Some(_) => self.fill.push(format!("flush chain ip {t} {chain}")),
                None => self.declare.push(format!("add chain ip {t} {chain}")),
            }
            self.fill.extend(
                chain_rules
                    .iter()
                    .map(|r| format!("add rule ip {t} {chain} {r}")),
            );
        }
        for ((map, key), verdict) in &old.elements {
            if new.elements.get(&(*map, key.clone())) != Some(verdict) {
                self.remove_elements
                    .push(format!("delete element ip {t} {map} {{ {key} }}"));
            }
        }
        for ((map, key), verdict) in &new.elements {
            if old.elements.get(&(*map, key.clone())) != Some(verdict) {
                self.add_elements
                    .push(format!("add element ip {t} {map} {{ {key} : {verdict} }}"));
            }
        }
        let stale_chains = old.chains.keys().filter(|c| !new.chains.contains_key(*c));
        self.remove_chains(t, stale_chains);
        for set in old.sets.keys().filter(|s| !new.sets.contains_key(*s)) {
            self.delete_sets.push(format!("delete set ip {t} {set}"));
        }
    }

    fn remove_chains<'a>(&mut self, t: &str, chains: impl Iterator<Item = &'a String>) {
        for chain in chains {
            self.flush_stale.push(format!("flush chain ip {t} {chain}"));
            self.delete_stale
                .push(format!("delete chain ip {t} {chain}"));
        }
    }
}

/// The Service ports applied to the table, and how to apply more.
pub struct Syncer {
    table: String,
    pod_cidr: Ipv4Net,
    service_cidr: Ipv4Net,
    applied: HashMap<ServicePortName, (ServicePortState, ServiceRules)>,
}

impl Syncer {
    pub fn new(table: &str, pod_cidr: Ipv4Net, service_cidr: Ipv4Net) -> Syncer {
        Syncer {
            table: table.to_string(),
            pod_cidr,
            service_cidr,
            applied: HashMap::new(),
        }
    }

    /// Makes the table hold exactly `desired`, whatever it held before.
    pub fn full_sync(
        &mut self,
        desired: BTreeMap<ServicePortName, ServicePortState>,
    ) -> Result<(), NftError> {
        nft::apply(
            &self.table,
            &rules::base_script(&self.table, self.service_cidr),
        )?;
        let (chains, sets) = nft::service_objects(&self.table)?;
        let rendered: HashMap<_, _> = desired
            .into_iter()
            .map(|(name, state)| {
                let rules = rules::render(&name, &state, self.pod_cidr);
                (name, (state, rules))
            })
            .collect();
        let script = full_script(
            &self.table,
            rendered.values().map(|(_, r)| r),
            &chains,
            &sets,
        );
        nft::apply(&self.table, &script)?;
        let previous = std::mem::replace(&mut self.applied, rendered);
        let filters: Vec<_> = previous
            .iter()
            .flat_map(|(name, (old, _))| {
                let new = self.applied.get(name).map(|(state, _)| state);
                conntrack::stale_flow_filters(name, old, new)
            })
            .collect();
        conntrack::delete_flows(&filters);
        Ok(())
    }

    /// Applies the changed Service ports (None: the port is gone) as one transaction.
    pub fn partial_sync(
        &mut self,
        changes: Vec<(ServicePortName, Option<ServicePortState>)>,
    ) -> Result<(), NftError> {
        let empty = ServiceRules::default();
        let mut transaction = Transaction::default();
        let mut next = Vec::new();
        for (name, state) in changes {
            let new = state.map(|state| {
                let rules = rules::render(&name, &state, self.pod_cidr);
                (state, rules)
            });
            let old = self.applied.get(&name);
            let old_rules = old.map_or(&empty, |(_, rules)| rules);
            let new_rules = new.as_ref().map_or(&empty, |(_, rules)| rules);
            transaction.diff(&self.table, old_rules, new_rules);
            next.push((name, new));
        }
        if !transaction.is_empty() {
            nft::apply(&self.table, &transaction.script())?;
        }
        let mut filters = Vec::new();
        for (name, new) in next {
            if let Some((old, _)) = self.applied.get(&name) {
                let kept = new.as_ref().map(|(state, _)| state);
                filters.extend(conntrack::stale_flow_filters(&name, old, kept));
            }
            match new {
                Some(applied) => self.applied.insert(name, applied),
                None => self.applied.remove(&name),
            };
        }
        conntrack::delete_flows(&filters);
        Ok(())
    }
}

/// Every object of `desired` written over whatever the table held, the maps refilled, and the
/// per-Service chains and sets not desired removed.
fn full_script<'a>(
    t: &str,
    desired: impl Iterator<Item = &'a ServiceRules>,
    existing_chains: &BTreeSet<String>,
    existing_sets: &BTreeSet<String>,
) -> String {
    let mut transaction = Transaction::default();
    for map in MAPS {
        transaction.declare.push(format!("flush map ip {t} {map}"));
    }
    let (mut kept_chains, mut kept_sets) = (BTreeSet::new(), BTreeSet::new());
    for service in desired {
        // Adding an existing set keeps its entries: clients keep their affinity.
        for (set, declaration) in &service.sets {
            transaction
                .declare
                .push(format!("add set ip {t} {set} {{ {declaration} }}"));
        }
        for (chain, chain_rules) in &service.chains {
            transaction
                .declare
                .push(format!("add chain ip {t} {chain}"));
            transaction.fill.push(format!("flush chain ip {t} {chain}"));
            transaction.fill.extend(
                chain_rules
                    .iter()
                    .map(|r| format!("add rule ip {t} {chain} {r}")),
            );
        }
        for ((map, key), verdict) in &service.elements {
            transaction
                .add_elements
                .push(format!("add element ip {t} {map} {{ {key} : {verdict} }}"));
        }
        kept_chains.extend(service.chains.keys().cloned());
        kept_sets.extend(service.sets.keys().cloned());
    }
    transaction.remove_chains(t, existing_chains.difference(&kept_chains));
    for set in existing_sets.difference(&kept_sets) {
        transaction
            .delete_sets
            .push(format!("delete set ip {t} {set}"));
    }
    transaction.script()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(chains: &[(&str, &[&str])], elements: &[(&str, &str)]) -> ServiceRules {
        ServiceRules {
            chains: chains
                .iter()
                .map(|(c, r)| (c.to_string(), r.iter().map(|s| s.to_string()).collect()))
                .collect(),
            sets: BTreeMap::new(),
            elements: elements
                .iter()
                .map(|(k, v)| ((rules::SERVICE_IPS, k.to_string()), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn an_unchanged_service_costs_nothing() {
        let a = rules(
            &[
                ("svc-a", &["numgen random mod 1 vmap { 0 : goto ep-a }"]),
                ("ep-a", &["dnat"]),
            ],
            &[("k", "goto svc-a")],
        );
        let mut tx = Transaction::default();
        tx.diff("t", &a, &a.clone());
        assert!(tx.is_empty(), "{}", tx.script());
    }

    #[test]
    fn only_the_changed_chain_is_rewritten_and_stale_ones_go_last() {
        let old = rules(
            &[("svc-a", &["goto ep-1"]), ("ep-1", &["dnat 1"])],
            &[("k", "goto svc-a")],
        );
        let new = rules(
            &[("svc-a", &["goto ep-2"]), ("ep-2", &["dnat 2"])],
            &[("k", "goto svc-a")],
        );
        let mut tx = Transaction::default();
        tx.diff("t", &old, &new);
        assert_eq!(
            tx.script(),
            "add chain ip t ep-2\n\
             add rule ip t ep-2 dnat 2\n\
             flush chain ip t svc-a\n\
             add rule ip t svc-a goto ep-2\n\
             flush chain ip t ep-1\n\
             delete chain ip t ep-1\n"
        );
    }

    #[test]
    fn a_deleted_service_leaves_no_chain_or_element() {
        let old = rules(
            &[("svc-a", &["goto ep-1"]), ("ep-1", &["dnat 1"])],
            &[("k", "goto svc-a")],
        );
        let mut tx = Transaction::default();
        tx.diff("t", &old, &ServiceRules::default());
        let script = tx.script();
        let element = script
            .find("delete element ip t proxy-service-ips { k }")
            .unwrap();
        let chain = script.find("delete chain ip t svc-a").unwrap();
        assert!(element < chain, "{script}");
        assert_eq!(script.matches("delete chain").count(), 2, "{script}");
    }

    #[test]
    fn a_changed_verdict_is_deleted_then_added() {
        let old = rules(&[], &[("k", "goto proxy-reject")]);
        let new = rules(&[("svc-a", &["x"])], &[("k", "goto svc-a")]);
        let mut tx = Transaction::default();
        tx.diff("t", &old, &new);
        let script = tx.script();
        let delete = script.find("delete element").unwrap();
        let add = script
            .find("add element ip t proxy-service-ips { k : goto svc-a }")
            .unwrap();
        assert!(
            script.find("add chain ip t svc-a").unwrap() < delete && delete < add,
            "{script}"
        );
    }

    #[test]
    fn a_full_sync_refills_maps_and_removes_what_is_not_desired() {
        let desired = rules(&[("svc-a", &["x"])], &[("k", "goto svc-a")]);
        let existing: BTreeSet<String> = ["svc-a".to_string(), "svc-gone".to_string()].into();
        let sets: BTreeSet<String> = ["aff-gone".to_string()].into();
        let script = full_script("t", [&desired].into_iter(), &existing, &sets);
        assert!(
            script.starts_with("flush map ip t proxy-service-ips\n"),
            "{script}"
        );
        assert!(
            script.contains("flush chain ip t svc-a\nadd rule ip t svc-a x\n"),
            "{script}"
        );
        assert!(
            script.contains("add element ip t proxy-service-ips { k : goto svc-a }"),
            "{script}"
        );
        assert!(script.contains("delete chain ip t svc-gone\n"), "{script}");
        assert!(!script.contains("delete chain ip t svc-a"), "{script}");
        assert!(script.ends_with("delete set ip t aff-gone\n"), "{script}");
    }
}

/// Against the kernel: each test has a table of its own, set up as the agent's firewall sets
/// it up, removed even when the test fails.
#[cfg(test)]
mod table_tests {
    use std::net::Ipv4Addr;

    use peapod_net::scratch::ScratchTable;

    use super::*;
    use crate::model::{Endpoint, Protocol};

    /// The scratch table of bridge `bridge`, with a syncer over it.
    struct TestTable(ScratchTable);

    impl TestTable {
        fn new(bridge: &str) -> TestTable {
            TestTable(ScratchTable::new(bridge, "10.251.0.0/24"))
        }

        fn syncer(&self) -> Syncer {
            let service_cidr = "10.252.0.0/16".parse().unwrap();
            Syncer::new(
                self.0.firewall().table(),
                "10.251.0.0/24".parse().unwrap(),
                service_cidr,
            )
        }

        fn ruleset(&self) -> String {
            self.0.ruleset()
        }
    }

    fn port(name: &str, protocol: Protocol) -> ServicePortName {
        ServicePortName {
            namespace: "ns".into(),
            name: name.into(),
            port: "p".into(),
            protocol,
        }
    }

    fn state(service: u32, endpoints: &[u8]) -> ServicePortState {
        ServicePortState {
            cluster_ip: Some(Ipv4Addr::from(
                u32::from(Ipv4Addr::new(10, 252, 0, 0)) + service,
            )),
            port: 80,
            endpoints: endpoints
                .iter()
                .map(|last| Endpoint {
                    ip: Ipv4Addr::new(10, 251, 0, *last),
                    port: 8080,
                })
                .collect(),
            ..ServicePortState::default()
        }
    }

    fn service_objects(ruleset: &str) -> Vec<&str> {
        ruleset
            .lines()
            .map(str::trim)
            .filter(|l| {
                ["chain svc-", "chain ext-", "chain ep-", "set aff-"]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect()
    }

    #[test]
    fn services_come_and_go_leaving_nothing_behind() {
        let table = TestTable::new("pxtest-life");
        let mut syncer = table.syncer();
        syncer.full_sync(BTreeMap::new()).unwrap();
        let mut web = state(1, &[5, 6]);
        web.node_port = Some(30080);
        web.external_ips = vec![Ipv4Addr::new(192, 0, 2, 1)];
        web.affinity_timeout = Some(60);
        let dns = state(2, &[]);
        syncer
            .partial_sync(vec![
                (port("web", Protocol::Tcp), Some(web.clone())),
                (port("dns", Protocol::Udp), Some(dns)),
            ])
            .unwrap();
        let rules = table.ruleset();
        assert_eq!(service_objects(&rules).len(), 6, "{rules}");
        assert!(
            rules.contains("10.252.0.1 . tcp . 80 : goto svc-"),
            "{rules}"
        );
        assert!(
            rules.contains("10.252.0.2 . udp . 80 : goto proxy-reject"),
            "{rules}"
        );
        assert!(rules.contains("tcp . 30080 : goto ext-"), "{rules}");
        assert!(rules.contains("timeout 1m"), "{rules}");
        assert!(rules.contains("dnat to 10.251.0.6:8080"), "{rules}");
        assert!(
            rules.contains("jump hostports"),
            "the firewall's chains stay: {rules}"
        );

        web.endpoints.remove(0);
        web.affinity_timeout = None;
        syncer
            .partial_sync(vec![(port("web", Protocol::Tcp), Some(web))])
            .unwrap();
        let rules = table.ruleset();
        assert!(!rules.contains("10.251.0.5"), "{rules}");
        assert!(!rules.contains("set aff-"), "{rules}");

        syncer
            .partial_sync(vec![
                (port("web", Protocol::Tcp), None),
                (port("dns", Protocol::Udp), None),
            ])
            .unwrap();
        let rules = table.ruleset();
        assert!(service_objects(&rules).is_empty(), "{rules}");
        assert!(!rules.contains(" : goto"), "no map entry left: {rules}");
    }

    #[test]
    fn a_full_sync_at_start_removes_what_a_previous_run_left() {
        let table = TestTable::new("pxtest-full");
        let mut previous = table.syncer();
        let desired: BTreeMap<_, _> = (1..=3)
            .map(|i| (port(&format!("s{i}"), Protocol::Tcp), state(i, &[5])))
            .collect();
        previous.full_sync(desired.clone()).unwrap();
        let mut next = table.syncer();
        let kept: BTreeMap<_, _> = desired.into_iter().take(1).collect();
        next.full_sync(kept).unwrap();
        let rules = table.ruleset();
        assert_eq!(service_objects(&rules).len(), 2, "{rules}");
        assert!(rules.contains("ns/s1/tcp/p"), "{rules}");
        assert!(!rules.contains("ns/s2/tcp/p"), "{rules}");
        next.full_sync(BTreeMap::new()).unwrap();
        assert!(service_objects(&table.ruleset()).is_empty());
    }

    #[test]
    fn a_change_among_a_thousand_services_leaves_the_others_alone() {
        let table = TestTable::new("pxtest-scale");
        let mut syncer = table.syncer();
        let desired: BTreeMap<_, _> = (1..=1000)
            .map(|i| (port(&format!("s{i}"), Protocol::Tcp), state(i, &[5, 6])))
            .collect();
        syncer.full_sync(desired).unwrap();
        syncer
            .partial_sync(vec![(port("s500", Protocol::Tcp), Some(state(500, &[7])))])
            .unwrap();
        // How long it takes is bench/'s to measure (`peapod-bench --services`).
        let rules = table.ruleset();
        assert!(rules.contains("dnat to 10.251.0.7:8080"));
        // A service chain and two endpoint chains each; s500's two endpoints became one.
        assert_eq!(service_objects(&rules).len(), 3 * 1000 - 1);
    }
}
