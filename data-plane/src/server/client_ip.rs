//! Who the client is, for the per-client cap: the peer address, or behind a trusted proxy the
//! address its `X-Forwarded-For` names (the right-most one that is not itself a trusted proxy, so a
//! client cannot pick its own by sending the header); and the counts per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use http::HeaderMap;
use ipnet::IpNet;

/// Whether `ip` is one of the configured proxies.
pub fn is_trusted(trusted: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    trusted.iter().any(|net| net.contains(&ip))
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The client a trusted proxy forwarded for: the right-most `X-Forwarded-For` entry that is not a
/// trusted proxy (None when the header names no such address).
pub fn forwarded_client(headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let text = value.to_str().ok()?;
        for hop in text.split(',') {
            hops.push(canonical(hop.trim().parse().ok()?));
        }
    }
    hops.into_iter().rev().find(|ip| !is_trusted(trusted, *ip))
}

/// Connections (or requests, behind a proxy) held per client address, up to a cap.
#[derive(Debug)]
pub struct PerClient {
    cap: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

impl PerClient {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(PerClient {
            cap,
            held: Mutex::default(),
        })
    }

    /// One more for `ip`, or None at its cap. Held until the slot is dropped.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let ip = canonical(ip);
        let mut held = self.held.lock().ok()?;
        let count = held.entry(ip).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(ClientSlot {
            owner: self.clone(),
            ip,
        })
    }
}

/// One connection or request of one client.
#[derive(Debug)]
pub struct ClientSlot {
    owner: Arc<PerClient>,
    ip: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Ok(mut held) = self.owner.held.lock()
            && let Some(count) = held.get_mut(&self.ip)
        {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // A client-supplied first entry is not believed: the proxy appended the real one.
        let h = headers(&["6.6.6.6, 203.0.113.9", "10.1.1.1"]);
        assert_eq!(
            forwarded_client(&h, &trusted),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(forwarded_client(&headers(&["10.2.2.2"]), &trusted), None);
        assert_eq!(forwarded_client(&headers(&["garbage"]), &trusted), None);
        assert!(is_trusted(&trusted, "::ffff:10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let per = PerClient::new(2);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = per.take(ip).unwrap();
        let _b = per.take(ip).unwrap();
        assert!(per.take(ip).is_none());
        assert!(per.take("192.0.2.2".parse().unwrap()).is_some());
        drop(a);
        assert!(per.take(ip).is_some());
    }
}
