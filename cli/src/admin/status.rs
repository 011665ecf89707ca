//! `tokenrouter snapshot` and `tokenrouter data-planes`: what the control plane serves, and to whom.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokenrouter_proto::v1::{
    DataPlaneStatus, GetSnapshotRequest, ListDataPlanesRequest, ListDataPlanesResponse, Snapshot,
};

use super::client::{Client, call};
use super::output::{Printer, Table, json_list, or_dash};

/// The whole snapshot as JSON, built from the same per-resource JSON the list commands print, so
/// credential secrets are left out here too.
pub(super) fn snapshot_json(snapshot: &Snapshot) -> Value {
    json!({
        "version": snapshot.version,
        "epoch": snapshot.epoch,
        "content_hash": snapshot.content_hash,
        "providers": json_list(&snapshot.providers),
        "credentials": json_list(&snapshot.credentials),
        "api_keys": json_list(&snapshot.api_keys),
        "routing_rules": json_list(&snapshot.routing_rules),
        "fallback_policies": json_list(&snapshot.fallback_policies),
        "models": json_list(&snapshot.models),
    })
}

/// The snapshot summary for people: identity and how many of each resource it holds.
fn snapshot_summary(snapshot: &Snapshot) -> String {
    let mut table = Table::default();
    let mut field = |name: &str, value: String| table.row(vec![name.to_string(), value]);
    field("version", snapshot.version.to_string());
    field("epoch", or_dash(&snapshot.epoch));
    field("content hash", or_dash(&snapshot.content_hash));
    field("providers", snapshot.providers.len().to_string());
    field("credentials", snapshot.credentials.len().to_string());
    field("api keys", snapshot.api_keys.len().to_string());
    field("routing rules", snapshot.routing_rules.len().to_string());
    field(
        "fallback policies",
        snapshot.fallback_policies.len().to_string(),
    );
    field("models", snapshot.models.len().to_string());
    table.render()
}

/// Prints the current snapshot (`GetSnapshot`).
pub(super) async fn snapshot(client: &mut Client, printer: &mut Printer<'_>) -> anyhow::Result<()> {
    let snapshot = call(client.get_snapshot(GetSnapshotRequest {})).await?;
    if printer.json() {
        printer.value(&snapshot_json(&snapshot))
    } else {
        printer.text(&snapshot_summary(&snapshot))
    }
}

/// One data plane as JSON, fields as in the proto.
fn data_plane_json(status: &DataPlaneStatus) -> Value {
    json!({
        "node_id": status.node_id,
        "connected": status.connected,
        "serving_version": status.serving_version,
        "last_error": status.last_error,
        "rejected_version": status.rejected_version,
        "last_seen_unix_ms": status.last_seen_unix_ms,
        "control_plane": status.control_plane,
    })
}

