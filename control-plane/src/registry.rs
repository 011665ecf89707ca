//! Which data planes are connected and which version each one serves (from their ACKs and NACKs):
//! this copy's own table, written to the store's shared table so that copies sharing a store list
//! each data plane once, whichever copy it is on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use tokenrouter_proto::v1::{AckRequest, CandidateSignals, DataPlaneStatus, StatusReport};

use crate::store::{DataPlaneRow, STALE_MS};

/// How many disconnected data planes are remembered before the oldest are forgotten.
const MAX_REMEMBERED: usize = 1024;
/// Candidates kept of one data plane's status report.
const MAX_CANDIDATES: usize = 512;

#[derive(Debug, Default)]
struct Entry {
    status: DataPlaneStatus,
    /// Counts Watch streams, so a late disconnect of an old stream does not mark a new one gone.
    stream: u64,
    /// Changed since it was last written to the store.
    changed: bool,
}

/// Shared table of data planes, updated by the discovery service.
#[derive(Debug, Default)]
pub struct Registry {
    entries: Mutex<HashMap<String, Entry>>,
    /// Data planes connected to any copy, as of the last read of the shared table.
    everywhere: AtomicU32,
}

pub(crate) fn now_ms() -> i64 {
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
        entry.changed = true;
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
            entry.changed = true;
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
        entry.changed = true;
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

    /// Records a data plane's live signals (only of one connected here: a report cannot create
    /// an entry), capped in count and text so no data plane can grow the table without bound.
    pub fn reported(&self, report: StatusReport) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let Some(entry) = entries.get_mut(&report.node_id) else {
            return;
        };
        let cap = |s: &mut String| s.truncate(s.floor_char_boundary(256));
        let mut candidates: Vec<CandidateSignals> = report.candidates;
        candidates.truncate(MAX_CANDIDATES);
        for c in &mut candidates {
            for s in [
                &mut c.provider,
                &mut c.model,
                &mut c.credential,
                &mut c.breaker,
            ] {
                cap(s);
            }
        }
        entry.changed = true;
        entry.status.candidates = candidates;
        entry.status.signals_unix_ms = now_ms();
        entry.status.last_seen_unix_ms = entry.status.signals_unix_ms;
    }

    /// How many data planes are connected now, to this copy or (as last read) to any copy.
    pub fn connected_count(&self) -> u32 {
        let here = self.entries.lock().map_or(0, |e| {
            e.values().filter(|e| e.status.connected).count() as u32
        });
        here.max(self.everywhere.load(Ordering::Relaxed))
    }

    /// Every data plane this copy knows, sorted by id.
    pub fn list(&self) -> Vec<DataPlaneStatus> {
        let Ok(entries) = self.entries.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = entries.values().map(|e| e.status.clone()).collect();
        out.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        out
    }

    /// The rows to write to the shared table: every connected data plane (a heartbeat) and every
    /// one that changed since the last write.
    pub fn rows_to_save(&self, owner: &str) -> Vec<DataPlaneRow> {
        let Ok(mut entries) = self.entries.lock() else {
            return Vec::new();
        };
        let now = now_ms();
        entries
            .values_mut()
            .filter(|e| e.changed || e.status.connected)
            .map(|e| {
                e.changed = false;
                e.status.control_plane = owner.to_string();
                DataPlaneRow {
                    node_id: e.status.node_id.clone(),
                    owner: owner.to_string(),
                    connected: e.status.connected,
                    seen_ms: if e.status.connected {
                        now
                    } else {
                        e.status.last_seen_unix_ms
                    },
                    body: e.status.encode_to_vec(),
                }
            })
            .collect()
    }

    /// Marks rows as changed again after a failed write.
    pub fn unsaved(&self, rows: &[DataPlaneRow]) {
        if let Ok(mut entries) = self.entries.lock() {
            for r in rows {
                if let Some(e) = entries.get_mut(&r.node_id) {
                    e.changed = true;
                }
            }
        }
    }

    /// This copy's table merged with the shared one, each data plane once: a connection open here
    /// wins; otherwise the shared row (shown disconnected once its copy stopped refreshing it).
    pub fn merged(&self, owner: &str, shared: &[DataPlaneRow]) -> Vec<DataPlaneStatus> {
        let now = now_ms();
        let mut all: HashMap<String, DataPlaneStatus> = HashMap::new();
        for row in shared {
            let Ok(mut status) = DataPlaneStatus::decode(row.body.as_slice()) else {
                continue;
            };
            status.control_plane = row.owner.clone();
            status.connected = row.connected && now - row.seen_ms < STALE_MS;
            all.insert(row.node_id.clone(), status);
        }
        for mut status in self.list() {
            status.control_plane = owner.to_string();
            let keep_shared = all.get(&status.node_id).is_some_and(|s| {
                !status.connected && (s.connected || s.last_seen_unix_ms > status.last_seen_unix_ms)
            });
            if !keep_shared {
                all.insert(status.node_id.clone(), status);
            }
        }
        self.everywhere.store(
            all.values().filter(|s| s.connected).count() as u32,
            Ordering::Relaxed,
        );
        let mut out: Vec<_> = all.into_values().collect();
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

    #[test]
    fn lists_each_data_plane_once_across_copies() {
        let here = Registry::default();
        here.connected("dp-here", 1);
        here.connected("dp-moved", 1);
        here.disconnected("dp-moved", 1);
        let there = Registry::default();
        there.connected("dp-moved", 1);
        there.connected("dp-there", 1);
        let mut shared = here.rows_to_save("cp-a");
        assert_eq!(shared.len(), 2, "{shared:?}");
        shared.retain(|r| r.node_id != "dp-moved");
        shared.extend(there.rows_to_save("cp-b"));
        let list = here.merged("cp-a", &shared);
        let seen: Vec<_> = list
            .iter()
            .map(|s| (s.node_id.as_str(), s.connected, s.control_plane.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("dp-here", true, "cp-a"),
                ("dp-moved", true, "cp-b"),
                ("dp-there", true, "cp-b")
            ]
        );
        assert_eq!(here.connected_count(), 3);
        assert!(
            here.rows_to_save("cp-a")
                .iter()
                .all(|r| r.node_id == "dp-here"),
            "only heartbeats left"
        );
    }
}
