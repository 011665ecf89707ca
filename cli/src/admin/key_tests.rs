//! `keys create|update|show` with limits, parsed and run against the fake Admin server.

use super::AdminCommand;
use super::fake_admin::{Fake, start};
use super::keys::KeysCmd;
use super::tests::{parse, run_cli};

#[test]
fn limit_flags_parse_on_create_and_update() {
    let argv = [
        "keys",
        "create",
        "team-b",
        "--rpm",
        "60",
        "--rpm-burst",
        "10",
        "--tpm",
        "100000",
        "--max-concurrent",
        "4",
        "--budget-usd",
        "12.5",
        "--budget-period",
        "week",
        "--user-rpm",
        "5",
        "--user-tpm",
        "1000",
        "--user-max-concurrent",
        "1",
        "--user-budget-usd",
        "1",
        "--user-budget-period",
        "day",
        "--model-rpm",
        "gpt-4o*=20",
        "--model-rpm",
        "claude-*=5",
        "--model-tpm",
        "gpt-4o*=5000",
        "--model-max-concurrent",
        "o1*=1",
        "--model-budget-usd",
        "gpt-4o*=3.5",
    ];
    let (_, cmd) = parse(&argv).unwrap();
    let AdminCommand::Keys(KeysCmd::Create { limits, .. }) = cmd else {
        panic!("wrong command: {cmd:?}");
    };
    assert_eq!(
        (
            limits.rpm,
            limits.rpm_burst,
            limits.tpm,
            limits.max_concurrent
        ),
        (Some(60), Some(10), Some(100_000), Some(4))
    );
    assert_eq!(limits.budget_usd, Some(12.5));
    assert_eq!(limits.budget_period.as_deref(), Some("week"));
    assert_eq!(limits.user_budget_period.as_deref(), Some("day"));
    assert_eq!(
        limits.model_rpm,
        [("gpt-4o*".to_string(), 20), ("claude-*".to_string(), 5)]
    );
    assert_eq!(limits.model_budget_usd, [("gpt-4o*".to_string(), 3.5)]);

    assert!(parse(&["keys", "create", "x", "--budget-period", "year"]).is_err());
    assert!(parse(&["keys", "create", "x", "--model-rpm", "gpt-4o"]).is_err());
    assert!(parse(&["keys", "create", "x", "--rpm", "-1"]).is_err());
    assert!(parse(&["keys", "create", "x", "--no-limits"]).is_err());

    let (_, cmd) = parse(&["keys", "update", "ci", "--no-limits", "--rpm", "5"]).unwrap();
    let AdminCommand::Keys(KeysCmd::Update(args)) = cmd else {
        panic!("wrong command: {cmd:?}");
    };
    assert!(args.no_limits);
    assert_eq!(args.limits.rpm, Some(5));
    assert!(matches!(
        parse(&["keys", "show", "ci"]).unwrap().1,
        AdminCommand::Keys(KeysCmd::Show { .. })
    ));
}

