//! A Redis tier for state that several data planes share beside their own memory (the reasoning
//! cache, stored Responses answers): the client, the connection once it is made (retried in the
//! background until it is; the manager reconnects by itself afterwards), and the key prefix.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// See the module documentation.
pub struct RedisTier {
    client: redis::Client,
    conn: tokio::sync::OnceCell<ConnectionManager>,
    pub prefix: String,
}

impl RedisTier {
    pub fn new(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(RedisTier {
            client: redis::Client::open(url)?,
            conn: tokio::sync::OnceCell::new(),
            prefix: prefix.to_string(),
        })
    }

    /// Connects, retrying with backoff until it succeeds; `what` names the state in logs.
    pub async fn connect(&self, what: &str, response_timeout: Duration) {
        let mut pause = Duration::from_millis(100);
        loop {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1);
            match ConnectionManager::new_with_config(self.client.clone(), config).await {
                Ok(conn) => {
                    let _ = self.conn.set(conn);
                    tracing::info!("{what} shared through Redis");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "{what} cannot reach Redis yet; memory only");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The connection, once made.
    pub fn conn(&self) -> Option<ConnectionManager> {
        self.conn.get().cloned()
    }

    pub fn is_connected(&self) -> bool {
        self.conn.initialized()
    }

    /// `key` under the prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}
