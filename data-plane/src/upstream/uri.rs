//! Provider base URLs: the request URI built from one, and SSRF hardening: recognises loopback, private, link-local and CGNAT
//! address literals (IPv4-mapped IPv6 included) so a data plane can refuse them.

use std::net::IpAddr;

/// The host of `url` when it is `localhost` or an IP literal that is not publicly routable.
pub fn private_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host()?;
    let private = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        url::Host::Ipv4(ip) => is_private(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => is_private(IpAddr::V6(ip)),
    };
    private.then(|| host.to_string())
}

/// Loopback, private, link-local, CGNAT, unspecified or broadcast (IPv4-mapped IPv6 included).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// `base_url` + `path` as a request URI: parsed as a URL first, which normalises what a URI would
/// refuse (an international host name, characters to percent-encode).
pub fn upstream_uri(base_url: &str, path: &str) -> Option<http::Uri> {
    let url = url::Url::parse(&format!("{base_url}{path}")).ok()?;
    http::Uri::try_from(url.as_str()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_private_upstreams() {
        for url in [
            "http://127.0.0.1:8000/v1",
            "http://10.1.2.3/v1",
            "http://localhost/v1",
            "http://[::1]/v1",
            "http://[::ffff:192.168.0.1]/v1",
            "http://169.254.169.254/",
            "http://100.64.0.1/",
            "http://2130706433/",
        ] {
            assert!(private_host(url).is_some(), "{url}");
        }
        for url in ["https://api.openai.com/v1", "http://8.8.8.8/v1"] {
            assert!(private_host(url).is_none(), "{url}");
        }
    }
}
