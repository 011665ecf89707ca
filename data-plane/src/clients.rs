//! Pooled upstream HTTP clients, one per connect timeout, kept across snapshot swaps so a config
//! change does not drop warm connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Shares `reqwest::Client`s (and so their connection pools) between snapshots.
#[derive(Debug, Default)]
pub struct ClientCache {
    clients: Mutex<HashMap<Duration, reqwest::Client>>,
}

impl ClientCache {
    /// The client for this connect timeout, built on first use.
    pub fn get(&self, connect_timeout: Duration) -> reqwest::Client {
        let Ok(mut clients) = self.clients.lock() else {
            return build(connect_timeout);
        };
        clients
            .entry(connect_timeout)
            .or_insert_with(|| build(connect_timeout))
            .clone()
    }
}

fn build(connect_timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        // Upstreams are configured by admins; a redirect could carry our credential elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}
