//! A SQLite store that cannot write (full disk, read-only file) under a running control plane:
//! writes fail with a precise status, reads and serving go on, usage waits, and everything
//! resumes once the store can write again. (PostgreSQL lost and restored is in
//! `scale_out::store_loss`; Redis dying in `limits` and `scale_out::reasoning`.)

use std::sync::Arc;

use tokenrouter_control_plane::store::SqliteStore;
use tokenrouter_proto::v1::{ApiKeyCreate, ListRequest, Provider, ProviderWrite, UsageQuery};
use tokenrouter_tests::ControlPlaneHandle;

use super::*;

#[tokio::test]
async fn a_sqlite_store_that_cannot_write_fails_writes_precisely_and_recovers() {
    let path = std::env::temp_dir().join(format!("tr-e2e-full-{}/config.db", uuid::Uuid::new_v4()));
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let cp = ControlPlaneHandle::start(store.clone(), None, None).await;
    let mut admin = cp.admin().await;
    admin
        .create_api_key(ApiKeyCreate {
            name: "test".into(),
            key: KEY.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let (_sim, version) = setup::add_simulated_provider(&cp, "sim", &["gpt-4o-mini"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("full-disk"), &cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = json!({"model": "gpt-4o-mini", "messages": setup::user_message("hi")});
    // Large enough (about 12 KiB) to need pages the store cannot add.
    let big_provider = |name: &str| ProviderWrite {
        provider: Some(Provider {
            name: name.into(),
            kind: "openai".into(),
            base_url: "http://127.0.0.1:9/v1".into(),
            models: (0..400)
                .map(|i| format!("model-{i:05}-of-a-large-provider"))
                .collect(),
            ..Default::default()
        }),
        expected_version: 0,
    };

    for (read_only, code) in [
        (false, tonic::Code::ResourceExhausted),
        (true, tonic::Code::FailedPrecondition),
    ] {
        store.constrain(Some(0), read_only).await.unwrap();
        let err = admin
            .create_provider(big_provider(&format!("refused-{read_only}")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.message().contains("nothing was written"), "{err}");
        // Reads go on, and the data plane serves (and records usage it cannot deliver yet).
        assert!(admin.list_api_keys(ListRequest::default()).await.is_ok());
        for _ in 0..3 {
            let (status, body) = tokenrouter_tests::chat(&http, &dp, KEY, ask.clone()).await;
            assert_eq!(status, 200, "{body}");
        }
    }

    store.constrain(None, false).await.unwrap();
    let v = admin
        .create_provider(big_provider("after"))
        .await
        .unwrap()
        .into_inner()
        .version;
    dp.wait_for_version(v).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let report = admin
            .get_usage(UsageQuery::default())
            .await
            .unwrap()
            .into_inner();
        let served: u64 = report.rows.iter().map(|r| r.requests).sum();
        assert!(served <= 6, "recorded twice: {report:?}");
        if served == 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the usage of what was served while the store was full never arrived: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
