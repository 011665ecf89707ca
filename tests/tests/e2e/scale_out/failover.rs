//! Two control planes on one PostgreSQL and three data planes following both; a control plane
//! away under load: no request and no usage record lost.

use super::*;

#[tokio::test]
async fn losing_one_of_two_control_planes_under_load_loses_nothing() {
    let Some(stack) = setup::stack(Backend::Postgres).await else {
        return eprintln!("skipped: TOKENROUTER_TEST_POSTGRES_URL unset");
    };
    let mut cp1 = stack.cp;
    let cp2 = ControlPlaneHandle::start(
        reopen_store(Backend::Postgres, &stack.store_id).await,
        None,
        None,
    )
    .await;
    let (_sim, version) = setup::add_simulated_provider(&cp1, "sim", &["gpt-4o-mini"]).await;
    // The data planes reach cp1 through a link the test can cut, so its death is abrupt: no
    // graceful end of the watch streams, usage reports cut off mid-call.
    let link = tokenrouter_tests::tcp_cut::TcpCut::start(cp1.addr).await;
    let urls = format!("http://{},{}", link.addr, cp2.url());
    let mut dps = Vec::new();
    for i in 0..3 {
        dps.push(follower(&format!("dp{i}"), &urls, i % 2).await);
    }
    for (dp, _) in &dps {
        dp.wait_for_version(version).await;
    }

    // A write through the second copy reaches the data planes on the first by NOTIFY.
    let across = served_after_commit(&cp2, &dps, "second").await;
    eprintln!("commit through cp2 served by all three data planes after {across:?}");
    assert!(across < Duration::from_millis(100), "{across:?}");

    let tally = Arc::new(Tally::default());
    let urls_http: Vec<String> = dps.iter().map(|(dp, _)| dp.url("")).collect();
    let traffic = tokio::spawn(load(urls_http, 6, 400, tally.clone()));
    tokio::time::sleep(Duration::from_millis(400)).await;
    link.cut();
    let killed = Instant::now();
    cp1.stop().await;
    let cp2_url = cp2.url();
    for (dp, watch) in &dps {
        dp.wait_until("on the surviving control plane", |s| {
            s.is_connected() && watch.current() == cp2_url
        })
        .await;
    }
    eprintln!(
        "all data planes on cp2 {:?} after cp1 stopped",
        killed.elapsed()
    );

    // A commit through the survivor is served everywhere within 100 ms.
    let pushed = served_after_commit(&cp2, &dps, "third").await;
    eprintln!("commit through the survivor served by all three after {pushed:?}");
    assert!(pushed < Duration::from_millis(100), "{pushed:?}");

    // The killed copy comes back: nobody moves, nothing flaps.
    let cp1_again = ControlPlaneHandle::start(
        reopen_store(Backend::Postgres, &stack.store_id).await,
        Some(cp1.addr),
        None,
    )
    .await;
    link.restore();
    traffic.await.unwrap();
    for _ in 0..20 {
        for (dp, watch) in &dps {
            assert!(dp.state.is_connected() && watch.current() == cp2_url);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answered = tally.answered.load(Ordering::Relaxed);
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0, "no request failed");
    assert_eq!(answered, 6 * 400);
    let (records, cost) = stored(&cp2, answered).await;
    assert_eq!(records, answered, "one usage record per answered request");
    assert_eq!(cost, tally.cost_nano.load(Ordering::Relaxed));
    assert_eq!(
        cp1_again
            .cp
            .usage(UsageQuery::default())
            .await
            .unwrap()
            .rows[0]
            .requests,
        answered
    );
    for (dp, _) in &dps {
        assert_eq!(dp.state.usage.dropped(), 0);
    }
}

/// The control plane away for seconds under load, then back: the store ends with exactly one
/// record per answered request and the cost the clients were shown.
#[tokio::test]
async fn usage_waits_in_the_spool_while_the_control_plane_is_away() {
    let Some(stack) = setup::stack(Backend::Sqlite).await else {
        return;
    };
    let mut cp = stack.cp;
    let (_sim, version) = setup::add_simulated_provider(&cp, "sim", &["gpt-4o-mini"]).await;
    let (dp, _watch) = follower("spooler", &cp.url(), 0).await;
    dp.wait_for_version(version).await;
    let tally = Arc::new(Tally::default());
    let traffic = tokio::spawn(load(vec![dp.url("")], 4, 500, tally.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    cp.stop().await;
    dp.wait_until("usage spooled", |s| s.usage.spooled() > 0)
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cp = ControlPlaneHandle::start(
        reopen_store(Backend::Sqlite, &stack.store_id).await,
        Some(cp.addr),
        None,
    )
    .await;
    traffic.await.unwrap();
    let answered = tally.answered.load(Ordering::Relaxed);
    assert_eq!(tally.failed.load(Ordering::Relaxed), 0);
    let (records, cost) = stored(&cp, answered).await;
    assert_eq!(records, answered);
    assert_eq!(cost, tally.cost_nano.load(Ordering::Relaxed));
    assert!(cost > 0, "the answers were priced");
    dp.wait_until("spool drained", |s| s.usage.spooled() == 0)
        .await;
    assert_eq!(dp.state.usage.dropped(), 0);
}
