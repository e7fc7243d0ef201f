//! The client's IP address. `X-Forwarded-For` is client-controlled, so it is
//! only believed when the connection comes from a configured trusted proxy,
//! and then walked right to left: the first address that is not itself a
//! trusted proxy is the client.

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request};
use std::net::{IpAddr, SocketAddr};

/// Resolves the client IP from the peer address and forwarding headers.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    hops.iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .copied()
        .unwrap_or(peer)
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
