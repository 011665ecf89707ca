//! A bounded, expiring cache for provider state that OpenAI's format has no place for (Anthropic
//! thinking blocks with signatures, Gemini `thoughtSignature`s, DeepSeek `reasoning_content`),
//! keyed by the tool-call id the client will send back. Lets plain OpenAI clients run multi-turn
//! tool use with thinking models: adapters store the state when they answer and restore it when
//! the client's history comes back without it.
//!
//! With Redis configured (the limiter's `--redis-url`), entries are also written to Redis (expiring
//! like the memory ones) and a request's history is looked up there before it is translated, so
//! turn 2 of a conversation can land on another data plane behind a round-robin load balancer.
//! Without Redis, or while it is away, the cache is this process's memory alone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::redis_tier::RedisTier;
use serde_json::{Map, Value};

/// Most entries kept; the oldest are evicted first.
const CAPACITY: usize = 50_000;
/// How long an entry lives.
const TTL: Duration = Duration::from_secs(6 * 60 * 60);

#[derive(Debug, Default)]
struct Inner {
    /// A value stored under several keys (every tool-call id of one answer) is held once.
    entries: HashMap<String, (Instant, Arc<Value>)>,
    order: VecDeque<String>,
}

/// The longest a request waits for Redis to return its history's entries.
const PREFETCH_TIMEOUT: Duration = Duration::from_millis(100);
/// Entries larger than this stay in memory only.
const MAX_SHARED_BYTES: usize = 4 << 20;
/// Most keys one request looks up.
const MAX_PREFETCH_KEYS: usize = 256;

/// See the module documentation.
#[derive(Default)]
pub struct ReasoningCache {
    inner: Mutex<Inner>,
    /// Entries written through, a request's keys read back before translation.
    shared: Option<RedisTier>,
}

impl std::fmt::Debug for ReasoningCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReasoningCache")
            .field("shared", &self.shared.as_ref().map(|s| &s.prefix))
            .finish_non_exhaustive()
    }
}

impl ReasoningCache {
    /// A cache that also keeps its entries in Redis at `url`, under `prefix`.
    pub fn with_redis(url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        Ok(ReasoningCache {
            inner: Mutex::default(),
            shared: Some(RedisTier::new(url, prefix)?),
        })
    }

    /// Connects the Redis tier (retrying until it succeeds; the connection manager reconnects by
    /// itself afterwards). Returns at once without one.
    pub async fn connect(self: Arc<Self>) {
        if let Some(shared) = &self.shared {
            shared.connect("reasoning cache", PREFETCH_TIMEOUT).await;
        }
    }

    /// Whether the Redis tier is connected.
    pub fn is_shared_connected(&self) -> bool {
        self.shared.as_ref().is_some_and(RedisTier::is_connected)
    }

    /// Copies the entries `body`'s history refers to from Redis into memory, so the adapters find
    /// them there. Bounded by [`PREFETCH_TIMEOUT`]; a miss or a failure leaves memory as it was.
    pub async fn prefetch(&self, body: &Map<String, Value>) {
        let Some((shared, mut conn)) = self.shared.as_ref().and_then(|s| Some((s, s.conn()?)))
        else {
            return;
        };
        let keys: Vec<String> = history_keys(body)
            .into_iter()
            .filter(|k| self.get(k).is_none())
            .collect();
        if keys.is_empty() {
            return;
        }
        let full: Vec<String> = keys.iter().map(|k| shared.key(k)).collect();
        let fetched = tokio::time::timeout(
            PREFETCH_TIMEOUT,
            redis::cmd("MGET")
                .arg(&full)
                .query_async::<Vec<Option<String>>>(&mut conn),
        )
        .await;
        match fetched {
            Ok(Ok(values)) => {
                for (key, value) in keys.iter().zip(values) {
                    if let Some(value) = value.and_then(|v| serde_json::from_str(&v).ok()) {
                        self.put_local([key.as_str()], Arc::new(value));
                    }
                }
            }
            Ok(Err(e)) => tracing::debug!(error = %e, "reasoning cache: Redis lookup failed"),
            Err(_) => tracing::debug!("reasoning cache: Redis lookup timed out"),
        }
    }

