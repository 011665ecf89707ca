//! Which data planes are connected and which version each one serves (from their ACKs and NACKs).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use tokenrouter_proto::v1::{AckRequest, DataPlaneStatus};

/// How many disconnected data planes are remembered before the oldest are forgotten.
const MAX_REMEMBERED: usize = 1024;

#[derive(Debug, Default)]
struct Entry {
    status: DataPlaneStatus,
    /// Counts Watch streams, so a late disconnect of an old stream does not mark a new one gone.
    stream: u64,
}

/// Shared table of data planes, updated by the discovery service.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Registry {
    /// Records a new Watch stream and returns its stream number.
    pub fn connected(&self, node_id: &str, serving_version: u64) -> u64 {
        let Ok(mut entries) = self.entries.lock() else {
            return 0;
        };
        if entries.len() >= MAX_REMEMBERED && !entries.contains_key(node_id) {
            let oldest = entries
                .iter()
                .filter(|(_, e)| !e.status.connected)
                .min_by_key(|(_, e)| e.status.last_seen_unix_ms)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                entries.remove(&k);
            }
        }
        let entry = entries.entry(node_id.to_string()).or_default();
        entry.stream += 1;
        entry.status.node_id = node_id.to_string();
        entry.status.connected = true;
        if entry.status.serving_version == 0 {
            entry.status.serving_version = serving_version;
        }
        entry.status.last_seen_unix_ms = now_ms();
        entry.stream
    }

    /// Records the end of stream number `stream` of a data plane.
    pub fn disconnected(&self, node_id: &str, stream: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if let Some(entry) = entries.get_mut(node_id).filter(|e| e.stream == stream) {
            entry.status.connected = false;
            entry.status.last_seen_unix_ms = now_ms();
        }
    }

    /// Records an ACK (empty error) or a NACK.
    pub fn acked(&self, ack: &AckRequest) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let Some(entry) = entries.get_mut(&ack.node_id) else {
            return;
        };
        entry.status.serving_version = ack.version;
        entry.status.last_seen_unix_ms = now_ms();
        if ack.error.is_empty() {
            if ack.version >= entry.status.rejected_version {
                entry.status.last_error.clear();
                entry.status.rejected_version = 0;
            }
        } else {
            entry.status.last_error = ack.error.chars().take(1024).collect();
            entry.status.rejected_version = ack.rejected_version;
        }
    }

    /// How many data planes are connected now.
    pub fn connected_count(&self) -> u32 {
        self.entries.lock().map_or(0, |e| {
            e.values().filter(|e| e.status.connected).count() as u32
        })
    }

    /// Every known data plane, sorted by id.
    pub fn list(&self) -> Vec<DataPlaneStatus> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = entries.values().map(|e| e.status.clone()).collect();
        out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_acks_nacks_and_reconnects() {
        let r = Registry::default();
        let first = r.connected("dp1", 0);
        r.acked(&AckRequest {
            node_id: "dp1".into(),
            version: 3,
            ..Default::default()
        });
        r.acked(&AckRequest {
            node_id: "dp1".into(),
            version: 3,
            error: "bad".into(),
            rejected_version: 4,
            ..Default::default()
        });
        let s = &r.list()[0];
        assert_eq!(
            (s.serving_version, s.rejected_version, s.last_error.as_str()),
            (3, 4, "bad")
        );
        let second = r.connected("dp1", 3);
        r.disconnected("dp1", first);
        assert!(
            r.list()[0].connected,
            "an old stream's end must not hide the new one"
        );
        r.disconnected("dp1", second);
        assert!(!r.list()[0].connected);
        r.acked(&AckRequest {
            node_id: "dp1".into(),
            version: 5,
            ..Default::default()
        });
        assert!(r.list()[0].last_error.is_empty());
    }
}
