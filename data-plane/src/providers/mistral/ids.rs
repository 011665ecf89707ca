//! Mistral's tool-call ids: exactly nine ASCII letters or digits, on assistant `tool_calls[].id`
//! and tool `tool_call_id` alike (error 3280 otherwise). Ids from other providers (`call_…`,
//! `toolu_…`) are hashed to nine characters, so the same id becomes the same value on every turn
//! of a conversation, in every process; Mistral's own ids are already valid and are kept, so
//! they round-trip unchanged.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use sha2::{Digest, Sha256};

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Length of a Mistral tool-call id.
pub const LEN: usize = 9;

/// Whether Mistral accepts `id` as it is.
pub fn is_valid(id: &str) -> bool {
    id.len() == LEN && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The nine-character id for a foreign id (`salt` > 0 only to step around a collision).
fn hashed(id: &str, salt: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(id.as_bytes());
    if salt > 0 {
        hasher.update(salt.to_be_bytes());
    }
    let digest = hasher.finalize();
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    // 62^9 < 2^64, so nine base-62 digits of the first 64 bits are uniform enough.
    let mut n = u64::from_be_bytes(head);
    let mut out = String::with_capacity(LEN);
    for _ in 0..LEN {
        out.push(char::from(ALPHABET[(n % 62) as usize]));
        n /= 62;
    }
    out
}

/// What Mistral is sent for `id`, without regard to other ids of the conversation.
pub fn to_mistral(id: &str) -> String {
    if is_valid(id) {
        id.to_string()
    } else {
        hashed(id, 0)
    }
}

/// The ids of one conversation, mapped so that no two different ids meet as one.
#[derive(Debug, Default)]
pub struct IdMap {
    mapped: HashMap<String, String>,
}

impl IdMap {
    /// Maps every tool-call id in `messages`. Valid ids are reserved first; a foreign id whose
    /// hash is taken (about one chance in 10^16) is re-hashed, in order of first appearance, so
    /// the choice is stable as the conversation grows.
    pub fn for_messages(messages: &[Value]) -> IdMap {
        let ids: Vec<&str> = messages.iter().flat_map(ids_of).collect();
        let mut taken: HashSet<String> = ids
            .iter()
            .filter(|id| is_valid(id))
            .map(|id| id.to_string())
            .collect();
        let mut map = IdMap::default();
        for id in ids {
            if is_valid(id) || map.mapped.contains_key(id) {
                continue;
            }
            let mut salt = 0;
            let mut candidate = hashed(id, salt);
            while taken.contains(&candidate) {
                salt += 1;
                candidate = hashed(id, salt);
            }
            taken.insert(candidate.clone());
            map.mapped.insert(id.to_string(), candidate);
        }
        map
    }

    /// The id Mistral is sent for `id`.
    pub fn get(&self, id: &str) -> String {
        match self.mapped.get(id) {
            Some(m) => m.clone(),
            None => to_mistral(id),
        }
    }

    /// Rewrites the ids of one (already cleaned) message.
    pub fn apply(&self, message: &mut Value) {
        if let Some(Value::String(id)) = message.get_mut("tool_call_id") {
            *id = self.get(id);
        }
        if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
            for call in calls {
                if let Some(Value::String(id)) = call.get_mut("id") {
                    *id = self.get(id);
                }
            }
        }
    }
}

/// Every tool-call id a message carries.
fn ids_of(message: &Value) -> impl Iterator<Item = &str> {
    let calls = message
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("id").and_then(Value::as_str));
    calls.chain(message.get("tool_call_id").and_then(Value::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_ids_hash_to_nine_alphanumerics_and_native_ones_stay() {
        let a = to_mistral("call_0fypS1hVX");
        assert!(is_valid(&a), "{a}");
        assert_eq!(a, to_mistral("call_0fypS1hVX"), "deterministic");
        assert_ne!(a, to_mistral("call_0fypS1hVY"));
        assert_eq!(to_mistral("gSIMJiOkT"), "gSIMJiOkT");
        assert!(is_valid(&to_mistral("")));
        assert!(is_valid(&to_mistral("toolu_01ABCdefé")));
    }

    #[test]
    fn a_collision_steps_aside_without_moving_native_ids() {
        let native = hashed("call_x", 0);
        let messages = vec![
            serde_json::json!({"role":"tool","tool_call_id":"call_x"}),
            serde_json::json!({"role":"assistant","tool_calls":[{"id": native.clone()}]}),
        ];
        let map = IdMap::for_messages(&messages);
        assert_eq!(map.get(&native), native);
        assert_ne!(map.get("call_x"), native);
        assert!(is_valid(&map.get("call_x")));
    }
}
