//! The dashboard's API over HTTP semantics (the router in process), on SQLite and PostgreSQL:
//! sign-in and sessions, CSRF on writes, bounded queries, numbers that add up to the records
//! stored, the log's cursor and filters, keys by prefix only, and the page's own headers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tokenrouter_proto::v1::UsageRecord;
use tower::ServiceExt;

use super::{DashboardConfig, app};
use crate::store::Store;
use crate::{ControlPlane, MasterKey};

pub(super) const TOKEN: &str = "dashboard-test-admin-token";

pub(super) async fn sqlite() -> Arc<dyn Store> {
    let path = std::env::temp_dir().join(format!("tr-dash-{}/db.sqlite", uuid::Uuid::new_v4()));
    crate::store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

pub(super) struct Client {
    app: axum::Router,
    cookie: Option<String>,
    csrf: Option<String>,
    pub(super) cp: Arc<ControlPlane>,
}

impl Client {
    pub(super) async fn new(store: Arc<dyn Store>, token: Option<&str>) -> Client {
        let cp = ControlPlane::open(store, MasterKey::from_bytes(&[3; 32]))
            .await
            .unwrap();
        let app = app(
            cp.clone(),
            DashboardConfig {
                admin_token: token.map(str::to_string),
            },
        );
        Client {
            app,
            cookie: None,
            csrf: None,
            cp,
        }
    }

    pub(super) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        csrf: bool,
    ) -> (StatusCode, Value, axum::http::HeaderMap) {
        let mut r = Request::builder().method(method).uri(path);
        if let Some(c) = &self.cookie {
            r = r.header(header::COOKIE, c);
        }
        if csrf && let Some(t) = &self.csrf {
            r = r.header("x-csrf-token", t);
        }
        let body = match body {
            Some(b) => {
                r = r.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(r.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, value, headers)
    }

    pub(super) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call("GET", path, None, false).await;
        (s, v)
    }

    async fn sign_in(&mut self) {
        let (status, body) = self.sign_in_with(json!({"token": TOKEN})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    /// Posts a sign-in; on success keeps the session cookie and CSRF token.
    pub(super) async fn sign_in_with(&mut self, credentials: Value) -> (StatusCode, Value) {
        let (status, body, headers) = self
            .call("POST", "/api/session", Some(credentials), false)
            .await;
        if status != StatusCode::OK {
            return (status, body);
        }
        let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        self.cookie = Some(cookie.split(';').next().unwrap().to_string());
        self.csrf = body["csrf"].as_str().map(str::to_string);
        (status, body)
    }
}

pub(super) fn record(i: i64, now: i64) -> UsageRecord {
    UsageRecord {
        request_id: format!("req-{i}"),
        record_id: format!("r{i:03}"),
        unix_ms: now - 30 * 60_000 + i * 1000,
        api_key: if i % 3 == 0 { "team-b" } else { "team-a" }.into(),
        provider: if i % 2 == 0 { "openai" } else { "anthropic" }.into(),
        model: "m".into(),
        requested_model: "auto:cost".into(),
        status: if i == 7 { 502 } else { 200 },
        prompt_tokens: 100,
        completion_tokens: 20,
        cached_tokens: 10,
        reasoning_tokens: 5,
        cost_usd: 0.01,
        latency_ms: 120,
        ttft_ms: 40,
        stream: true,
        completed: true,
        routing_mode: "auto:cost".into(),
        attempts: 1,
        user_id: "ada".into(),
        metadata_json: "{\"team\":\"x\"}".into(),
        firewall: if i == 4 {
            "emails:email:mask:input:2".into()
        } else {
            String::new()
        },
        ..Default::default()
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn every_endpoint(store: Arc<dyn Store>) {
    let mut c = Client::new(store, Some(TOKEN)).await;
    // Nothing without sign-in; a wrong token is refused.
    assert_eq!(c.get("/api/me").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(c.get("/api/overview").await.0, StatusCode::UNAUTHORIZED);
    let (s, _, _) = c
        .call(
            "POST",
            "/api/session",
            Some(json!({"token": "wrong"})),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    c.sign_in().await;
    let (s, me) = c.get("/api/me").await;
    assert_eq!((s, me["role"].as_str()), (StatusCode::OK, Some("admin")));

    let now = now_ms();
    let records: Vec<UsageRecord> = (0..12).map(|i| record(i, now)).collect();
    c.cp.record_usage(records.into()).await.unwrap();
    let from = now - 3_600_000;
    let (s, o) = c
        .get(&format!("/api/overview?from={from}&to={now}&by=key"))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["step"], "hour", "keys have no minute rollups");
    let t = &o["totals"];
    assert_eq!(
        (
            t["requests"].as_i64(),
            t["errors"].as_i64(),
            t["prompt_tokens"].as_i64()
        ),
        (Some(12), Some(1), Some(1200))
    );
    assert_eq!(
        (t["cached_tokens"].as_i64(), t["reasoning_tokens"].as_i64()),
        (Some(120), Some(60))
    );
    assert!((t["cost_usd"].as_f64().unwrap() - 0.12).abs() < 1e-9);
    assert!(
        t["latency_ms"]["p50"].as_f64().unwrap() >= 100.0
            && t["latency_ms"]["p50"].as_f64().unwrap() <= 250.0
    );
    assert!(t["ttft_ms"]["p95"].as_f64().is_some());
    let series = o["series"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{o}");
    let sum: i64 = series
        .iter()
        .flat_map(|s| s["requests"].as_array().unwrap())
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(sum, 12);
    assert_eq!(
        o["buckets"].as_array().unwrap().len(),
        o["latency"]["p50"].as_array().unwrap().len()
    );

    let (s, b) = c
        .get(&format!("/api/breakdown?from={from}&to={now}&by=provider"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let rows = b["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows.iter()
            .map(|r| r["requests"].as_i64().unwrap())
            .sum::<i64>(),
        12
    );
    let (s, csv, h) = c
        .call(
            "GET",
            &format!("/api/breakdown?from={from}&to={now}&by=requested_model&format=csv"),
            None,
            false,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        csv.as_str().unwrap().contains("\"auto:cost\",12,1,"),
        "{csv}"
    );

    // The log: newest first, pages of at most 100, a cursor, filters, never the key itself.
    let (s, page) = c
        .get(&format!("/api/requests?from={from}&to={now}&limit=5"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let rows = page["rows"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["r011", "r010", "r009", "r008", "r007"]
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = c
        .get(&format!(
            "/api/requests?from={from}&to={now}&limit=5&cursor={cursor}"
        ))
        .await;
    assert_eq!(next["rows"][0]["id"], "r006");
    let (_, errors) = c
        .get(&format!("/api/requests?from={from}&to={now}&status=error"))
        .await;
    assert_eq!(errors["rows"].as_array().unwrap().len(), 1);
    assert_eq!(errors["next_cursor"], Value::Null);
    let (_, masked) = c
        .get(&format!(
            "/api/requests?from={from}&to={now}&firewall=mask&key=team-a"
        ))
        .await;
    assert_eq!(masked["rows"][0]["id"], "r004");
    let (_, big) = c
        .get(&format!("/api/requests?from={from}&to={now}&limit=100000"))
        .await;
    assert_eq!(
        big["rows"].as_array().unwrap().len(),
        12,
        "bounded at 100, all 12 here"
    );
    let (s, one) = c.get("/api/requests/r004").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["metadata"], json!({"team": "x"}));
    assert_eq!(
        one["firewall_verdicts"][0],
        json!({"rule": "emails", "detector": "email", "action": "mask", "direction": "input", "count": 2})
    );
    assert_eq!(c.get("/api/requests/nope").await.0, StatusCode::NOT_FOUND);

    // Bounded and validated.
    for bad in [
        format!("/api/overview?from={now}&to={from}"),
        format!("/api/overview?from=0&to={now}"),
        "/api/overview?by=password".to_string(),
        "/api/overview?step=week".to_string(),
        "/api/requests?status=maybe".to_string(),
        "/api/requests?cursor=zzz".to_string(),
    ] {
        let (s, e) = c.get(&bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert!(e["error"]["message"].is_string());
    }

    // Keys: a write needs the session's CSRF token; the secret is shown once, then only a prefix.
    let version = c.cp.snapshot().version;
    let (s, _, _) = c
        .call(
            "POST",
            "/api/keys",
            Some(json!({"name": "web", "models": ["gpt-4o*"]})),
            false,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "no CSRF token");
    let (s, created, _) = c
        .call(
            "POST",
            "/api/keys",
            Some(json!({"name": "web", "models": ["gpt-4o*"]})),
            true,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 20 && secret.starts_with(created["prefix"].as_str().unwrap()));
    assert!(c.cp.snapshot().version > version, "an ordinary Admin write");
    let (_, keys) = c.get("/api/keys").await;
    assert!(!keys.to_string().contains(&secret), "{keys}");
    assert_eq!(keys["keys"][0]["models"], json!(["gpt-4o*"]));
    let (s, _, _) = c.call("POST", "/api/keys/web/disable", None, true).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        c.cp.snapshot()
            .api_keys
            .iter()
            .any(|k| k.name == "web" && k.disabled)
    );
    let (s, _, _) = c
        .call("POST", "/api/keys", Some(json!({"name": "web"})), true)
        .await;
    assert_eq!(s, StatusCode::CONFLICT);

    let (s, config) = c.get("/api/config").await;
    assert_eq!(s, StatusCode::OK);
    assert!(!config.to_string().contains(&secret));
    assert_eq!(c.get("/api/providers").await.0, StatusCode::OK);

    // Signed out, the cookie is worth nothing.
    let (s, _, _) = c.call("DELETE", "/api/session", None, true).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(c.get("/api/me").await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn every_endpoint_on_sqlite() {
    every_endpoint(sqlite().await).await;
}

#[tokio::test]
async fn every_endpoint_on_postgres() {
    let Some(store) = crate::store::test_postgres().await else {
        return eprintln!("skipped: TOKENROUTER_TEST_POSTGRES_URL unset");
    };
    every_endpoint(store).await;
}

#[tokio::test]
async fn open_mode_and_the_page() {
    let c = Client::new(sqlite().await, None).await;
    let (s, me) = c.get("/api/me").await;
    assert_eq!((s, me["auth"].as_str()), (StatusCode::OK, Some("none")));
    // Writes still need the process's CSRF token, so another site cannot post through a browser.
    let (s, _, _) = c
        .call("POST", "/api/keys", Some(json!({"name": "x"})), false)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut c = c;
    c.csrf = me["csrf"].as_str().map(str::to_string);
    let (s, _, _) = c
        .call("POST", "/api/keys", Some(json!({"name": "x"})), true)
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (s, page, h) = c.call("GET", "/", None, false).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.as_str().unwrap().contains("<html"));
    assert!(
        h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
    let (_, _, h) = c
        .call("GET", "/vendor/uPlot.iife.min.js", None, false)
        .await;
    assert!(
        h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let (s, e, _) = c.call("GET", "/api/nothing", None, false).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["error"]["code"], "not_found");
}
