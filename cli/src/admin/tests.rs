//! Tests across the admin module: the test-only parser, and whole commands against a fake Admin server.

use clap::{CommandFactory, Parser};

use super::fake_admin::{Fake, start};
use super::{AdminCommand, Connection, execute};

/// The admin parts of the top-level parser, as `main` assembles them.
#[derive(Parser, Debug)]
#[command(name = "tokenrouter")]
struct TestCli {
    #[command(flatten)]
    conn: Connection,
    #[command(subcommand)]
    cmd: AdminCommand,
}

/// Parses `tokenrouter <args>` with the admin flags and subcommands.
pub(super) fn parse(args: &[&str]) -> Result<(Connection, AdminCommand), clap::Error> {
    let argv = std::iter::once("tokenrouter").chain(args.iter().copied());
    TestCli::try_parse_from(argv).map(|cli| (cli.conn, cli.cmd))
}

#[test]
fn command_definitions_are_consistent() {
    TestCli::command().debug_assert();
}

#[test]
fn global_flags_work_after_the_subcommand() {
    let (conn, cmd) = parse(&[
        "providers",
        "list",
        "--json",
        "--control-plane",
        "http://cp:1",
        "--admin-token",
        "t",
    ])
    .unwrap();
    assert!(conn.json);
    assert_eq!(conn.control_plane, "http://cp:1");
    assert_eq!(conn.admin_token.as_deref(), Some("t"));
    assert!(matches!(
        cmd,
        AdminCommand::Providers(super::ProvidersCmd::List)
    ));
    assert!(matches!(
        parse(&["snapshot"]).unwrap().1,
        AdminCommand::Snapshot
    ));
    assert!(matches!(
        parse(&["data-planes"]).unwrap().1,
        AdminCommand::DataPlanes
    ));
    assert!(parse(&["providers"]).is_err());
}

/// Runs `tokenrouter <args>` against `conn` and returns what it printed.
pub(super) async fn run_cli(conn: &Connection, args: &[&str]) -> anyhow::Result<String> {
    let (_, cmd) = parse(args)?;
    let mut out = Vec::new();
    execute(conn, cmd, &mut out).await?;
    Ok(String::from_utf8(out)?)
}

#[tokio::test]
async fn list_sends_the_admin_token_and_prints_a_table() {
    let fake = Fake::default();
    let conn = start(fake.clone(), Some("t0k"), false).await;
    let text = run_cli(&conn, &["providers", "list"]).await.unwrap();
    assert_eq!(
        text,
        "NAME    KIND    BASE URL                   MODELS  TIMEOUT MS  CONNECT MS  FIRST TOKEN MS  IDLE MS  STATUS\n\
         openai  openai  https://api.openai.com/v1  gpt-4o  default     default     90000           default  enabled\n\
         store version 7\n"
    );
    assert_eq!(fake.seen()[0], "Bearer t0k ListRequest");

    let conn = Connection {
        json: true,
        admin_token: None,
        ..conn
    };
    let text = run_cli(&conn, &["providers", "list"]).await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["version"], 7);
    assert_eq!(
        value["providers"][0]["base_url"],
        "https://api.openai.com/v1"
    );
    assert_eq!(fake.seen()[1], "none ListRequest");
}

#[tokio::test]
async fn server_errors_become_one_line_messages() {
    let conn = start(Fake::default(), None, false).await;
    let args = [
        "providers",
        "add",
        "x",
        "--kind",
        "openai",
        "--base-url",
        "ftp://h",
    ];
    let err = run_cli(&conn, &args).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "INVALID_ARGUMENT: providers[x].base_url: scheme must be http or https"
    );
}

#[tokio::test]
async fn provider_writes_send_and_show_the_normalised_base_url() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let args = [
        "providers",
        "update",
        "claude",
        "--kind",
        "anthropic",
        "--base-url",
        "https://api.anthropic.com/",
    ];
    let text = run_cli(&conn, &args).await.unwrap();
    assert_eq!(
        text,
        "updated provider claude (version 14)\n\
         base URL stored as https://api.anthropic.com/v1\n"
    );
    let seen = fake.seen();
    assert!(
        seen[0].contains("base_url: \"https://api.anthropic.com/v1\""),
        "{}",
        seen[0]
    );

    // Already in the stored form: nothing more to say.
    let args = [
        "providers",
        "update",
        "gem",
        "--kind",
        "gemini",
        "--base-url",
        "https://generativelanguage.googleapis.com/v1beta",
    ];
    let text = run_cli(&conn, &args).await.unwrap();
    assert_eq!(text, "updated provider gem (version 14)\n");

    let conn = Connection { json: true, ..conn };
    let args = [
        "providers",
        "update",
        "ds",
        "--kind",
        "deepseek",
        "--base-url",
        "https://api.deepseek.com",
    ];
    let text = run_cli(&conn, &args).await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"action": "updated", "kind": "provider", "name": "ds", "version": 14,
                           "base_url": "https://api.deepseek.com/v1"})
    );
}

