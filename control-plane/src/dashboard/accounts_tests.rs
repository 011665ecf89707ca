//! The dashboard's users, keys and fleet over the API, on SQLite and PostgreSQL: dashboard users
//! sign in with argon2id-checked passwords (a viewer reads but cannot write; a removed user's
//! session ends; a changed role applies at once; repeated failures lock the name out for a
//! while), key limits and current use, a request's attempts and routing, and the providers'
//! live signals as the data planes report them.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use tokenrouter_proto::v1::admin_server::Admin;
use tokenrouter_proto::v1::{
    AckRequest, CandidateSignals, DashboardUserDelete, DashboardUserWrite, StatusReport,
    UsageRecord,
};
use tonic::Request;

use super::tests::{Client, TOKEN, now_ms, record, sqlite};
use crate::AdminService;
use crate::store::Store;

async fn put_user(admin: &AdminService, name: &str, role: &str, password: &str, replace: bool) {
    admin
        .put_dashboard_user(Request::new(DashboardUserWrite {
            name: name.into(),
            role: role.into(),
            password: password.into(),
            replace,
        }))
        .await
        .unwrap();
}

async fn users_and_roles(store: Arc<dyn Store>) {
    let mut viewer = Client::new(store.clone(), Some(TOKEN)).await;
    let admin = AdminService::new(viewer.cp.clone());
    // The Admin calls check what they store.
    for (name, role, password) in [
        ("bad name!", "viewer", "long enough password"),
        ("vera", "owner", "long enough password"),
        ("vera", "viewer", "short"),
    ] {
        let e = admin
            .put_dashboard_user(Request::new(DashboardUserWrite {
                name: name.into(),
                role: role.into(),
                password: password.into(),
                replace: false,
            }))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{name} {role}");
    }
    let version = viewer.cp.snapshot().version;
    put_user(&admin, "vera", "viewer", "vera's long password", false).await;
    let again = admin
        .put_dashboard_user(Request::new(DashboardUserWrite {
            name: "vera".into(),
            role: "admin".into(),
            password: "another long password".into(),
            replace: false,
        }))
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::AlreadyExists);
    assert_eq!(
        viewer.cp.snapshot().version,
        version,
        "users are not configuration"
    );
    let stored = store.dashboard_user("vera".into()).await.unwrap().unwrap();
    assert!(
        stored.password_hash.starts_with("$argon2id$"),
        "only the hash is kept"
    );
    let listed = admin
        .list_dashboard_users(Request::new(Default::default()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.users.len(), 1);
    assert!(
        !format!("{listed:?}").contains("argon2"),
        "a list never shows hashes"
    );

    // A wrong password and an unknown user answer alike.
    let (s, wrong) = viewer
        .sign_in_with(json!({"user": "vera", "password": "not vera's password"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, unknown) = viewer
        .sign_in_with(json!({"user": "nobody", "password": "not vera's password"}))
        .await;
    assert_eq!((s, &unknown), (StatusCode::UNAUTHORIZED, &wrong));
    let (s, me) = viewer
        .sign_in_with(json!({"user": "vera", "password": "vera's long password"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{me}");
    let (s, me) = viewer.get("/api/me").await;
    assert_eq!(
        (s, me["user"].as_str(), me["role"].as_str()),
        (StatusCode::OK, Some("vera"), Some("viewer"))
    );
    assert_eq!(
        viewer.get("/api/keys").await.0,
        StatusCode::OK,
        "a viewer reads"
    );
    let (s, e, _) = viewer
        .call("POST", "/api/keys", Some(json!({"name": "by-vera"})), true)
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("read_only"))
    );

    // Promoted, the same session may write at once; removed, it is over.
    put_user(&admin, "vera", "admin", "vera's long password", true).await;
    let (s, created, _) = viewer
        .call("POST", "/api/keys", Some(json!({"name": "by-vera"})), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    admin
        .delete_dashboard_user(Request::new(DashboardUserDelete {
            name: "vera".into(),
        }))
        .await
        .unwrap();
    assert_eq!(viewer.get("/api/me").await.0, StatusCode::UNAUTHORIZED);
    let gone = admin
        .delete_dashboard_user(Request::new(DashboardUserDelete {
            name: "vera".into(),
        }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Five failures in a row lock the name out, even with the right password after.
    put_user(&admin, "olga", "viewer", "olga's long password", false).await;
    let mut guesser = Client::new(store, Some(TOKEN)).await;
    for _ in 0..5 {
        let (s, _) = guesser
            .sign_in_with(json!({"user": "olga", "password": "a wrong guess here"}))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, e) = guesser
        .sign_in_with(json!({"user": "olga", "password": "olga's long password"}))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts"))
    );
    let (s, _) = guesser.sign_in_with(json!({"user": "olga"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a password is needed");
}

async fn keys_requests_and_providers(store: Arc<dyn Store>) {
    let mut c = Client::new(store, Some(TOKEN)).await;
    c.sign_in_with(json!({"token": TOKEN})).await;
    let (s, created, _) = c
        .call("POST", "/api/keys", Some(json!({"name": "team-a"})), true)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let version = c.cp.snapshot().version;
    let limits = json!({"rpm": 60, "tpm": 10000, "budget_usd": 5.0, "budget_period": "day"});
    let (s, set, _) = c
        .call(
            "PUT",
            "/api/keys/team-a/limits",
            Some(limits.clone()),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no CSRF token: {set}");
    let (s, set, _) = c
        .call("PUT", "/api/keys/team-a/limits", Some(limits), true)
        .await;
    assert_eq!(s, StatusCode::OK, "{set}");
    assert!(
        set["version"].as_u64().unwrap() > version,
        "an ordinary Admin write"
    );
    let key =
        c.cp.snapshot()
            .api_keys
            .iter()
            .find(|k| k.name == "team-a")
            .cloned()
            .unwrap();
    let l = key.limits.unwrap();
    assert_eq!((l.rpm, l.tpm, l.budget_period.as_str()), (60, 10000, "day"));
    let (s, bad, _) = c
        .call(
            "PUT",
            "/api/keys/team-a/limits",
            Some(json!({"budget_usd": 5.0})),
            true,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a budget needs its period: {bad}"
    );
    let (s, _, _) = c
        .call(
            "PUT",
            "/api/keys/nobody/limits",
            Some(json!({"rpm": 1})),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Current use: the last minute from the records, today and the budget from the rollups.
    let now = now_ms();
    let mut recent: Vec<UsageRecord> = (0..4)
        .map(|i| UsageRecord {
            unix_ms: now - 1_000 - i,
            ..record(i, now)
        })
        .collect();
    for r in &mut recent {
        r.api_key = "team-a".into();
    }
    recent[1].record_id = "failed-over".into();
    recent[1].provider = "openai".into();
    recent[1].attempts = 2;
    recent[1].routing =
        r#"{"mode":"auto:cost","chosen":"openai/m","runners_up":["anthropic/m"],"reason":"cheapest"}"#.into();
    recent[1].failed_attempts =
        r#"[{"provider":"anthropic","model":"m","error":"503","ms":40}]"#.into();
    c.cp.record_usage(recent.into()).await.unwrap();
    let (_, keys) = c.get("/api/keys").await;
    let a = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "team-a")
        .unwrap();
    let u = &a["usage"];
    assert_eq!(
        (u["minute_requests"].as_u64(), u["minute_tokens"].as_u64()),
        (Some(4), Some(480)),
        "{a}"
    );
    assert_eq!(u["today_requests"].as_i64(), Some(4));
    assert_eq!(u["budget"]["period"], "day");
    assert!((u["budget"]["spent_usd"].as_f64().unwrap() - 0.04).abs() < 1e-9);
    assert_eq!(u["budget"]["limit_usd"], 5.0);
    let (s, _, _) = c.call("POST", "/api/keys/team-a/disable", None, true).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = c.call("POST", "/api/keys/team-a/enable", None, true).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        c.cp.snapshot()
            .api_keys
            .iter()
            .any(|k| k.name == "team-a" && !k.disabled)
    );

    // A request's detail: why it went where it went, every attempt, the key's limits.
    let (s, one) = c.get("/api/requests/failed-over").await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["routing"]["reason"], "cheapest");
    assert_eq!(one["routing"]["runners_up"], json!(["anthropic/m"]));
    let log = one["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2, "{one}");
    assert_eq!(
        (
            log[0]["provider"].as_str(),
            log[0]["outcome"].as_str(),
            log[0]["error"].as_str()
        ),
        (Some("anthropic"), Some("failed"), Some("503"))
    );
    assert_eq!(
        (log[1]["provider"].as_str(), log[1]["outcome"].as_str()),
        (Some("openai"), Some("answered"))
    );
    assert_eq!(one["limits"]["key"]["rpm"], 60);
    assert_eq!(one["limits"]["refused"], false);

    // Providers: what each data plane reported, and the configured providers it has not used.
    let planes = &c.cp.data_planes;
    planes.connected("dp-1", 0);
    planes.acked(&AckRequest {
        node_id: "dp-1".into(),
        version: 3,
        ..Default::default()
    });
    planes.reported(StatusReport {
        node_id: "dp-1".into(),
        candidates: vec![CandidateSignals {
            provider: "openai".into(),
            model: "gpt-4o".into(),
            credential: "main".into(),
            breaker: "open".into(),
            latency_ms: Some(812.0),
            error_rate: 0.6,
            headroom: Some(0.25),
            samples: 9,
            ..Default::default()
        }],
    });
    // A report for a data plane that is not connected creates nothing.
    planes.reported(StatusReport {
        node_id: "ghost".into(),
        candidates: vec![],
    });
    let (s, p) = c.get("/api/providers").await;
    assert_eq!(s, StatusCode::OK, "{p}");
    let dps = p["data_planes"].as_array().unwrap();
    assert_eq!(dps.len(), 1, "{p}");
    let row = &dps[0]["providers"][0];
    assert_eq!(
        (
            row["name"].as_str(),
            row["breaker"].as_str(),
            row["samples"].as_u64()
        ),
        (Some("openai"), Some("open"), Some(9))
    );
    assert_eq!(row["headroom"], 0.25);
    assert!(dps[0]["signals_unix_ms"].as_i64().unwrap() > 0);
}

#[tokio::test]
async fn users_and_roles_on_sqlite() {
    users_and_roles(sqlite().await).await;
}

#[tokio::test]
async fn users_and_roles_on_postgres() {
    let Some(store) = crate::store::test_postgres().await else {
        return eprintln!("skipped: TOKENROUTER_TEST_POSTGRES_URL unset");
    };
    users_and_roles(store).await;
}

#[tokio::test]
async fn keys_requests_and_providers_on_sqlite() {
    keys_requests_and_providers(sqlite().await).await;
}

#[tokio::test]
async fn keys_requests_and_providers_on_postgres() {
    let Some(store) = crate::store::test_postgres().await else {
        return eprintln!("skipped: TOKENROUTER_TEST_POSTGRES_URL unset");
    };
    keys_requests_and_providers(store).await;
}