#[tokio::test]
async fn create_sends_the_limits() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let args = [
        "keys",
        "create",
        "team-b",
        "--rpm",
        "60",
        "--budget-usd",
        "25",
        "--budget-period",
        "week",
        "--user-budget-usd",
        "2",
        "--model-rpm",
        "gpt-4o*=20",
        "--model-budget-usd",
        "gpt-4o*=5",
    ];
    let text = run_cli(&conn, &args).await.unwrap();
    assert_eq!(
        text,
        "created api key team-b (version 15)\nsk-tr-new-secret\n"
    );
    let seen = fake.seen();
    let sent = &seen[0];
    assert!(sent.starts_with("none ApiKeyCreate"), "{sent}");
    assert!(
        sent.contains("limits: Some(Limits { rpm: 60, tpm: 0, max_concurrent: 0, budget_usd: 25.0, budget_period: \"week\", rpm_burst: 0 })"),
        "{sent}"
    );
    assert!(
        sent.contains("user_limits: Some(Limits { rpm: 0, tpm: 0, max_concurrent: 0, budget_usd: 2.0, budget_period: \"week\""),
        "the users' period defaults to the key's: {sent}"
    );
    assert!(
        sent.contains("model_limits: [ModelLimit { model: \"gpt-4o*\", limits: Some(Limits { rpm: 20, tpm: 0, max_concurrent: 0, budget_usd: 5.0, budget_period: \"week\""),
        "one entry per glob, on the key's period: {sent}"
    );

    let err = run_cli(&conn, &["keys", "create", "x", "--budget-usd", "5"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--budget-period"), "{err}");
    assert_eq!(fake.seen().len(), 1, "refused before any call");
}

#[tokio::test]
async fn update_keeps_what_is_not_named() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let args = [
        "keys",
        "update",
        "team-a",
        "--tpm",
        "0",
        "--model-rpm",
        "o1*=2",
    ];
    let text = run_cli(&conn, &args).await.unwrap();
    assert_eq!(text, "updated api key team-a (version 9)\n");
    let seen = fake.seen();
    assert!(seen[0].contains("ListRequest"), "read the key first");
    let sent = &seen[1];
    assert!(
        sent.contains("limits: Some(Limits { rpm: 60, tpm: 0, max_concurrent: 0, budget_usd: 50.0, budget_period: \"month\""),
        "{sent}"
    );
    assert!(sent.contains("user_limits: Some(Limits { rpm: 5"), "{sent}");
    assert!(
        sent.contains("model: \"gpt-4o*\"") && sent.contains("model: \"o1*\""),
        "{sent}"
    );

    run_cli(&conn, &["keys", "update", "team-a", "--no-limits"])
        .await
        .unwrap();
    let sent = &fake.seen()[3];
    assert!(
        sent.contains("limits: None, user_limits: None, model_limits: []"),
        "{sent}"
    );

    run_cli(&conn, &["keys", "update", "ci", "--user-rpm", "3"])
        .await
        .unwrap();
    let sent = &fake.seen()[5];
    assert!(
        sent.contains("disabled: true") && sent.contains("allowed_models: [\"old*\"]"),
        "other fields are written back as they were: {sent}"
    );

    let seen = fake.seen().len();
    run_cli(&conn, &["keys", "log-bodies", "ci", "on"])
        .await
        .unwrap();
    let sent = &fake.seen()[seen + 1];
    assert!(
        sent.contains("log_bodies: true") && sent.contains("disabled: true"),
        "only the flag changes: {sent}"
    );
    assert!(parse(&["keys", "log-bodies", "ci", "maybe"]).is_err());

    let err = run_cli(&conn, &["keys", "update", "team-a"])
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("nothing to change"), "{err}");
    let err = run_cli(&conn, &["keys", "update", "nope", "--rpm", "1"])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "NOT_FOUND: no api key named \"nope\"");
}

#[tokio::test]
async fn show_sums_the_keys_usage() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let text = run_cli(&conn, &["keys", "show", "team-a"]).await.unwrap();
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(
        text.starts_with("api key team-a (sk-tr-cd...), enabled; use as of "),
        "{text}"
    );
    assert_eq!(lines[2][..5], ["key", "rpm", "60", "5", "55"], "{text}");
    assert_eq!(
        lines[3][..5],
        ["key", "tpm", "10000", "900", "9100"],
        "{text}"
    );
    assert_eq!(
        lines[4][..5],
        ["key", "budget/month", "$50", "$3.5", "$46.5"],
        "{text}"
    );
    assert!(lines[4][5].ends_with("-01T00:00:00Z"), "{text}");
    // rpm counts admitted requests only (the fake has one refused); requests without a user are
    // held to the key's limits only.
    assert_eq!(
        lines[5][..6],
        ["user", "u1", "rpm", "5", "3", "2"],
        "{text}"
    );
    assert_eq!(
        lines[6][..6],
        ["model", "gpt-4o*", "rpm", "20", "3", "17"],
        "{text}"
    );
    assert!(
        text.contains("note: use counts finished requests"),
        "{text}"
    );

    let queries: Vec<String> = fake
        .seen()
        .into_iter()
        .filter(|s| s.contains("UsageQuery"))
        .collect();
    assert_eq!(queries.len(), 4, "minute x3 groupings, month: {queries:?}");
    let minute = queries
        .iter()
        .filter(|q| q.contains("recent: 1000"))
        .count();
    assert_eq!(
        minute, 3,
        "the minute spans ask for the records: {queries:?}"
    );
    let minute = queries
        .iter()
        .filter(|q| q.contains("recent: 1000"))
        .count();
    assert_eq!(
        minute, 3,
        "the minute spans ask for the records: {queries:?}"
    );
    assert!(
        queries.iter().all(|q| q.contains("api_key: \"team-a\"")),
        "{queries:?}"
    );

    let conn = super::Connection { json: true, ..conn };
    let text = run_cli(&conn, &["keys", "show", "team-a"]).await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["api_key"]["name"], "team-a");
    assert_eq!(value["limits"][2]["limit"], "budget_usd");
    assert_eq!(value["limits"][2]["remaining"], 46.5);
    assert_eq!(value["limits"][3]["user"], "u1");

    let err = run_cli(&conn, &["keys", "show", "nope"]).await.unwrap_err();
    assert_eq!(err.to_string(), "NOT_FOUND: no api key named \"nope\"");
}
