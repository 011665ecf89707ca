//! Pooled upstream HTTP clients, one per connect timeout, kept across snapshot swaps so a config
//! change does not drop warm connections. hyper's pooled client over rustls (HTTP/2 when the
//! provider offers it by ALPN, else HTTP/1.1), TCP_NODELAY on; it follows no redirect (an admin
//! configured the upstream; a redirect could carry our credential elsewhere); new connections go
//! through the egress proxy when one is configured (`proxy`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

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
}

impl ClientCache {
    /// Clients that reach providers through `proxy` where it applies.
    pub fn with_proxy(proxy: ProxyConfig) -> Self {
        ClientCache {
            clients: Mutex::default(),
            proxy,
        }
    }

    /// The client for this connect timeout and egress choice, built on first use.
    pub fn get(&self, connect_timeout: Duration, proxy: &str) -> HttpClient {
        let egress = self.proxy.overridden_by(proxy);
        let Ok(mut clients) = self.clients.lock() else {
            return build(connect_timeout, &egress);
        };
        clients
            .entry((connect_timeout, proxy.to_string()))
            .or_insert_with(|| build(connect_timeout, &egress))
            .clone()
    }
}

fn build(connect_timeout: Duration, proxy: &ProxyConfig) -> HttpClient {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(ProxyConnector::new(http, proxy));
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .build(https)
}