#[tokio::test]
async fn disable_finds_the_key_and_writes_it_back() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let text = run_cli(&conn, &["keys", "disable", "ci", "--expected-version", "8"])
        .await
        .unwrap();
    assert_eq!(text, "disabled api key ci (version 9)\n");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].contains("name: \"ci\"") && seen[1].contains("disabled: true"),
        "{}",
        seen[1]
    );
    // The fields the command does not change are written back as they were.
    assert!(
        seen[1].contains("allowed_models: [\"old*\"]"),
        "{}",
        seen[1]
    );
    assert!(seen[1].contains("expected_version: 8"), "{}", seen[1]);

    let err = run_cli(&conn, &["keys", "enable", "nope"])
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "NOT_FOUND: no api key named \"nope\"");
}

#[tokio::test]
async fn allow_replaces_the_models_and_keeps_disabled() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let args = ["keys", "allow", "ci", "--model", "gpt-4o*", "auto:*"];
    let text = run_cli(&conn, &args).await.unwrap();
    assert_eq!(text, "updated api key ci (version 9)\n");
    let seen = fake.seen();
    assert!(
        seen[1].contains("allowed_models: [\"gpt-4o*\", \"auto:*\"]")
            && seen[1].contains("disabled: true"),
        "{}",
        seen[1]
    );

    run_cli(&conn, &["keys", "allow", "ci", "--any-model"])
        .await
        .unwrap();
    let seen = fake.seen();
    assert!(seen[3].contains("allowed_models: []"), "{}", seen[3]);

    let text = run_cli(&conn, &["keys", "list"]).await.unwrap();
    assert_eq!(
        text,
        "NAME    PREFIX       STATUS    MODELS  LIMITS\n\
         ci      sk-tr-ab...  disabled  old*    none\n\
         team-a  sk-tr-cd...  enabled   any     rpm=60 tpm=10000 usd=50/month user(rpm=5) models=1\n\
         store version 8\n"
    );
}

#[tokio::test]
async fn rules_list_summarizes_conditions_and_action_in_evaluation_order() {
    let conn = start(Fake::default(), None, false).await;
    let text = run_cli(&conn, &["rules", "list"]).await.unwrap();
    assert_eq!(
        text,
        "PRIORITY  NAME      MODEL  CONDITIONS                            ACTION                             FALLBACK\n\
         1         no-o1     o1*    -                                     deny                               -\n\
         5         ml-split  gpt-*  keys=ci header:x-team=ml* stream=yes  targets openai:gpt-4o=3,mistral=1  -\n\
         store version 10\n"
    );

    let conn = Connection { json: true, ..conn };
    let text = run_cli(&conn, &["rules", "list"]).await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["routing_rules"][0]["deny"], true);
    let split = &value["routing_rules"][1];
    assert_eq!(split["targets"][0]["weight"], 3);
    assert_eq!(split["match_headers"][0]["glob"], "ml*");
}

#[tokio::test]
async fn models_list_add_and_rm() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let text = run_cli(&conn, &["models", "list"]).await.unwrap();
    assert_eq!(
        text,
        "NAME           KIND    MODEL   INPUT $/M  OUTPUT $/M  CACHED $/M  CONTEXT  MAX OUTPUT  CAPABILITIES  QUALITY\n\
         openai-gpt-4o  openai  gpt-4o  2.5        10          1.25        128000   16384       tools,vision  88\n\
         store version 11\n"
    );

    let args = [
        "models",
        "add",
        "local-llama",
        "--kind",
        "openai-compatible",
        "--model",
        "llama3:8b",
        "--input-price",
        "0.1",
        "--capability",
        "tools",
    ];
    let text = run_cli(&conn, &args).await.unwrap();
    assert_eq!(text, "created model local-llama (version 12)\n");
    let seen = fake.seen();
    assert!(
        seen[1].contains("model: \"llama3:8b\"")
            && seen[1].contains("input_per_mtok: 0.1")
            && seen[1].contains("capabilities: [\"tools\"]"),
        "{}",
        seen[1]
    );

    let conn = Connection { json: true, ..conn };
    let text = run_cli(&conn, &["models", "rm", "local-llama"])
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"action": "deleted", "kind": "model", "name": "local-llama", "version": 13})
    );
    let text = run_cli(&conn, &["models", "list"]).await.unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["models"][0]["cached_input_per_mtok"], 1.25);
}

#[tokio::test]
async fn unreachable_control_plane_is_reported_with_its_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let conn = Connection {
        control_plane: address.to_string(),
        admin_token: None,
        json: false,
        tls_ca: None,
        tls_client_cert: None,
        tls_client_key: None,
    };
    let err = run_cli(&conn, &["snapshot"]).await.unwrap_err().to_string();
    let prefix = format!("cannot reach the control plane at http://{address}: ");
    assert!(err.starts_with(&prefix), "{err}");
}
