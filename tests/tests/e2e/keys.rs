//! API keys as a data plane enforces them: a key it has already served (so it skips hashing it)
//! is refused from the snapshot that disables or deletes it.

use tokenrouter_proto::v1::*;
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{self, KEY, stack};

/// Disabled, re-enabled, deleted: each takes effect from the next snapshot.
#[tokio::test]
async fn a_disabled_or_deleted_key_is_refused_from_the_next_snapshot() {
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (_sim, version) = setup::add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("revocation"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ask = serde_json::json!({"model": "gpt-4o-mini", "messages": setup::user_message("hi")});
    let chat = || tokenrouter_tests::chat(&http, &dp, KEY, ask.clone());
    let mut admin = stack.cp.admin().await;
    for _ in 0..3 {
        assert_eq!(chat().await.0, 200);
    }
    let keys = admin
        .list_api_keys(ListRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut key = keys.api_keys[0].clone();
    for disabled in [true, false] {
        key.disabled = disabled;
        let v = admin
            .update_api_key(ApiKeyWrite {
                api_key: Some(key.clone()),
                expected_version: 0,
            })
            .await
            .unwrap()
            .into_inner()
            .version;
        dp.wait_for_version(v).await;
        let (status, body) = chat().await;
        if disabled {
            assert_eq!(status, 401, "{body}");
            assert!(body.to_string().contains("disabled"), "{body}");
        } else {
            assert_eq!(status, 200, "re-enabled: {body}");
        }
    }
    let v = admin
        .delete_api_key(DeleteRequest {
            name: key.name.clone(),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    dp.wait_for_version(v).await;
    let (status, body) = chat().await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("Incorrect API key"), "{body}");
}
