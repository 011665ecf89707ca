//! Body logging end to end: a key with `log_bodies` has its requests' bodies kept after the
//! firewall's masking (the request as sent, the answer as the client got it, JSON and streamed),
//! apart from the usage records (no list or report carries them), shown in the dashboard's request
//! detail to admins only; a key without it keeps none.

use serde_json::{Value, json};
use tokenrouter_proto::v1::{ApiKeyCreate, ApiKeyWrite, DashboardUserWrite};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{self, KEY};

const TOKEN: &str = "body-log-admin-token";
const QUIET_KEY: &str = "sk-quiet-key-without-logging";
const CARD: &str = "4111 1111 1111 1111";

/// A browser-like caller of the dashboard: its session cookie.
struct Session {
    base: String,
    cookie: String,
}

impl Session {
    /// Signs in to the dashboard at `base`.
    async fn start(base: &str, credentials: Value) -> Session {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/session"))
            .json(&credentials)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        Session {
            base: base.into(),
            cookie,
        }
    }

    async fn get(&self, path: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_logging_key_keeps_its_masked_bodies_for_admins_only() {
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    let (_sim, _) = setup::add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    setup::add_mask_rule(&stack.cp, "emails", "email", "input").await;
    setup::add_mask_rule(&stack.cp, "cards-out", "credit_card", "output").await;
    let mut admin = stack.cp.admin().await;
    let mut key = stack.cp.cp.snapshot().api_keys[0].clone();
    key.log_bodies = true;
    admin
        .update_api_key(ApiKeyWrite {
            api_key: Some(key),
            expected_version: 0,
        })
        .await
        .unwrap();
    let version = admin
        .create_api_key(ApiKeyCreate {
            name: "quiet".into(),
            key: QUIET_KEY.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let dp = DataPlaneHandle::start(data_plane_config("bodies"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let text = format!("mail ada@example.com about card {CARD}");
    let ask = |stream: bool| json!({"model": "gpt-4o-mini", "stream": stream, "messages": setup::user_message(&text)});
    for (key, stream) in [(KEY, false), (KEY, true), (QUIET_KEY, false)] {
        let r = http
            .post(dp.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&ask(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let answer = r.text().await.unwrap();
        assert!(
            !answer.contains("4111") && !answer.contains("ada@"),
            "{answer}"
        );
    }
    let report = setup::usage_once(&mut admin, "", 3).await;
    let recent = &report.recent;
    assert!(
        recent
            .iter()
            .all(|r| r.request_body.is_empty() && r.response_body.is_empty()),
        "reports never carry bodies"
    );

    let base = setup::serve_dashboard(&stack.cp, TOKEN).await;
    let as_admin = Session::start(&base, json!({"token": TOKEN})).await;
    let mut seen = 0;
    for r in recent {
        let d = as_admin
            .get(&format!("/api/requests/{}", r.record_id))
            .await;
        let bodies = &d["bodies"];
        if r.api_key == "quiet" {
            assert_eq!(
                bodies,
                &Value::Null,
                "a key without logging keeps nothing: {d}"
            );
            continue;
        }
        seen += 1;
        let (request, response) = (
            bodies["request"].to_string(),
            bodies["response"].to_string(),
        );
        assert!(
            request.contains("[EMAIL_1]") && !request.contains("ada@"),
            "masked as sent: {request}"
        );
        assert_eq!(bodies["request"][0]["role"], "user", "{request}");
        assert!(
            response.contains("[CREDIT_CARD_1]") && !response.contains("4111"),
            "masked as answered (stream: {}): {response}",
            r.stream
        );
        assert_eq!(bodies["response"][0]["role"], "assistant", "{response}");
    }
    assert_eq!(seen, 2, "the JSON and the streamed request");

    // A viewer sees the request, never its bodies.
    admin
        .put_dashboard_user(DashboardUserWrite {
            name: "vic".into(),
            role: "viewer".into(),
            password: "vic's long password".into(),
            replace: false,
        })
        .await
        .unwrap();
    let as_viewer = Session::start(
        &base,
        json!({"user": "vic", "password": "vic's long password"}),
    )
    .await;
    let logged = recent.iter().find(|r| r.api_key == "test").unwrap();
    let d = as_viewer
        .get(&format!("/api/requests/{}", logged.record_id))
        .await;
    assert!(d["bodies"]["hidden"].is_string(), "{d}");
    assert!(!d.to_string().contains("EMAIL_1"), "{d}");
    // And the log's pages carry no bodies either.
    let page = as_admin.get("/api/requests?limit=10").await;
    assert!(!page.to_string().contains("EMAIL_1"), "{page}");
}
