//! The dashboard's part of the store contract: every backend's tests call it.

use super::Store;

/// Records are rolled up as they are stored (a redelivered one is not counted twice), and
/// the log pages through them newest first, filtered, by cursor.
pub async fn rolls_up_and_pages_usage(store: &dyn Store) {
    use super::dashboard::{LogQuery, RollupQuery, StatusFilter};
    use tokenrouter_proto::v1::UsageRecord;
    let base = 1_700_000_000_000i64;
    let record = |i: i64, key: &str, status: u32, latency: u32| UsageRecord {
        request_id: format!("q{i}"),
        record_id: format!("rec-{i:04}"),
        unix_ms: base + i * 1000,
        api_key: key.into(),
        provider: if i % 2 == 0 { "even" } else { "odd" }.into(),
        model: "m".into(),
        requested_model: "auto:cost".into(),
        status,
        prompt_tokens: 10,
        completion_tokens: 2,
        cost_usd: 0.25,
        latency_ms: latency,
        ttft_ms: 30,
        stream: true,
        completed: true,
        firewall: if i == 3 {
            "pii:email:mask:input:1".into()
        } else {
            String::new()
        },
        ..Default::default()
    };
    let batch: Vec<UsageRecord> = (0..10)
        .map(|i| {
            record(
                i,
                if i < 6 { "a" } else { "b" },
                if i == 9 { 500 } else { 200 },
                80,
            )
        })
        .collect();
    store.record_usage(batch.clone().into()).await.unwrap();
    // Redelivered with one new record: only the new one is added.
    let mut again = batch[..3].to_vec();
    again.push(record(10, "b", 200, 4000));
    store.record_usage(again.into()).await.unwrap();
    let q = |step: &'static str, by: &str, per_bucket: bool| {
        let (dim, group) = super::rollup_sql::group_column(by).unwrap();
        RollupQuery {
            step,
            dim,
            from: 0,
            to: i64::MAX,
            group,
            per_bucket,
            only: Vec::new(),
        }
    };
    for step in ["m", "h", "d"] {
        let rows = store.rollups(q(step, "", false)).await.unwrap();
        assert_eq!(rows.len(), 1, "{step}");
        let r = &rows[0];
        assert_eq!(
            (r.requests, r.errors, r.prompt_tokens),
            (11, 1, 110),
            "{step}"
        );
        assert!((r.cost_usd - 2.75).abs() < 1e-9, "{step}");
        assert_eq!(r.latency[6], 10, "{step}: 80 ms is in the 50-100 bucket");
        assert_eq!(r.latency[11], 1, "{step}: 4 s is in the 2-5 s bucket");
        assert_eq!(r.ttft[5], 11, "{step}: 30 ms TTFT");
    }
    let by_key = store.rollups(q("h", "key", false)).await.unwrap();
    let a = by_key.iter().find(|r| r.group == "a").unwrap();
    assert_eq!(a.requests, 6);
    let only_even = RollupQuery {
        only: vec!["even".into()],
        ..q("m", "provider", false)
    };
    let even = store.rollups(only_even).await.unwrap();
    assert_eq!(even.len(), 1);
    assert_eq!((even[0].group.as_str(), even[0].requests), ("even", 6));
    let per_minute = store.rollups(q("m", "provider", true)).await.unwrap();
    assert!(per_minute.iter().all(|r| r.bucket % 60_000 == 0));
    assert_eq!(per_minute.iter().map(|r| r.requests).sum::<i64>(), 11);

    let page = |before: Option<(i64, String)>, status| LogQuery {
        from: base,
        to: base + 100_000,
        before,
        status,
        limit: 4,
        ..LogQuery::default()
    };
    let first = store
        .usage_page(page(None, StatusFilter::Any))
        .await
        .unwrap();
    assert_eq!(
        first
            .iter()
            .map(|r| r.record_id.as_str())
            .collect::<Vec<_>>(),
        ["rec-0010", "rec-0009", "rec-0008", "rec-0007"]
    );
    let last = first.last().unwrap();
    let second = store
        .usage_page(page(
            Some((last.unix_ms, last.record_id.clone())),
            StatusFilter::Any,
        ))
        .await
        .unwrap();
    assert_eq!(second[0].record_id, "rec-0006");
    let errors = store
        .usage_page(page(None, StatusFilter::Error))
        .await
        .unwrap();
    assert_eq!(errors.len(), 1);
    let masked = store
        .usage_page(LogQuery {
            firewall: Some("mask".into()),
            ..page(None, StatusFilter::Any)
        })
        .await
        .unwrap();
    assert_eq!(masked.len(), 1);
    assert_eq!(masked[0].record_id, "rec-0003");
    let keyed = store
        .usage_page(LogQuery {
            key: Some("b".into()),
            model: Some("auto:cost".into()),
            ..page(None, StatusFilter::Ok)
        })
        .await
        .unwrap();
    assert_eq!(keyed.len(), 4, "keys b, ok answers only");
    let one = store
        .usage_record("rec-0003".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.firewall, "pii:email:mask:input:1");
    assert!(store.usage_record("nope".into()).await.unwrap().is_none());

    // Pruning: records before the cutoff go, in batches; the minute rollups too.
    let gone = store
        .prune_usage(base + 5_000, vec![("m", i64::MAX)])
        .await
        .unwrap();
    assert!(gone >= 5);
    assert!(
        store
            .usage_record("rec-0004".into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .usage_record("rec-0005".into())
            .await
            .unwrap()
            .is_some()
    );
    assert!(store.rollups(q("m", "", false)).await.unwrap().is_empty());
    assert_eq!(
        store.rollups(q("h", "", false)).await.unwrap()[0].requests,
        11,
        "hours stay"
    );
}
