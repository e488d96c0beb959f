//! Pod addresses handed out from the pod range, exactly once each, and remembered across agent
//! restarts: like the CNI host-local plugin, every allocation is a file named after the address
//! holding the owner's pod uid, created with O_EXCL, so the file system is the source of truth.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::Ipv4Net;

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("no free address left in the pod range {cidr}: {used} of {usable} are held by pods")]
    Exhausted {
        cidr: Ipv4Net,
        used: usize,
        usable: u32,
    },
    #[error("address store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The allocations of one pod range.
pub struct Ipam {
    dir: PathBuf,
    cidr: Ipv4Net,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    by_ip: BTreeMap<Ipv4Addr, String>,
    by_owner: HashMap<String, Ipv4Addr>,
    /// The last address handed out: the next search starts after it, so a released address is
    /// not reused at once (peers' ARP and conntrack entries for it may still be live).
    last: Option<Ipv4Addr>,
}

impl Ipam {
    /// Loads the allocations recorded in `dir` (created when missing).
    pub fn open(dir: &Path, cidr: Ipv4Net) -> Result<Ipam, IpamError> {
        let io = |source| IpamError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let mut state = State::default();
        for entry in std::fs::read_dir(dir).map_err(io)?.flatten() {
            let Ok(ip) = entry.file_name().to_string_lossy().parse::<Ipv4Addr>() else {
                continue;
            };
            let owner = std::fs::read_to_string(entry.path()).map_err(io)?;
            let owner = owner.trim().to_string();
            state.by_owner.insert(owner.clone(), ip);
            state.by_ip.insert(ip, owner);
        }
        state.last = state.by_ip.keys().next_back().copied();
        Ok(Ipam {
            dir: dir.to_path_buf(),
            cidr,
            state: Mutex::new(state),
        })
    }

    /// The address of `owner`, allocating one if it has none.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        let mut state = self.state.lock().expect("ipam lock");
        if let Some(ip) = state.by_owner.get(owner) {
            return Ok(*ip);
        }
        let (first, last) = self.usable_range();
        let start = state
            .last
            .filter(|ip| (first..=last).contains(ip))
            .map_or(first, |ip| next_in(ip, first, last));
        let mut candidate = start;
        loop {
            if !state.by_ip.contains_key(&candidate) && self.claim(candidate, owner)? {
                state.by_ip.insert(candidate, owner.to_string());
                state.by_owner.insert(owner.to_string(), candidate);
                state.last = Some(candidate);
                return Ok(candidate);
            }
            candidate = next_in(candidate, first, last);
            if candidate == start {
                return Err(IpamError::Exhausted {
                    cidr: self.cidr,
                    used: state.by_ip.len(),
                    usable: u32::from(last) - u32::from(first) + 1,
                });
            }
        }
    }

    /// Frees the address of `owner`, if it holds one.
    pub fn release(&self, owner: &str) -> Result<(), IpamError> {
        let mut state = self.state.lock().expect("ipam lock");
        let Some(ip) = state.by_owner.remove(owner) else {
            return Ok(());
        };
        state.by_ip.remove(&ip);
        let path = self.dir.join(ip.to_string());
        match std::fs::remove_file(&path) {
            Err(source) if source.kind() != std::io::ErrorKind::NotFound => {
                Err(IpamError::Io { path, source })
            }
            _ => Ok(()),
        }
    }

    pub fn address_of(&self, owner: &str) -> Option<Ipv4Addr> {
        self.state
            .lock()
            .expect("ipam lock")
            .by_owner
            .get(owner)
            .copied()
    }

    /// Every owner holding an address.
    pub fn owners(&self) -> Vec<String> {
        let state = self.state.lock().expect("ipam lock");
        state.by_owner.keys().cloned().collect()
    }

    /// The range minus its network address, the bridge's address (the first) and broadcast.
    fn usable_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        let network = u32::from(self.cidr.network());
        let broadcast = u32::from(self.cidr.broadcast());
        (Ipv4Addr::from(network + 2), Ipv4Addr::from(broadcast - 1))
    }

    /// Records the allocation on disk; false when another process already holds the file.
    fn claim(&self, ip: Ipv4Addr, owner: &str) -> Result<bool, IpamError> {
        let path = self.dir.join(ip.to_string());
        let mut file = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
            Err(source) => return Err(IpamError::Io { path, source }),
        };
        file.write_all(owner.as_bytes())
            .map_err(|source| IpamError::Io { path, source })?;
        Ok(true)
    }
}

fn next_in(ip: Ipv4Addr, first: Ipv4Addr, last: Ipv4Addr) -> Ipv4Addr {
    if ip >= last {
        first
    } else {
        Ipv4Addr::from(u32::from(ip) + 1)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Arc;

    use super::*;

    fn cidr(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn hands_out_each_address_once_and_skips_network_gateway_broadcast() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::open(dir.path(), cidr("10.9.0.0/29")).unwrap();
        let ips: Vec<Ipv4Addr> = (0..5)
            .map(|i| ipam.allocate(&format!("pod{i}")).unwrap())
            .collect();
        let expected: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 9, 0, i)).collect();
        assert_eq!(ips, expected);
        let err = ipam.allocate("pod5").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no free address left in the pod range 10.9.0.0/29: 5 of 5 are held by pods"
        );
    }

    #[test]
    fn an_owner_keeps_its_address() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::open(dir.path(), cidr("10.9.0.0/24")).unwrap();
        let ip = ipam.allocate("a").unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), ip);
        assert_eq!(ipam.address_of("a"), Some(ip));
    }

    #[test]
    fn survives_a_restart_and_does_not_reuse_a_released_address_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::open(dir.path(), cidr("10.9.0.0/24")).unwrap();
        let a = ipam.allocate("a").unwrap();
        let b = ipam.allocate("b").unwrap();
        ipam.release("a").unwrap();
        drop(ipam);
        let ipam = Ipam::open(dir.path(), cidr("10.9.0.0/24")).unwrap();
        assert_eq!(ipam.address_of("b"), Some(b));
        assert_eq!(ipam.address_of("a"), None);
        let c = ipam.allocate("c").unwrap();
        assert_ne!(c, a);
        assert_ne!(c, b);
        assert_eq!(ipam.owners().len(), 2);
    }

    #[test]
    fn release_frees_the_address_for_reuse_when_the_range_wraps() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::open(dir.path(), cidr("10.9.0.0/30")).unwrap();
        let a = ipam.allocate("a").unwrap();
        assert!(ipam.allocate("b").is_err());
        ipam.release("a").unwrap();
        assert_eq!(ipam.allocate("b").unwrap(), a);
        assert!(!dir.path().join("10.9.0.3").exists());
    }

    #[test]
    fn two_stores_on_one_directory_never_share_an_address() {
        let dir = tempfile::tempdir().unwrap();
        let first = Ipam::open(dir.path(), cidr("10.9.0.0/24")).unwrap();
        let second = Ipam::open(dir.path(), cidr("10.9.0.0/24")).unwrap();
        let a = first.allocate("a").unwrap();
        let b = second.allocate("b").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn concurrent_allocations_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Arc::new(Ipam::open(dir.path(), cidr("10.9.0.0/24")).unwrap());
        let handles: Vec<_> = (0..100)
            .map(|i| {
                let ipam = ipam.clone();
                std::thread::spawn(move || ipam.allocate(&format!("pod{i}")).unwrap())
            })
            .collect();
        let ips: HashSet<Ipv4Addr> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(ips.len(), 100);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 100);
    }
}
