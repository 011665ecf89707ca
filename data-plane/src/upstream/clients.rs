//! Pooled upstream HTTP clients, one per connect timeout, kept across snapshot swaps so a config
//! change does not drop warm connections. hyper's pooled client over rustls (HTTP/2 when the
//! provider offers it by ALPN, else HTTP/1.1), TCP_NODELAY on; it follows no redirect (an admin
//! configured the upstream; a redirect could carry our credential elsewhere); new connections go
//! through the egress proxy when one is configured (`proxy`), and host names are resolved (and,
//! under `--deny-private-upstreams`, checked) by the [`Guard`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::GaiResolver;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::upstream::guard::Guard;
use crate::upstream::proxy::{ProxyConfig, ProxyConnector};

/// The client providers are called with.
pub type HttpClient = Client<HttpsConnector<ProxyConnector>, Full<Bytes>>;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// Shares clients (and so their connection pools) between snapshots: one per connect timeout and
/// egress choice (a provider's `proxy`: "" for the environment's, "direct", or a proxy URL).
#[derive(Debug, Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<(Duration, String), HttpClient>>,
    proxy: ProxyConfig,
    guard: Guard,
}

impl ClientCache {
    /// Clients that reach providers through `proxy` where it applies, resolving through `guard`.
    pub fn new(proxy: ProxyConfig, guard: Guard) -> Self {
        ClientCache {
            clients: Mutex::default(),
            proxy,
            guard,
        }
    }

    /// The client for this connect timeout and egress choice, built on first use.
    pub fn get(&self, connect_timeout: Duration, proxy: &str) -> HttpClient {
        let egress = self.proxy.overridden_by(proxy);
        let Ok(mut clients) = self.clients.lock() else {
            return build(connect_timeout, &egress, &self.guard);
        };
        clients
            .entry((connect_timeout, proxy.to_string()))
            .or_insert_with(|| build(connect_timeout, &egress, &self.guard))
            .clone()
    }
}

/// A TCP connector with our socket options, resolving through `resolver`.
fn connector<R>(resolver: R, connect_timeout: Duration) -> HttpConnector<R> {
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http
}

fn build(connect_timeout: Duration, proxy: &ProxyConfig, guard: &Guard) -> HttpClient {
    // The proxy is the operator's own: it is dialled as configured; providers go through the guard.
    let direct = connector(guard.clone(), connect_timeout);
    let to_proxy = connector(GaiResolver::new(), connect_timeout);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(ProxyConnector::new(direct, to_proxy, guard.clone(), proxy));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(https)
}
