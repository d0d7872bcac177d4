//! The client's IP on `/auth`: the peer's address, unless the peer is a proxy of
//! `--trust-proxy` (or a Unix socket peer), whose `X-Real-IP`, else `X-Forwarded-For`,
//! names it. A forged header from any other peer is ignored.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

use super::Peer;
use crate::core::allowlist::parse_ip;

/// The client's IP, None when nothing names one (a Unix socket peer without
/// headers), or why the trusted proxy's header is not an address (the request is then
/// refused: a proxy that sends garbage must not pass as its own address).
pub fn client_ip(
    peer: Peer,
    trusted: &[IpNet],
    headers: &HeaderMap,
) -> Result<Option<IpAddr>, String> {
    let in_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer_ip = peer.0.map(|ip| ip.to_canonical());
    // A Unix socket is reached only by who may open its file (mode 0660).
    if !peer_ip.as_ref().is_none_or(in_trusted) {
        return Ok(peer_ip);
    }
    if let Some(real) = headers.get("x-real-ip") {
        let text = real
            .to_str()
            .map_err(|_| "header X-Real-IP is not text".to_string())?;
        return parse_ip(text)
            .map(Some)
            .map_err(|e| format!("header X-Real-IP: {e}"));
    }
    // Every hop appends: the rightmost entry not itself a trusted proxy is the client
    // (entries to its left are whatever the client sent).
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value
            .to_str()
            .map_err(|_| "header X-Forwarded-For is not text".to_string())?;
        hops.extend(text.split(',').map(str::trim).filter(|t| !t.is_empty()));
    }
    let mut client = None;
    for hop in hops.iter().rev() {
        let ip = parse_ip(hop).map_err(|e| format!("header X-Forwarded-For: {e}"))?;
        client = Some(ip);
        if !in_trusted(&ip) {
            break;
        }
    }
    Ok(client.or(peer_ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    fn ip(t: &str) -> Option<IpAddr> {
        Some(t.parse().unwrap())
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let forged = headers(&[("x-real-ip", "1.2.3.4"), ("x-forwarded-for", "1.2.3.4")]);
        let outsider = Peer(ip("203.0.113.9"));
        assert_eq!(
            client_ip(outsider, &trusted, &forged),
            Ok(ip("203.0.113.9"))
        );
        let proxy = Peer(ip("10.1.1.1"));
        assert_eq!(client_ip(proxy, &trusted, &forged), Ok(ip("1.2.3.4")));
        assert_eq!(
            client_ip(proxy, &trusted, &HeaderMap::new()),
            Ok(ip("10.1.1.1"))
        );
        assert_eq!(client_ip(Peer(None), &[], &HeaderMap::new()), Ok(None));
    }

    #[test]
    fn forwarded_for_is_read_from_the_right() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let proxy = Peer(ip("10.1.1.1"));
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.2.2.2")]);
        assert_eq!(client_ip(proxy, &trusted, &chain), Ok(ip("198.51.100.7")));
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(client_ip(proxy, &trusted, &split), Ok(ip("198.51.100.7")));
        let all_inside = headers(&[("x-forwarded-for", "10.3.3.3, 10.2.2.2")]);
        assert_eq!(client_ip(proxy, &trusted, &all_inside), Ok(ip("10.3.3.3")));
        let garbage = headers(&[("x-forwarded-for", "1.2.3.4, nonsense")]);
        assert!(client_ip(proxy, &trusted, &garbage).is_err());
        let mapped = Peer(ip("::ffff:10.1.1.1"));
        assert_eq!(client_ip(mapped, &trusted, &chain), Ok(ip("198.51.100.7")));
    }
}