    pub fn put(&self, key: &str, value: Value) {
        self.put_many([key], value);
    }

    /// Stores one value under every key, held once however many keys there are: an answer with
    /// many tool calls must not multiply its thinking in memory. With Redis, also written there
    /// (in the background: the answer does not wait).
    pub fn put_many<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>, value: Value) {
        let value = Arc::new(value);
        if self.shared.is_none() {
            return self.put_local(keys, value);
        }
        let keys: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_string()).collect();
        self.write_through(&keys, &value);
        self.put_local(keys, value);
    }

    fn write_through(&self, keys: &[String], value: &Value) {
        let Some((shared, mut conn)) = self.shared.as_ref().and_then(|s| Some((s, s.conn()?)))
        else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let text = value.to_string();
        if text.len() > MAX_SHARED_BYTES {
            return;
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("SET")
                .arg(shared.key(key))
                .arg(&text)
                .arg("PX")
                .arg(TTL.as_millis() as u64)
                .ignore();
        }
        runtime.spawn(async move {
            if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                tracing::debug!(error = %e, "reasoning cache: Redis write failed");
            }
        });
    }

    fn put_local<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>, value: Arc<Value>) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let now = Instant::now();
        for key in keys {
            let key = key.as_ref();
            if inner
                .entries
                .insert(key.to_string(), (now, value.clone()))
                .is_none()
            {
                inner.order.push_back(key.to_string());
            }
        }
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.entries.remove(&old);
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<Value> {
        let Ok(inner) = self.inner.lock() else {
            return None;
        };
        inner
            .entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < TTL)
            .map(|(_, v)| Value::clone(v))
    }
}

/// The keys under which adapters keep state for `body`'s history: each assistant tool call's id
/// (Anthropic thinking, DeepSeek reasoning, Gemini's call signature) and each assistant text
/// (Gemini's text signature).
fn history_keys(body: &Map<String, Value>) -> Vec<String> {
    let mut keys = Vec::new();
    let messages = body.get("messages").and_then(Value::as_array);
    for m in messages.into_iter().flatten() {
        if m.get("role").and_then(Value::as_str) != Some("assistant") {
            continue;
        }
        let calls = m.get("tool_calls").and_then(Value::as_array);
        for id in calls
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("id").and_then(Value::as_str))
        {
            keys.push(id.to_string());
            keys.push(super::deepseek::cache_key(id));
            keys.push(super::gemini::call_key(id));
        }
        let text = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
            _ => String::new(),
        };
        if !text.is_empty() {
            keys.push(super::gemini::text_key(&super::gemini::text_digest(&text)));
        }
    }
    keys.truncate(MAX_PREFETCH_KEYS);
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_bounds() {
        let c = ReasoningCache::default();
        c.put("a", Value::from(1));
        assert_eq!(c.get("a"), Some(Value::from(1)));
        assert_eq!(c.get("b"), None);
        for i in 0..CAPACITY + 10 {
            c.put(&format!("k{i}"), Value::Null);
        }
        assert_eq!(c.get("a"), None, "the oldest entry was evicted");
    }

    /// Found by reading the adapters while writing their fuzz targets: each tool-call id got its
    /// own copy of the answer's thinking (up to 4 MiB), so a stream of many small tool-use blocks
    /// made the gateway hold many times its size.
    #[test]
    fn one_value_under_many_keys_is_held_once() {
        let c = ReasoningCache::default();
        c.put_many(["a", "b", "c"], Value::from("thinking"));
        assert_eq!(c.get("b"), Some(Value::from("thinking")));
        let inner = c.inner.lock().unwrap();
        assert!(Arc::ptr_eq(&inner.entries["a"].1, &inner.entries["c"].1));
        assert_eq!(inner.order.len(), 3);
    }
}
