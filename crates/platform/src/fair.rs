//! Fair shares of a bounded resource per client address: how many connections, requests
//! in progress or password checks one source may hold at once, so that one address cannot
//! take what every caller shares (a flood of slow requests from one place used to hold
//! every in-flight place of the gateway).
//!
//! An IPv6 client is counted by its /64 (one subscriber's usual allocation: an attacker
//! has 2^64 addresses there, not one); an IPv4-mapped IPv6 address as the IPv4 address.
//! An entry exists only while something is held, so the map is bounded by what is held.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

/// The holdings of one resource, per source.
#[derive(Clone)]
pub struct Shares {
    inner: Arc<Inner>,
}

struct Inner {
    held: Mutex<HashMap<IpAddr, usize>>,
    cap: usize,
}

/// One unit held by a source; given back when dropped.
pub struct Share {
    inner: Arc<Inner>,
    source: IpAddr,
}

impl Shares {
    /// At most `cap` units per source; `0`: no cap of its own (the resource's total bounds
    /// it).
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                held: Mutex::default(),
                cap: if cap == 0 { usize::MAX } else { cap },
            }),
        }
    }

    /// A unit for `from`, or `None` when its source holds its cap already.
    pub fn take(&self, from: IpAddr) -> Option<Share> {
        let source = source_of(from);
        // A poisoned lock only means a holder panicked mid-update; the counts are still
        // numbers, so go on with them.
        let mut held = self.inner.held.lock().unwrap_or_else(|p| p.into_inner());
        let n = held.entry(source).or_insert(0);
        if *n >= self.inner.cap {
            return None;
        }
        *n += 1;
        Some(Share {
            inner: self.inner.clone(),
            source,
        })
    }

    /// Units `from`'s source holds now.
    pub fn held(&self, from: IpAddr) -> usize {
        let held = self.inner.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&source_of(from)).copied().unwrap_or(0)
    }

    /// Sources holding anything now.
    pub fn sources(&self) -> usize {
        self.inner
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = self.inner.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(&self.source) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.source);
            }
        }
    }
}

/// The source an address is counted as: itself (IPv4), its IPv4 address (IPv4-mapped), or
/// its /64 (IPv6).
pub fn source_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_source_holds_at_most_its_cap_and_gets_it_back() {
        let shares = Shares::new(2);
        let a = shares.take(ip("10.0.0.1")).unwrap();
        let b = shares.take(ip("10.0.0.1")).unwrap();
        assert!(shares.take(ip("10.0.0.1")).is_none(), "a third is refused");
        let other = shares.take(ip("10.0.0.2"));
        assert!(other.is_some(), "another source is not affected");
        drop(a);
        assert_eq!(shares.held(ip("10.0.0.1")), 1);
        let c = shares.take(ip("10.0.0.1"));
        assert!(c.is_some(), "given back when dropped");
        drop((b, c, other));
        assert_eq!(shares.sources(), 0, "no entry outlives what it holds");
    }

    #[test]
    fn an_ipv6_subscriber_is_one_source_and_a_mapped_ipv4_is_its_ipv4() {
        let shares = Shares::new(1);
        let _one = shares.take(ip("2001:db8:1:2::1")).unwrap();
        assert!(
            shares.take(ip("2001:db8:1:2:ffff::9")).is_none(),
            "the same /64"
        );
        assert!(shares.take(ip("2001:db8:1:3::1")).is_some(), "another /64");
        let _v4 = shares.take(ip("192.0.2.7")).unwrap();
        assert!(shares.take(ip("::ffff:192.0.2.7")).is_none());
    }

    #[test]
    fn zero_is_no_cap_of_its_own() {
        let shares = Shares::new(0);
        let held: Vec<_> = (0..10_000)
            .map(|_| shares.take(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(shares.held(ip("10.0.0.1")), held.len());
    }
}
