//! The access log of the real binary: `TOKENROUTER_ACCESS_LOG=1` with
//! `TOKENROUTER_LOG_FORMAT=json` gives one JSON line per request with names, counts and timings,
//! and never the key or the message content; without it there is no such line.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `serve --demo`, sends one chat request, stops it with SIGTERM; returns its stderr.
async fn run_demo(access_log: bool) -> String {
    let dir =
        std::env::temp_dir().join(format!("tr-access-{}-{}", std::process::id(), free_port()));
    let (http, grpc, admin) = (free_port(), free_port(), free_port());
    let log = dir.join("stderr.log");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tokenrouter"));
    cmd.args(["serve", "--demo", "--data-dir"])
        .arg(&dir)
        .args(["--http-addr", &format!("127.0.0.1:{http}")])
        .args(["--grpc-addr", &format!("127.0.0.1:{grpc}")])
        .args(["--admin-addr", &format!("127.0.0.1:{admin}")])
        .args(["--dashboard-addr", &format!("127.0.0.1:{}", free_port())])
        .env("TOKENROUTER_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    if access_log {
        cmd.env("TOKENROUTER_ACCESS_LOG", "1");
    } else {
        cmd.env_remove("TOKENROUTER_ACCESS_LOG");
    }
    let mut child = cmd.spawn().unwrap();
    let http_client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http_client
            .get(format!("http://127.0.0.1:{http}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "serve --demo never turned ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = http_client
        .post(format!("http://127.0.0.1:{http}/v1/chat/completions"))
        .bearer_auth("sk-tokenrouter-demo")
        .json(&serde_json::json!({"model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": "my launch code is 0000-SECRET"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let _ = answer.text().await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::read_to_string(&log).unwrap()
}

fn access_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "tokenrouter::access")
        .collect()
}

#[tokio::test]
async fn one_json_line_per_request_without_secrets_or_content() {
    let stderr = run_demo(true).await;
    let lines = access_lines(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = &lines[0];
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["requested_model"], "gpt-4o-mini");
    assert_eq!(line["provider"], "demo-openai");
    assert!(line["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(line["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0));
    assert!(line["overhead_ms"].as_f64().is_some());
    assert!(line["prompt_tokens"].as_u64().is_some_and(|n| n > 0));
    let text = line.to_string();
    assert!(
        !text.contains("SECRET") && !text.contains("launch code"),
        "{text}"
    );
    assert!(
        !text.contains("sk-tokenrouter-demo"),
        "the key's name, never the key: {text}"
    );
    // Every other line is JSON too.
    for l in stderr.lines().filter(|l| l.starts_with('{')) {
        assert!(serde_json::from_str::<serde_json::Value>(l).is_ok(), "{l}");
    }
}

#[tokio::test]
async fn off_by_default() {
    let stderr = run_demo(false).await;
    assert!(access_lines(&stderr).is_empty(), "{stderr}");
}
