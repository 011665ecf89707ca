//! A bounded, expiring cache for provider state that OpenAI's format has no place for (Anthropic
//! thinking blocks with signatures, Gemini `thoughtSignature`s, DeepSeek `reasoning_content`),
//! keyed by the tool-call id the client will send back. Lets plain OpenAI clients run multi-turn
//! tool use with thinking models: adapters store the state when they answer and restore it when
//! the client's history comes back without it.
//!
//! It is per process: behind a load balancer, give a conversation's requests session affinity or
//! have clients send `reasoning_content`/`reasoning_details` back themselves.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ReasoningCache {
    inner: Mutex<Inner>,
}

impl ReasoningCache {
    pub fn put(&self, key: &str, value: Value) {
        self.put_many([key], value);
    }

    /// Stores one value under every key, held once however many keys there are: an answer with
    /// many tool calls must not multiply its thinking in memory.
    pub fn put_many<K: AsRef<str>>(&self, keys: impl IntoIterator<Item = K>, value: Value) {
        let value = Arc::new(value);
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
