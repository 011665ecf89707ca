//! Stored responses: what `previous_response_id` continues from and `GET`/`DELETE
//! /v1/responses/{id}` read. Each entry is the response (with every item's provider state) and
//! the input that led to it, owned by the key that made it (another key sees nothing). Kept in
//! memory (bounded, oldest out first) and, with Redis configured (the limiter's `--redis-url`),
//! in Redis too, so a conversation can continue on any data plane; entries expire after the
//! configured time (`--responses-ttl`, default 30 days in Redis, as OpenAI keeps them).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use crate::redis_tier::RedisTier;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request::responses::ResponsesCall;

/// Most responses held in memory.
const CAPACITY: usize = 10_000;
/// Most bytes (as JSON) of responses held in memory: each holds its whole conversation, so a long
/// one costs more with every turn.
const MAX_LOCAL_BYTES: usize = 256 << 20;
/// The longest a request waits for Redis.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// Responses larger than this stay in memory only.
const MAX_SHARED_BYTES: usize = 8 << 20;
/// How long entries live by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// One stored response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stored {
    /// The name of the key that made it.
    pub owner: String,
    pub response: Map<String, Value>,
    /// The conversation before it, as input items.
    pub input: Vec<Value>,
}

impl Stored {
    /// The conversation up to and including this response, as the next turn's input items.
    pub fn conversation(&self) -> Vec<Value> {
        let mut items = self.input.clone();
        if let Some(Value::Array(output)) = self.response.get("output") {
            items.extend(output.iter().cloned());
        }
        items
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Each entry: when it was stored, its size as JSON, the response.
    entries: HashMap<String, (Instant, usize, Arc<Stored>)>,
    order: VecDeque<String>,
    bytes: usize,
}

/// See the module documentation.
pub struct ResponseStore {
    inner: Mutex<Inner>,
    ttl: Duration,
    shared: Option<RedisTier>,
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStore")
            .field("ttl", &self.ttl)
            .field("shared", &self.shared.as_ref().map(|s| &s.prefix))
            .finish_non_exhaustive()
    }
}

impl Default for ResponseStore {
    fn default() -> Self {
        ResponseStore::in_memory(DEFAULT_TTL)
    }
}

/// What a stream or answer needs to store its response: the store and the key it belongs to.
#[derive(Debug, Clone)]
pub struct Keep {
    pub store: Arc<ResponseStore>,
    pub owner: String,
}

impl Keep {
    /// Stores `response` (in the background for Redis) when the request allows it.
    pub fn put(&self, call: &ResponsesCall, response: Map<String, Value>) {
        if call.store {
            self.store.put(self.stored(call, response));
        }
    }

    /// The entry for `response`.
    pub fn stored(&self, call: &ResponsesCall, response: Map<String, Value>) -> Stored {
        Stored {
            owner: self.owner.clone(),
            response,
            input: call.input.clone(),
        }
    }
}

impl ResponseStore {
    pub fn in_memory(ttl: Duration) -> Self {
        ResponseStore {
            inner: Mutex::default(),
            ttl,
            shared: None,
        }
    }

    /// A store that also keeps its entries in Redis at `url`, under `prefix`.
    pub fn with_redis(url: &str, prefix: &str, ttl: Duration) -> Result<Self, redis::RedisError> {
        Ok(ResponseStore {
            inner: Mutex::default(),
            ttl,
            shared: Some(RedisTier::new(url, prefix)?),
        })
    }

    /// Connects the Redis tier, retrying until it succeeds; returns at once without one.
    pub async fn connect(self: Arc<Self>) {
        if let Some(shared) = &self.shared {
            shared.connect("stored responses", REDIS_TIMEOUT).await;
        }
    }

    fn redis(&self) -> Option<(&RedisTier, ConnectionManager)> {
        let shared = self.shared.as_ref()?;
        Some((shared, shared.conn()?))
    }

