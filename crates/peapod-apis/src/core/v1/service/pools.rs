//! The two pools Services take from, as kube's ipallocator and portallocator hand them out: a
//! requested value is checked against the range and what is in use; a dynamic one is drawn at
//! random from the range's upper band first (KEP-3070 for IPs, KEP-3668 for node ports), so
//! that the lower band stays free for values people pick by hand. The `kubernetes` Service's
//! `.1` and the DNS Service's `.10` are never drawn.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use ipnet::Ipv4Net;

/// Why a requested value cannot be had (kube's allocator errors, word for word).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("provided IP is already allocated")]
    IpAllocated,
    #[error("the provided IP ({ip}) is not in the valid range. The range of valid IPs is {range}")]
    IpNotInRange { ip: Ipv4Addr, range: Ipv4Net },
    #[error("provided port is already allocated")]
    PortAllocated,
    #[error("provided port is not in the valid range. The range of valid ports is {first}-{last}")]
    PortNotInRange { first: u16, last: u16 },
    #[error("range is full")]
    Full,
}

/// The cluster IPs of one range and those in use.
#[derive(Debug)]
pub struct IpPool {
    range: Ipv4Net,
    used: HashSet<Ipv4Addr>,
}

impl IpPool {
    pub fn new(range: Ipv4Net) -> IpPool {
        IpPool {
            range,
            used: HashSet::new(),
        }
    }

    /// Marks `ip` as in use, whether or not it is in the range (a stored Service from before
    /// the range changed keeps its address).
    pub fn mark(&mut self, ip: Ipv4Addr) {
        self.used.insert(ip);
    }

    /// Takes the requested `ip`.
    pub fn allocate(&mut self, ip: Ipv4Addr) -> Result<(), PoolError> {
        if !self.contains(ip) {
            return Err(PoolError::IpNotInRange {
                ip,
                range: self.range,
            });
        }
        if !self.used.insert(ip) {
            return Err(PoolError::IpAllocated);
        }
        Ok(())
    }

    /// Takes a free address: the upper band first, then the lower, never `.1` or `.10`.
    pub fn allocate_next(&mut self) -> Result<Ipv4Addr, PoolError> {
        let first = u32::from(self.range.network()) + 1;
        let size = self.size();
        let reserved = [first, first + 9];
        let free = |index: u32| {
            let ip = first + index;
            !reserved.contains(&ip) && !self.used.contains(&Ipv4Addr::from(ip))
        };
        let index = pick(size, band_offset(size + 2, 16, 256, 16), free).ok_or(PoolError::Full)?;
        let ip = Ipv4Addr::from(first + index);
        self.used.insert(ip);
        Ok(ip)
    }

    /// The usable addresses: all but the network's and the broadcast address.
    fn size(&self) -> u32 {
        let total = 1u64 << (32 - u32::from(self.range.prefix_len()));
        total.saturating_sub(2).min(u64::from(u32::MAX)) as u32
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let (ip, network) = (u32::from(ip), u32::from(self.range.network()));
        ip > network && ip - network <= self.size()
    }
}

/// The node ports of one range and those in use (a port number is taken for every protocol).
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
    used: HashSet<u16>,
}

impl PortPool {
    pub fn new(range: RangeInclusive<u16>) -> PortPool {
        PortPool {
            range,
            used: HashSet::new(),
        }
    }

    pub fn mark(&mut self, port: u16) {
        self.used.insert(port);
    }

    /// Takes the requested `port`.
    pub fn allocate(&mut self, port: i32) -> Result<u16, PoolError> {
        let Some(port) = u16::try_from(port).ok().filter(|p| self.range.contains(p)) else {
            return Err(PoolError::PortNotInRange {
                first: *self.range.start(),
                last: *self.range.end(),
            });
        };
        if !self.used.insert(port) {
            return Err(PoolError::PortAllocated);
        }
        Ok(port)
    }

    /// Takes a free port, the upper band first.
    pub fn allocate_next(&mut self) -> Result<u16, PoolError> {
        let first = *self.range.start();
        let size = u32::from(*self.range.end() - first) + 1;
        let free = |index: u32| !self.used.contains(&(first + index as u16));
        let index = pick(size, band_offset(size, 16, 128, 32), free).ok_or(PoolError::Full)?;
        let port = first + index as u16;
        self.used.insert(port);
        Ok(port)
    }
}

/// kube's `calculateRangeOffset`: the size of the lower (static) band, min(max(min,
/// size/step), max), none for ranges of `min` values or fewer.
fn band_offset(size: u32, min: u32, max: u32, step: u32) -> u32 {
    if size <= min {
        return 0;
    }
    (size / step).clamp(min, max)
}

/// A free index of `0..size`: scanned from a random start in `offset..size`, then in
/// `0..offset`.
fn pick(size: u32, offset: u32, free: impl Fn(u32) -> bool) -> Option<u32> {
    let scan = |from: u32, to: u32| {
        let span = to.checked_sub(from).filter(|span| *span > 0)?;
        let start = (RandomState::new().hash_one(0u8) % u64::from(span)) as u32;
        (0..span)
            .map(|step| from + (start + step) % span)
            .find(|index| free(*index))
    };
    let offset = offset.min(size);
    scan(offset, size).or_else(|| scan(0, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_come_from_the_upper_band_and_never_the_reserved_ones() {
        let mut pool = IpPool::new("10.43.7.0/24".parse().unwrap());
        for _ in 0..(254 - 16) {
            let ip = pool.allocate_next().unwrap();
            assert!(ip.octets()[3] > 16, "{ip} is in the static band");
        }
        let mut lower: Vec<u8> = (0..14)
            .map(|_| pool.allocate_next().unwrap().octets()[3])
            .collect();
        lower.sort();
        assert_eq!(lower, [2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16]);
        assert_eq!(pool.allocate_next(), Err(PoolError::Full));
        assert_eq!(
            pool.allocate("10.43.7.1".parse().unwrap()),
            Ok(()),
            "the reserved addresses may be asked for"
        );
    }

    #[test]
    fn requested_ips_are_checked() {
        let mut pool = IpPool::new("10.43.0.0/16".parse().unwrap());
        let taken: Ipv4Addr = "10.43.0.20".parse().unwrap();
        pool.allocate(taken).unwrap();
        assert_eq!(
            pool.allocate(taken).unwrap_err().to_string(),
            "provided IP is already allocated"
        );
        for outside in ["1.2.3.4", "10.43.0.0", "10.43.255.255"] {
            assert_eq!(
                pool.allocate(outside.parse().unwrap()).unwrap_err().to_string(),
                format!("the provided IP ({outside}) is not in the valid range. The range of valid IPs is 10.43.0.0/16")
            );
        }
    }

    #[test]
    fn node_ports_come_from_the_upper_band_first() {
        let mut pool = PortPool::new(30000..=30031);
        for _ in 0..16 {
            assert!(pool.allocate_next().unwrap() >= 30016);
        }
        let lower = pool.allocate_next().unwrap();
        assert!(lower < 30016);
        assert_eq!(
            pool.allocate(i32::from(lower)).unwrap_err().to_string(),
            "provided port is already allocated"
        );
        assert_eq!(
            pool.allocate(29999).unwrap_err().to_string(),
            "provided port is not in the valid range. The range of valid ports is 30000-30031"
        );
        let mut default = PortPool::new(30000..=32767);
        assert!(default.allocate_next().unwrap() >= 30000 + 86);
    }
}
