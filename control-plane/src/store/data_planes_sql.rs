//! The data-plane table both backends share, so that every control-plane copy on one store lists
//! every data plane once, whichever copy it is connected to.

/// The DDL, with the backend's binary type.
pub fn create_table(blob: &str) -> String {
    format!(
        "CREATE TABLE tokenrouter_data_planes (node_id TEXT PRIMARY KEY, owner TEXT NOT NULL,
           connected BOOLEAN NOT NULL, seen_ms BIGINT NOT NULL, body {blob} NOT NULL)"
    )
}

/// Records one copy's view of a data plane. A copy's "disconnected" never overwrites another
/// copy's fresher "connected" (the data plane moved on; the old copy learns of it late).
pub fn upsert(p: impl Fn(usize) -> String) -> String {
    format!(
        "INSERT INTO tokenrouter_data_planes (node_id, owner, connected, seen_ms, body)
         VALUES ({}, {}, {}, {}, {})
         ON CONFLICT (node_id) DO UPDATE SET owner = excluded.owner, connected = excluded.connected,
           seen_ms = excluded.seen_ms, body = excluded.body
         WHERE excluded.connected OR tokenrouter_data_planes.owner = excluded.owner
           OR NOT tokenrouter_data_planes.connected
           OR tokenrouter_data_planes.seen_ms < excluded.seen_ms - {}",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        super::STALE_MS
    )
}

pub const SELECT: &str =
    "SELECT node_id, owner, connected, seen_ms, body FROM tokenrouter_data_planes ORDER BY node_id";

/// Forgets all but the 1,024 most recently seen disconnected data planes; `all` is the backend's
/// "no limit" (`ALL` in PostgreSQL, `-1` in SQLite).
pub fn prune(all: &str) -> String {
    format!(
        "DELETE FROM tokenrouter_data_planes WHERE node_id IN (
           SELECT node_id FROM tokenrouter_data_planes WHERE NOT connected ORDER BY seen_ms DESC
           LIMIT {all} OFFSET 1024)"
    )
}
