//! A rolling deploy's stop: the drain turns the data plane not-ready, stops accepting, lets every
//! open stream finish and delivers the usage of all of them before it returns.

use super::*;

/// Shutdown with 50 streams open: all 50 complete with `[DONE]`, `/readyz` says draining, new
/// connections are refused, and the control plane receives 50 usage records, none failed.
#[tokio::test]
async fn a_drain_lets_50_open_streams_complete() {
    let mut sim = sim_config();
    sim.chunk_interval = Duration::from_millis(60);
    let (stack, _sim, mut dp) = stack_with(ListenerLimits::default(), sim).await;
    let http = reqwest::Client::new();
    let mut streams = Vec::new();
    for i in 0..50 {
        let mut r = http
            .post(dp.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "gpt-4o-mini", "stream": true, "messages": setup::user_message(&format!("stream {i} with a few more words to send back"))}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Under way: its first chunk is here.
        let first = r.chunk().await.unwrap().expect("a first chunk");
        streams.push((String::from_utf8_lossy(&first).to_string(), r));
    }
    let state = dp.state.clone();
    let admin_ready = dp.admin_url("/readyz");
    let addr = dp.addr;
    let stopping = tokio::spawn(async move {
        dp.shutdown().await;
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !state.is_draining() {
        assert!(Instant::now() < deadline, "never started draining");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = reqwest::get(&admin_ready).await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(ready.text().await.unwrap(), "draining");
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting while draining");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for (mut text, mut r) in streams {
        while let Some(chunk) = r.chunk().await.expect("the stream continues") {
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    }
    tokio::time::timeout(Duration::from_secs(20), stopping)
        .await
        .expect("the drain ends once the streams are done")
        .unwrap();
    let mut admin = stack.cp.admin().await;
    let report = setup::usage_once(&mut admin, "provider", 1).await;
    let row = &report.rows[0];
    assert_eq!(
        row.requests, 50,
        "every stream's usage was delivered: {report:?}"
    );
    assert_eq!(row.failures, 0, "{report:?}");
}
