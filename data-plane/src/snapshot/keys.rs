//! The API keys of one snapshot, looked up by the key a request presents: by its SHA-256 (what the
//! snapshot carries) the first time, then from a small map of keys already seen in this snapshot,
//! which skips the hash. The map belongs to the snapshot, so a key disabled or deleted is refused
//! from the first request after the swap that carries the change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

use super::runtime::KeyRt;

/// Presented keys remembered per snapshot at most; past it lookups hash every time (only keys
/// that exist are remembered, so this bounds the real keys in use, not what clients send).
pub const MAX_SEEN_KEYS: usize = 10_000;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct ApiKeys {
    by_digest: HashMap<[u8; 32], Arc<KeyRt>>,
    /// Presented key → its entry, for keys found in `by_digest`. Holds the plaintext of keys in
    /// use for the life of the snapshot, as the requests carrying them already do.
    seen: RwLock<HashMap<Box<str>, Arc<KeyRt>>>,
}

impl ApiKeys {
    pub fn new(by_digest: HashMap<[u8; 32], Arc<KeyRt>>) -> Self {
        ApiKeys {
            by_digest,
            seen: RwLock::default(),
        }
    }

    /// The key `presented` names, if the snapshot has it (disabled ones included: the caller
    /// says why it refuses them).
    pub fn find(&self, presented: &str) -> Option<Arc<KeyRt>> {
        if let Ok(seen) = self.seen.read()
            && let Some(key) = seen.get(presented)
        {
            return Some(key.clone());
        }
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let key = self.by_digest.get(&digest)?.clone();
        if let Ok(mut seen) = self.seen.write()
            && seen.len() < MAX_SEEN_KEYS
        {
            seen.insert(presented.into(), key.clone());
        }
        Some(key)
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, disabled: bool) -> Arc<KeyRt> {
        Arc::new(KeyRt {
            name: name.into(),
            disabled,
            allowed_models: vec![],
            limits: None,
            log_bodies: false,
        })
    }

    fn keys(entries: &[(&str, Arc<KeyRt>)]) -> ApiKeys {
        ApiKeys::new(
            entries
                .iter()
                .map(|(k, v)| (Sha256::digest(k.as_bytes()).into(), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn finds_by_hash_then_from_what_it_saw() {
        let keys = keys(&[("sk-a", key("a", false))]);
        assert_eq!(keys.find("sk-a").unwrap().name, "a");
        assert_eq!(keys.seen.read().unwrap().len(), 1);
        assert_eq!(keys.find("sk-a").unwrap().name, "a");
        assert!(keys.find("sk-b").is_none());
        assert_eq!(
            keys.seen.read().unwrap().len(),
            1,
            "unknown keys are not kept"
        );
    }

    #[test]
    fn a_new_snapshot_starts_with_nothing_seen() {
        let before = keys(&[("sk-a", key("a", false))]);
        assert!(!before.find("sk-a").unwrap().disabled);
        // The swap that disables it builds a new set: the old entry cannot answer.
        let after = keys(&[("sk-a", key("a", true))]);
        assert!(after.find("sk-a").unwrap().disabled);
        let gone = keys(&[]);
        assert!(gone.find("sk-a").is_none());
    }

    #[test]
    fn what_it_remembers_is_bounded() {
        let entries: Vec<(String, Arc<KeyRt>)> = (0..MAX_SEEN_KEYS + 10)
            .map(|i| (format!("sk-{i}"), key(&i.to_string(), false)))
            .collect();
        let refs: Vec<(&str, Arc<KeyRt>)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let keys = keys(&refs);
        for (k, _) in &entries {
            assert!(keys.find(k).is_some());
        }
        assert_eq!(keys.seen.read().unwrap().len(), MAX_SEEN_KEYS);
    }
}
