//! Tests across the admin module: the test-only parser, and whole commands against a fake Admin server.

use std::sync::{Arc, Mutex};

use clap::{CommandFactory, Parser};
use tokenrouter_proto::v1::admin_server::{Admin, AdminServer};
use tokenrouter_proto::v1::*;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

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

/// Answers a few calls with canned data and records the metadata and writes it saw.
#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    fn record<T: std::fmt::Debug>(&self, request: &Request<T>) {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        let line = format!("{auth} {:?}", request.get_ref());
        self.seen.lock().unwrap().push(line);
    }
}

/// Implements `Admin` for `Fake` with the given methods; every other RPC answers UNIMPLEMENTED. One
/// macro emits the whole impl so `async_trait` sees the generated methods too.
macro_rules! fake_admin {
    (implemented { $($method:tt)* } unimplemented { $($name:ident($req:ty) -> $resp:ty;)* }) => {
        #[tonic::async_trait]
        impl Admin for Fake {
            $($method)*
            $(
                async fn $name(&self, _: Request<$req>) -> Result<Response<$resp>, Status> {
                    Err(Status::unimplemented(stringify!($name)))
                }
            )*
        }
    };
}

fake_admin! {
    implemented {
        async fn list_providers(
            &self,
            r: Request<ListRequest>,
        ) -> Result<Response<ListProvidersResponse>, Status> {
            self.record(&r);
            let provider = Provider {
                name: "openai".into(),
                kind: "openai".into(),
                base_url: "https://api.openai.com/v1".into(),
                models: vec!["gpt-4o".into()],
                ..Default::default()
            };
            Ok(Response::new(ListProvidersResponse {
                providers: vec![provider],
                version: 7,
            }))
        }
        async fn create_provider(
            &self,
            r: Request<ProviderWrite>,
        ) -> Result<Response<WriteResponse>, Status> {
            self.record(&r);
            Err(Status::invalid_argument(
                "providers[x].base_url: scheme must be http or https",
            ))
        }
        async fn list_api_keys(
            &self,
            r: Request<ListRequest>,
        ) -> Result<Response<ListApiKeysResponse>, Status> {
            self.record(&r);
            let key = ApiKey {
                name: "ci".into(),
                prefix: "sk-tr-ab".into(),
                ..Default::default()
            };
            Ok(Response::new(ListApiKeysResponse {
                api_keys: vec![key],
                version: 8,
            }))
        }
        async fn update_api_key(
            &self,
            r: Request<ApiKeyWrite>,
        ) -> Result<Response<WriteResponse>, Status> {
            self.record(&r);
            Ok(Response::new(WriteResponse { version: 9 }))
        }
    }
    unimplemented {
        list_models(ListRequest) -> ListModelsResponse;
        create_model(ModelWrite) -> WriteResponse;
        update_model(ModelWrite) -> WriteResponse;
        delete_model(DeleteRequest) -> WriteResponse;
        update_provider(ProviderWrite) -> WriteResponse;
        delete_provider(DeleteRequest) -> WriteResponse;
        list_credentials(ListRequest) -> ListCredentialsResponse;
        create_credential(CredentialWrite) -> WriteResponse;
        update_credential(CredentialWrite) -> WriteResponse;
        delete_credential(DeleteRequest) -> WriteResponse;
        create_api_key(ApiKeyCreate) -> ApiKeyCreated;
        delete_api_key(DeleteRequest) -> WriteResponse;
        list_routing_rules(ListRequest) -> ListRoutingRulesResponse;
        create_routing_rule(RoutingRuleWrite) -> WriteResponse;
        update_routing_rule(RoutingRuleWrite) -> WriteResponse;
        delete_routing_rule(DeleteRequest) -> WriteResponse;
        list_fallback_policies(ListRequest) -> ListFallbackPoliciesResponse;
        create_fallback_policy(FallbackPolicyWrite) -> WriteResponse;
        update_fallback_policy(FallbackPolicyWrite) -> WriteResponse;
        delete_fallback_policy(DeleteRequest) -> WriteResponse;
        get_snapshot(GetSnapshotRequest) -> Snapshot;
        list_data_planes(ListDataPlanesRequest) -> ListDataPlanesResponse;
    }
}

/// Serves `fake` on a fresh local port and returns the connection flags pointing at it.
async fn start(fake: Fake, token: Option<&str>, json: bool) -> Connection {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = Server::builder()
        .add_service(AdminServer::new(fake))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    Connection {
        control_plane: format!("http://{address}"),
        admin_token: token.map(str::to_string),
        json,
    }
}

/// Runs `tokenrouter <args>` against `conn` and returns what it printed.
async fn run_cli(conn: &Connection, args: &[&str]) -> anyhow::Result<String> {
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
        "NAME    KIND    BASE URL                   MODELS  TIMEOUT MS  CONNECT MS  STATUS\n\
         openai  openai  https://api.openai.com/v1  gpt-4o  default     default     enabled\n\
         store version 7\n"
    );
    assert_eq!(fake.seen.lock().unwrap()[0], "Bearer t0k ListRequest");

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
    assert_eq!(fake.seen.lock().unwrap()[1], "none ListRequest");
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
async fn disable_finds_the_key_and_writes_it_back() {
    let fake = Fake::default();
    let conn = start(fake.clone(), None, false).await;
    let text = run_cli(&conn, &["keys", "disable", "ci", "--expected-version", "8"])
        .await
        .unwrap();
    assert_eq!(text, "disabled api key ci (version 9)\n");
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert!(
        seen[1].contains("name: \"ci\"") && seen[1].contains("disabled: true"),
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
async fn unreachable_control_plane_is_reported_with_its_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let conn = Connection {
        control_plane: address.to_string(),
        admin_token: None,
        json: false,
    };
    let err = run_cli(&conn, &["snapshot"]).await.unwrap_err().to_string();
    let prefix = format!("cannot reach the control plane at http://{address}: ");
    assert!(err.starts_with(&prefix), "{err}");
}
