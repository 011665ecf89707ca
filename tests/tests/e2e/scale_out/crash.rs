//! A data plane killed outright (no drain, no flush) loses no usage record: the journal copy of
//! the batch it was gathering is spooled by its next start and delivered once.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_data_plane_loses_no_usage() {
    let stack = setup::stack(Backend::Sqlite).await.unwrap();
    let (_sim, _) = setup::add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    let spool = spool_dir();
    let config = || {
        let mut c = data_plane_config("crashes");
        c.usage_spool = Some(spool.clone());
        c
    };
    let mut dp = tokenrouter_tests::killable::Killable::start(config(), &stack.cp);
    let http = reqwest::Client::new();
    let url = format!("{}/v1/chat/completions", dp.url);
    let ask = json!({"model": "gpt-4o-mini", "messages": setup::user_message("hi")});
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answered = 0u64;
    // The first answer once the snapshot is there, then a burst.
    while answered == 0 {
        assert!(Instant::now() < deadline, "the data plane never served");
        let ok = http
            .post(&url)
            .bearer_auth(KEY)
            .json(&ask)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        answered += u64::from(ok);
        if !ok {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    for _ in 0..40 {
        let r = http
            .post(&url)
            .bearer_auth(KEY)
            .json(&ask)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        answered += 1;
    }
    // Killed before its batch (up to a second of records) leaves.
    dp.kill();
    let restarted = DataPlaneHandle::start(config(), &stack.cp.url(), None).await;
    let (n, _) = stored(&stack.cp, answered).await;
    assert_eq!(
        n, answered,
        "every answered request has its usage record, once"
    );
    let left: Vec<_> = std::fs::read_dir(&spool.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
        .collect();
    assert!(
        left.len() <= 1,
        "old journals are removed once spooled: {left:?}"
    );
    drop(restarted);
}