/// How long ago `then_ms` was, coarsely (`4s ago`, `3m ago`, `2h ago`, `5d ago`); `-` if never.
fn ago(now_ms: i64, then_ms: i64) -> String {
    if then_ms <= 0 {
        return "-".to_string();
    }
    let secs = (now_ms - then_ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// The data-plane table for people, relative to `now_ms`.
fn data_planes_table(response: &ListDataPlanesResponse, now_ms: i64) -> String {
    if response.data_planes.is_empty() {
        return format!(
            "no data planes (control plane at version {})\n",
            response.version
        );
    }
    let mut table = Table::with_headers(&[
        "NODE",
        "CONNECTED",
        "CONTROL PLANE",
        "SERVING",
        "LAST SEEN",
        "LAST ERROR",
    ]);
    for status in &response.data_planes {
        let serving = match status.serving_version {
            0 => "-".to_string(),
            v if v == response.version => format!("{v} (current)"),
            v => v.to_string(),
        };
        let last_error = if status.last_error.is_empty() {
            "-".to_string()
        } else {
            format!(
                "rejected {}: {}",
                status.rejected_version, status.last_error
            )
        };
        table.row(vec![
            status.node_id.clone(),
            if status.connected { "yes" } else { "no" }.to_string(),
            if status.control_plane.is_empty() {
                "-".to_string()
            } else {
                status.control_plane.clone()
            },
            serving,
            ago(now_ms, status.last_seen_unix_ms),
            last_error,
        ]);
    }
    let mut text = table.render();
    text.push_str(&format!("control plane version {}\n", response.version));
    text
}

/// Prints the data planes the control plane knows (`ListDataPlanes`).
pub(super) async fn data_planes(
    client: &mut Client,
    printer: &mut Printer<'_>,
) -> anyhow::Result<()> {
    let response = call(client.list_data_planes(ListDataPlanesRequest {})).await?;
    if printer.json() {
        let planes: Vec<Value> = response.data_planes.iter().map(data_plane_json).collect();
        printer.value(&json!({ "data_planes": planes, "version": response.version }))
    } else {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        printer.text(&data_planes_table(&response, now_ms))
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use tokenrouter_proto::v1::{Credential, Provider};

    fn sample() -> Snapshot {
        Snapshot {
            version: 12,
            epoch: "e1".into(),
            content_hash: "abc".into(),
            providers: vec![Provider {
                name: "openai".into(),
                ..Default::default()
            }],
            credentials: vec![Credential {
                name: "c".into(),
                provider: "openai".into(),
                secret: "canary-secret".into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn snapshot_summary_lists_identity_and_counts() {
        let text = snapshot_summary(&sample());
        assert!(
            text.starts_with("version            12\nepoch              e1\n"),
            "{text}"
        );
        assert!(text.contains("credentials        1\n"), "{text}");
        assert!(text.contains("fallback policies  0\n"), "{text}");
        assert!(text.ends_with("models             0\n"), "{text}");
    }

    #[test]
    fn snapshot_json_has_everything_but_secrets() {
        let value = snapshot_json(&sample());
        assert_eq!(value["version"], 12);
        assert_eq!(value["providers"][0]["name"], "openai");
        assert_eq!(
            value["credentials"][0],
            json!({"name": "c", "provider": "openai"})
        );
        assert_eq!(value["api_keys"], json!([]));
        assert_eq!(value["models"], json!([]));
        assert!(!value.to_string().contains("canary-secret"));
    }

    #[test]
    fn ages_are_coarse() {
        assert_eq!(ago(10_000, 0), "-");
        assert_eq!(ago(10_000, 6_000), "4s ago");
        assert_eq!(ago(1_000_000, 800_000), "3m ago");
        assert_eq!(ago(10_000_000, 2_000_000), "2h ago");
        assert_eq!(ago(500_000_000, 1), "5d ago");
        assert_eq!(ago(1_000, 5_000), "0s ago");
    }

    #[test]
    fn data_plane_table_and_json() {
        let response = ListDataPlanesResponse {
            data_planes: vec![
                DataPlaneStatus {
                    node_id: "dp-1".into(),
                    connected: true,
                    serving_version: 12,
                    last_seen_unix_ms: 9_000,
                    control_plane: "cp-a1".into(),
                    ..Default::default()
                },
                DataPlaneStatus {
                    node_id: "dp-2".into(),
                    serving_version: 11,
                    last_error: "bad base_url".into(),
                    rejected_version: 12,
                    ..Default::default()
                },
            ],
            version: 12,
        };
        assert_eq!(
            data_planes_table(&response, 10_000),
            "NODE  CONNECTED  CONTROL PLANE  SERVING       LAST SEEN  LAST ERROR\n\
             dp-1  yes        cp-a1          12 (current)  1s ago     -\n\
             dp-2  no         -              11            -          rejected 12: bad base_url\n\
             control plane version 12\n"
        );
        assert_eq!(
            data_plane_json(&response.data_planes[1])["rejected_version"],
            12
        );
    }
}
