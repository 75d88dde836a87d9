//! Who is calling: the client's address, for the per-address bounds and limits and, at the
//! gateway, for the `X-Forwarded-For` the services see.
//!
//! A caller can write any `X-Forwarded-For` it likes, so the header is believed only as
//! far as the deployment says proxies of its own stand in front of the gateway
//! (`forwarded.trusted_hops`): each appends the address it saw, so the client is the
//! entry that many places from the right. With none (the default, and `./dev`), the TCP
//! peer is the client and the header is ignored: rotating it evades nothing.

use std::net::{IpAddr, Ipv4Addr};

use axum::http::{HeaderMap, HeaderName};
use serde::Deserialize;

/// Proxies in front of the gateway.
#[derive(schemars::JsonSchema, Debug, Clone, Copy, Default, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct ForwardedSettings {
    /// How many proxies of the deployment's own append to `X-Forwarded-For` before the
    /// gateway (an Ingress controller or a cloud load balancer: 1).
    pub trusted_hops: usize,
}

/// `X-Forwarded-For`.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Headers in which a caller claims where a request came from: dropped from every
/// forwarded request, and `X-Forwarded-For` set to the address the gateway believes.
pub const CLAIMS_OF_ORIGIN: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "x-client-ip",
];

/// The client's address: the peer, or the `trusted_hops`-th `X-Forwarded-For` entry from
/// the right when the deployment's proxies put it there.
pub fn address(
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
    settings: ForwardedSettings,
) -> IpAddr {
    let peer = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    if settings.trusted_hops == 0 {
        return peer;
    }
    // Every X-Forwarded-For line, in order, as one list.
    let chain: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    chain
        .len()
        .checked_sub(settings.trusted_hops)
        .and_then(|i| chain.get(i))
        .and_then(|a| a.parse().ok())
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append(&X_FORWARDED_FOR, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let peer = Some("10.0.0.9:5000".parse().unwrap());
        let a = address(peer, &headers(&["1.2.3.4"]), ForwardedSettings::default());
        assert_eq!(a, "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn with_one_trusted_proxy_its_entry_counts_and_the_callers_own_do_not() {
        let one = ForwardedSettings { trusted_hops: 1 };
        let peer = Some("10.0.0.2:5000".parse().unwrap());
        // The caller wrote 6.6.6.6; the proxy appended the address it saw.
        let h = headers(&["6.6.6.6, 203.0.113.7"]);
        assert_eq!(
            address(peer, &h, one),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Split over two header lines: the same list.
        let h = headers(&["6.6.6.6", "203.0.113.7"]);
        assert_eq!(
            address(peer, &h, one),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // No header, or garbage where the proxy's entry should be: the peer.
        assert_eq!(
            address(peer, &headers(&[]), one),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            address(peer, &headers(&["nonsense"]), one),
            "10.0.0.2".parse::<IpAddr>().unwrap()
        );
        let two = ForwardedSettings { trusted_hops: 2 };
        let h = headers(&["6.6.6.6, 198.51.100.1, 10.1.1.1"]);
        assert_eq!(
            address(peer, &h, two),
            "198.51.100.1".parse::<IpAddr>().unwrap()
        );
    }
}
