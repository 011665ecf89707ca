//! Egress through a company's proxy: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` (the usual
//! variables, read once at start), applied when a new upstream connection is opened. A host the
//! proxy covers is reached through an HTTP `CONNECT` tunnel (TLS runs inside it, end to end with
//! the provider); `NO_PROXY` hosts, and every host when no proxy is set, are dialled directly.
//! Pooled connections are reused as they are, so the hot path pays nothing per request. Under
//! `--deny-private-upstreams` a tunnelled provider's name is resolved and checked here too, and the
//! `CONNECT` names the checked address, so the proxy cannot be sent somewhere private either.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::GaiResolver;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::Service;

use crate::upstream::guard::Guard;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Which proxy serves which upstream (empty: none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Proxy for `http://` providers (`HTTP_PROXY`).
    pub http: Option<String>,
    /// Proxy for `https://` providers (`HTTPS_PROXY`).
    pub https: Option<String>,
    /// Hosts, domains (`.example.com`), IP ranges or `*` reached directly (`NO_PROXY`).
    pub no_proxy: Option<String>,
}

impl ProxyConfig {
    /// From `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (either case, as curl reads them).
    pub fn from_env() -> ProxyConfig {
        let var = |name: &str| {
            std::env::var(name)
                .or_else(|_| std::env::var(name.to_ascii_lowercase()))
                .ok()
                .filter(|v| !v.trim().is_empty())
        };
        let all = var("ALL_PROXY");
        ProxyConfig {
            http: var("HTTP_PROXY").or_else(|| all.clone()),
            https: var("HTTPS_PROXY").or(all),
            no_proxy: var("NO_PROXY"),
        }
    }

    /// The egress for a provider whose `proxy` field is `choice`: "" keeps this one, "direct" is
    /// none, a URL is that proxy for every host.
    pub fn overridden_by(&self, choice: &str) -> ProxyConfig {
        match choice {
            "" => self.clone(),
            "direct" => ProxyConfig::default(),
            url => ProxyConfig {
                http: Some(url.to_string()),
                https: Some(url.to_string()),
                no_proxy: None,
            },
        }
    }

    fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    fn matcher(&self) -> Matcher {
        Matcher::builder()
            .http(self.http.clone().unwrap_or_default())
            .https(self.https.clone().unwrap_or_default())
            .no(self.no_proxy.clone().unwrap_or_default())
            .build()
    }
}

/// A TCP connector that tunnels through the configured proxy where it applies.
#[derive(Clone)]
pub struct ProxyConnector {
    /// Dials providers, resolving through the guard.
    direct: HttpConnector<Guard>,
    /// Dials the proxy.
    to_proxy: HttpConnector<GaiResolver>,
    guard: Guard,
    matcher: Option<std::sync::Arc<Matcher>>,
}

impl ProxyConnector {
    pub fn new(
        direct: HttpConnector<Guard>,
        to_proxy: HttpConnector<GaiResolver>,
        guard: Guard,
        config: &ProxyConfig,
    ) -> Self {
        ProxyConnector {
            direct,
            to_proxy,
            guard,
            matcher: (!config.is_empty()).then(|| std::sync::Arc::new(config.matcher())),
        }
    }
}

/// `dst` with its host replaced by the first address the guard accepts for it.
async fn pinned(guard: &Guard, dst: Uri) -> Result<Uri, BoxError> {
    let host = dst.host().ok_or("provider URI without a host")?;
    let ip = guard
        .resolve(host)
        .await?
        .into_iter()
        .next()
        .ok_or("no address")?;
    let port = dst
        .port_u16()
        .unwrap_or(if dst.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let authority = std::net::SocketAddr::new(ip, port).to_string();
    let mut parts = dst.into_parts();
    parts.authority = Some(authority.parse()?);
    Ok(Uri::from_parts(parts)?)
}

impl Service<Uri> for ProxyConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut direct = self.direct.clone();
        let to_proxy = self.to_proxy.clone();
        let guard = self.guard.clone();
        let intercept = self.matcher.as_ref().and_then(|m| m.intercept(&dst));
        Box::pin(async move {
            match intercept {
                None => direct.call(dst).await.map_err(Into::into),
                Some(proxy) => {
                    let dst = if guard.denies_private() {
                        pinned(&guard, dst).await?
                    } else {
                        dst
                    };
                    let mut tunnel = Tunnel::new(proxy.uri().clone(), to_proxy);
                    if let Some(auth) = proxy.basic_auth() {
                        tunnel = tunnel.with_auth(auth.clone());
                    }
                    tunnel.call(dst).await.map_err(Into::into)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_proxy_covers_its_hosts_only() {
        let config = ProxyConfig {
            http: Some("http://proxy.internal:3128".into()),
            https: Some("http://proxy.internal:3128".into()),
            no_proxy: Some("localhost,.corp.example".into()),
        };
        let m = config.matcher();
        let via = |u: &str| {
            m.intercept(&u.parse().unwrap())
                .map(|i| i.uri().to_string())
        };
        assert_eq!(
            via("https://api.openai.com/v1").as_deref(),
            Some("http://proxy.internal:3128/")
        );
        assert!(via("http://localhost:8080/").is_none());
        assert!(via("https://llm.corp.example/").is_none());
        assert!(ProxyConfig::default().is_empty());
    }
}