    fn id_of(stored: &Stored) -> Option<String> {
        stored
            .response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Keeps `stored` in memory now and in Redis in the background.
    pub fn put(&self, stored: Stored) {
        let Some(id) = Self::id_of(&stored) else {
            return;
        };
        let Ok(text) = serde_json::to_string(&stored) else {
            return;
        };
        let size = text.len();
        let stored = Arc::new(stored);
        if let Some((shared, mut conn)) = self.redis()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && size <= MAX_SHARED_BYTES
        {
            let key = shared.key(&id);
            let ttl = self.ttl.as_millis() as u64;
            runtime.spawn(async move {
                let mut set = redis::cmd("SET");
                set.arg(key).arg(text).arg("PX").arg(ttl);
                if let Err(e) = set.query_async::<()>(&mut conn).await {
                    tracing::debug!(error = %e, "response store: Redis write failed");
                }
            });
        }
        self.put_local(id, size, stored);
    }

    fn put_local(&self, id: String, size: usize, stored: Arc<Stored>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        match inner
            .entries
            .insert(id.clone(), (Instant::now(), size, stored))
        {
            Some((_, old, _)) => inner.bytes -= old,
            None => inner.order.push_back(id),
        }
        inner.bytes += size;
        while inner.order.len() > CAPACITY
            || (inner.bytes > MAX_LOCAL_BYTES && inner.order.len() > 1)
        {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some((_, size, _)) = inner.entries.remove(&old) {
                inner.bytes -= size;
            }
        }
    }

    /// The response `id` if `owner` made it and it has not expired: from memory, else Redis
    /// (asked twice, a moment apart, for a write another data plane may still be making).
    pub async fn get(&self, id: &str, owner: &str) -> Option<Arc<Stored>> {
        let local = self.inner.lock().ok().and_then(|inner| {
            inner
                .entries
                .get(id)
                .filter(|(at, _, _)| at.elapsed() < self.ttl)
                .map(|(_, _, s)| s.clone())
        });
        let found = match local {
            Some(s) => Some(s),
            None => self.get_shared(id).await,
        };
        found.filter(|s| s.owner == owner)
    }

    async fn get_shared(&self, id: &str) -> Option<Arc<Stored>> {
        let (shared, mut conn) = self.redis()?;
        let key = shared.key(id);
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let got = tokio::time::timeout(
                REDIS_TIMEOUT,
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut conn),
            )
            .await;
            match got {
                Ok(Ok(Some(text))) => {
                    let stored: Stored = serde_json::from_str(&text).ok()?;
                    let stored = Arc::new(stored);
                    self.put_local(id.to_string(), text.len(), stored.clone());
                    return Some(stored);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "response store: Redis read failed");
                    return None;
                }
                Err(_) => return None,
            }
        }
        None
    }

    /// Deletes the response `id` if `owner` made it; whether there was one.
    pub async fn delete(&self, id: &str, owner: &str) -> bool {
        if self.get(id, owner).await.is_none() {
            return false;
        }
        if let Ok(mut inner) = self.inner.lock()
            && let Some((_, size, _)) = inner.entries.remove(id)
        {
            inner.bytes -= size;
            inner.order.retain(|k| k != id);
        }
        if let Some((shared, mut conn)) = self.redis() {
            let mut del = redis::cmd("DEL");
            del.arg(shared.key(id));
            let deleted = tokio::time::timeout(REDIS_TIMEOUT, del.query_async::<()>(&mut conn));
            if let Ok(Err(e)) = deleted.await {
                tracing::debug!(error = %e, "response store: Redis delete failed");
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(id: &str, owner: &str, text: &str) -> Stored {
        let response = json!({"id": id, "output": [{"type": "message", "content": [{"type": "output_text", "text": text}]}]});
        Stored {
            owner: owner.into(),
            response: response.as_object().cloned().unwrap(),
            input: vec![json!({"role": "user", "content": "q"})],
        }
    }

    #[tokio::test]
    async fn owned_expiring_deletable_and_bounded() {
        let store = ResponseStore::in_memory(Duration::from_secs(60));
        store.put(stored("resp_1", "alice", "a"));
        let got = store.get("resp_1", "alice").await.unwrap();
        assert_eq!(got.conversation().len(), 2, "input, then the output");
        assert!(
            store.get("resp_1", "bob").await.is_none(),
            "another key sees nothing"
        );
        assert!(!store.delete("resp_1", "bob").await);
        assert!(store.delete("resp_1", "alice").await);
        assert!(store.get("resp_1", "alice").await.is_none());
        assert_eq!(store.inner.lock().unwrap().bytes, 0);

        let expired = ResponseStore::in_memory(Duration::ZERO);
        expired.put(stored("resp_2", "alice", "a"));
        assert!(expired.get("resp_2", "alice").await.is_none());

        // Big conversations are evicted by size, oldest first.
        let big = "x".repeat(MAX_LOCAL_BYTES / 3);
        for i in 0..4 {
            store.put(stored(&format!("resp_big{i}"), "alice", &big));
        }
        assert!(store.get("resp_big0", "alice").await.is_none());
        assert!(store.get("resp_big3", "alice").await.is_some());
        assert!(store.inner.lock().unwrap().bytes <= MAX_LOCAL_BYTES);
    }
}
