//! The client's IP address. `X-Forwarded-For` is client-controlled, so it is
//! only believed when the connection comes from a configured trusted proxy,
//! and then walked right to left: the first address that is not itself a
//! trusted proxy is the client.

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Resolves the client IP from the peer address and forwarding headers.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop we cannot read ends the walk: what stands left of it is the client's to write.
        let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
            return client;
        };
        client = ip;
        if !trusted.contains(&ip) {
            return ip;
        }
    }
    client
}

/// The client as rate limits count it: an IPv4 address, or an IPv6 address's
/// /64 (the smallest block a site or host is given, so one client's addresses
/// share one budget and one limiter entry).
pub fn rate_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

/// The peer address of a request, if the server was started with connect info.
pub fn peer_of<B>(req: &Request<B>) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", v.parse().unwrap());
        h
    }

    #[test]
    fn unreadable_hops_end_the_walk_and_mapped_addresses_match() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let h = xff("6.6.6.6, unknown, 198.51.100.7");
        assert_eq!(
            client_ip(proxy, &h, &[proxy]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let h = xff("6.6.6.6, 203.0.113.1:443");
        assert_eq!(client_ip(proxy, &h, &[proxy]), proxy);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            client_ip(mapped, &xff("198.51.100.9"), &[proxy]),
            "198.51.100.9".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa:bbbb:cccc:dddd".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(rate_key(a), rate_key(b));
        assert_eq!(rate_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(rate_key(a), rate_key(c));
        let v4: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(rate_key(v4), v4);
        let mapped: IpAddr = "::ffff:198.51.100.7".parse().unwrap();
        assert_eq!(rate_key(mapped), v4);
    }

    #[test]
    fn untrusted_peers_cannot_spoof() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &xff("1.2.3.4"), &[]), peer);
    }

    #[test]
    fn trusted_proxy_chain_is_walked_right_to_left() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        let h = xff("6.6.6.6, 198.51.100.7, 10.0.0.2");
        assert_eq!(
            client_ip(proxy, &h, &[proxy, inner]),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }
}
