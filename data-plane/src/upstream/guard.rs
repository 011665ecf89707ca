//! Name resolution for provider connections, and the SSRF guard DNS cannot get around: with
//! `--deny-private-upstreams` every address a provider's host name resolves to is checked when a
//! connection is opened, and the connection goes to those checked addresses only, so a name that
//! points (or is re-pointed, DNS-rebinding style) at 127.0.0.1, 169.254.169.254 or a private range
//! is refused. Names can also be pinned to addresses (`--resolve`, like curl's).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;
use tower::Service;

use crate::upstream::uri::is_private;

/// Host names answered without DNS (`--resolve NAME=ADDR`), lower-case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolver {
    pinned: HashMap<String, Vec<IpAddr>>,
}

impl Resolver {
    /// Answers `name` with `addrs` from now on.
    pub fn pin(mut self, name: &str, addrs: Vec<IpAddr>) -> Self {
        self.pinned.insert(name.to_ascii_lowercase(), addrs);
        self
    }

    /// Parses `NAME=ADDR[,ADDR...]`.
    pub fn parse_pin(self, text: &str) -> Result<Self, String> {
        let (name, addrs) = text
            .split_once('=')
            .ok_or_else(|| format!("`{text}`: expected NAME=ADDR[,ADDR...]"))?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                a.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| format!("`{a}` is not an IP address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if name.trim().is_empty() {
            return Err(format!("`{text}`: the host name is empty"));
        }
        Ok(self.pin(name.trim(), addrs))
    }

    /// The addresses of `host`: pinned ones, else the system resolver's.
    async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        if let Some(addrs) = self.pinned.get(&host.to_ascii_lowercase()) {
            return Ok(addrs.clone());
        }
        let found = tokio::net::lookup_host((host, 0)).await?;
        Ok(found.map(|a| a.ip()).collect())
    }
}

/// Resolves with [`Resolver`] and, when `deny_private` is set, refuses a name any of whose
/// addresses is loopback, private, link-local or otherwise not publicly routable.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    resolver: Arc<Resolver>,
    deny_private: bool,
}

impl Guard {
    pub fn new(resolver: Resolver, deny_private: bool) -> Self {
        Guard {
            resolver: Arc::new(resolver),
            deny_private,
        }
    }

    pub fn denies_private(&self) -> bool {
        self.deny_private
    }

    /// The checked addresses of `host`.
    pub async fn resolve(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => self.resolver.lookup(host).await?,
        };
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address"),
            ));
        }
        if self.deny_private
            && let Some(bad) = addrs.iter().find(|ip| is_private(**ip))
        {
            tracing::warn!(host, address = %bad, "refused a provider connection: the host resolves to a private address (--deny-private-upstreams)");
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{host} resolves to {bad}, a private address (--deny-private-upstreams)"),
            ));
        }
        Ok(addrs)
    }
}

/// The guard as hyper's resolver: what it returns is all the connector dials.
impl Service<Name> for Guard {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let guard = self.clone();
        Box::pin(async move {
            let addrs = guard.resolve(name.as_str()).await?;
            Ok(addrs
                .into_iter()
                .map(|ip| SocketAddr::new(ip, 0))
                .collect::<Vec<_>>()
                .into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_address_of_a_name_is_checked() {
        let resolver = Resolver::default()
            .pin("metadata.test", vec!["169.254.169.254".parse().unwrap()])
            .pin(
                "mixed.test",
                vec![
                    "93.184.216.34".parse().unwrap(),
                    "10.0.0.7".parse().unwrap(),
                ],
            )
            .pin("public.test", vec!["93.184.216.34".parse().unwrap()]);
        let guard = Guard::new(resolver.clone(), true);
        for refused in [
            "metadata.test",
            "mixed.test",
            "localhost",
            "127.0.0.1",
            "[::1]",
        ] {
            let e = guard.resolve(refused).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{refused}");
        }
        assert_eq!(guard.resolve("PUBLIC.test").await.unwrap().len(), 1);
        // Without the guard the same names resolve.
        let open = Guard::new(resolver, false);
        assert_eq!(open.resolve("metadata.test").await.unwrap().len(), 1);
    }

    #[test]
    fn pins_parse_like_curls_resolve() {
        let r = Resolver::default()
            .parse_pin("api.example.com=10.0.0.1,10.0.0.2")
            .unwrap();
        assert_eq!(r.pinned["api.example.com"].len(), 2);
        assert!(Resolver::default().parse_pin("nope").is_err());
        assert!(Resolver::default().parse_pin("a=not-an-ip").is_err());
        assert!(Resolver::default().parse_pin("=10.0.0.1").is_err());
    }
}
