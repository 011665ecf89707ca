//! The `Admin` service's handling of API-key limits and the per-key usage filter, over a real
//! SQLite store.

use std::sync::Arc;

use super::*;
use crate::crypto::MasterKey;
use crate::store::SqliteStore;

async fn service() -> (AdminService, Arc<ControlPlane>) {
    let path = std::env::temp_dir().join(format!("tr-admin-{}/config.db", uuid::Uuid::new_v4()));
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let cp = ControlPlane::open(store, MasterKey::from_bytes(&[3; 32]))
        .await
        .unwrap();
    (AdminService::new(cp.clone()), cp)
}

fn limits(rpm: u32, budget_usd: f64, period: &str) -> Limits {
    Limits {
        rpm,
        budget_usd,
        budget_period: period.into(),
        ..Default::default()
    }
}

fn key_named(cp: &ControlPlane, name: &str) -> ApiKey {
    let snapshot = cp.snapshot();
    let key = snapshot.api_keys.iter().find(|k| k.name == name);
    key.cloned().unwrap()
}

#[tokio::test]
async fn create_keeps_the_limits_and_validates_them() {
    let (admin, cp) = service().await;
    let model_limit = ModelLimit {
        model: "gpt-4o*".into(),
        limits: Some(limits(20, 0.0, "")),
    };
    let created = admin
        .create_api_key(Request::new(ApiKeyCreate {
            name: "team-a".into(),
            limits: Some(limits(60, 50.0, "month")),
            user_limits: Some(limits(10, 1.0, "day")),
            model_limits: vec![model_limit.clone()],
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    let shown = created.api_key.unwrap();
    assert_eq!(shown.limits, Some(limits(60, 50.0, "month")));
    let stored = key_named(&cp, "team-a");
    assert_eq!(stored.user_limits, Some(limits(10, 1.0, "day")));
    assert_eq!(stored.model_limits, [model_limit]);

    let err = admin
        .create_api_key(Request::new(ApiKeyCreate {
            name: "team-b".into(),
            limits: Some(limits(0, 5.0, "")),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message()
            .starts_with("api_keys[team-b].limits.budget_period: is required"),
        "{}",
        err.message()
    );
    assert!(cp.snapshot().api_keys.iter().all(|k| k.name != "team-b"));
}

#[tokio::test]
async fn update_replaces_the_limits_and_keeps_the_hash() {
    let (admin, cp) = service().await;
    admin
        .create_api_key(Request::new(ApiKeyCreate {
            name: "team-a".into(),
            limits: Some(limits(60, 0.0, "")),
            model_limits: vec![ModelLimit {
                model: "a*".into(),
                limits: Some(limits(1, 0.0, "")),
            }],
            ..Default::default()
        }))
        .await
        .unwrap();
    let before = key_named(&cp, "team-a");

    let wanted = ApiKey {
        name: "team-a".into(),
        sha256: "f".repeat(64),
        limits: Some(limits(0, 9.5, "week")),
        user_limits: Some(limits(5, 0.0, "")),
        ..Default::default()
    };
    admin
        .update_api_key(Request::new(ApiKeyWrite {
            api_key: Some(wanted),
            expected_version: 0,
        }))
        .await
        .unwrap();
    let after = key_named(&cp, "team-a");
    assert_eq!(after.sha256, before.sha256, "the hash cannot change");
    assert_eq!(after.limits, Some(limits(0, 9.5, "week")));
    assert_eq!(after.user_limits, Some(limits(5, 0.0, "")));
    assert!(after.model_limits.is_empty(), "not sent: cleared");

    let bad = ApiKey {
        name: "team-a".into(),
        user_limits: Some(Limits {
            rpm_burst: 3,
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = admin
        .update_api_key(Request::new(ApiKeyWrite {
            api_key: Some(bad),
            expected_version: 0,
        }))
        .await
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("api_keys[team-a].user_limits.rpm_burst"),
        "{}",
        err.message()
    );
    assert_eq!(key_named(&cp, "team-a").limits, after.limits);
}

#[tokio::test]
async fn usage_can_be_read_for_one_key() {
    let (admin, cp) = service().await;
    let record = |key: &str, cost: f64| UsageRecord {
        request_id: format!("{key}-{cost}"),
        unix_ms: 1000,
        api_key: key.into(),
        cost_usd: cost,
        completed: true,
        status: 200,
        ..Default::default()
    };
    let records = vec![record("a", 1.0), record("a", 2.0), record("b", 4.0)];
    cp.record_usage(records.into()).await.unwrap();
    let report = admin
        .get_usage(Request::new(UsageQuery {
            api_key: "a".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.rows.len(), 1);
    assert_eq!(report.rows[0].requests, 2);
    assert!((report.rows[0].cost_usd - 3.0).abs() < 1e-9);
}
