//! A fake `tokenrouter.v1.Admin` server for the command tests: canned answers, recorded requests.

use std::sync::{Arc, Mutex};

use tokenrouter_proto::v1::admin_server::{Admin, AdminServer};
use tokenrouter_proto::v1::*;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};

use super::Connection;

/// Answers a few calls with canned data and records the metadata and writes it saw.
#[derive(Clone, Default)]
pub(super) struct Fake {
    /// One line per call: the `authorization` metadata (or `none`) and the request's `Debug` form.
    pub(super) seen: Arc<Mutex<Vec<String>>>,
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

    /// The calls seen so far.
    pub(super) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
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
                first_token_timeout_ms: 90000,
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
        async fn update_provider(
            &self,
            r: Request<ProviderWrite>,
        ) -> Result<Response<WriteResponse>, Status> {
            self.record(&r);
            Ok(Response::new(WriteResponse { version: 14 }))
        }
        async fn list_api_keys(
            &self,
            r: Request<ListRequest>,
        ) -> Result<Response<ListApiKeysResponse>, Status> {
            self.record(&r);
            let key = ApiKey {
                name: "ci".into(),
                prefix: "sk-tr-ab".into(),
                disabled: true,
                allowed_models: vec!["old*".into()],
                ..Default::default()
            };
            Ok(Response::new(ListApiKeysResponse {
                api_keys: vec![key, limited_key()],
                version: 8,
            }))
        }
        async fn create_api_key(
            &self,
            r: Request<ApiKeyCreate>,
        ) -> Result<Response<ApiKeyCreated>, Status> {
            self.record(&r);
            let r = r.into_inner();
            let api_key = ApiKey {
                name: r.name,
                prefix: "sk-tr-new".into(),
                allowed_models: r.allowed_models,
                limits: r.limits,
                user_limits: r.user_limits,
                model_limits: r.model_limits,
                ..Default::default()
            };
            Ok(Response::new(ApiKeyCreated {
                api_key: Some(api_key),
                key: "sk-tr-new-secret".into(),
                version: 15,
            }))
        }
        async fn get_usage(
            &self,
            r: Request<UsageQuery>,
        ) -> Result<Response<UsageReport>, Status> {
            self.record(&r);
            let q = r.into_inner();
            // Canned sums for `team-a`, whatever the time span; nothing for other keys.
            let row = |group: &str, requests, tokens, cost_usd| UsageRow {
                group: group.into(),
                requests,
                prompt_tokens: tokens,
                cost_usd,
                ..Default::default()
            };
            let rows = match (q.api_key.as_str(), q.group_by.as_str()) {
                ("team-a", "") => vec![row("", 6, 900, 3.5)],
                ("team-a", "user_id") => vec![row("u1", 4, 600, 0.5), row("", 2, 300, 3.0)],
                ("team-a", "requested_model") => vec![
                    row("gpt-4o", 3, 500, 2.0),
                    row("gpt-4o-mini", 1, 100, 0.25),
                    row("claude-x", 2, 300, 1.25),
                ],
                _ => Vec::new(),
            };
            // The records behind them (asked for over the last minute): one refused by a limit.
            let record = |user: &str, model: &str, attempts| UsageRecord {
                api_key: q.api_key.clone(),
                user_id: user.into(),
                requested_model: model.into(),
                attempts,
                ..Default::default()
            };
            let mut recent = vec![
                record("u1", "gpt-4o", 1),
                record("u1", "gpt-4o", 1),
                record("u1", "gpt-4o-mini", 1),
                record("u1", "gpt-4o", 0),
                record("", "claude-x", 1),
                record("", "claude-x", 1),
            ];
            if q.api_key != "team-a" {
                recent.clear();
            }
            recent.truncate(q.recent as usize);
            Ok(Response::new(UsageReport { rows, recent }))
        }
        async fn update_api_key(
            &self,
            r: Request<ApiKeyWrite>,
        ) -> Result<Response<WriteResponse>, Status> {
            self.record(&r);
            Ok(Response::new(WriteResponse { version: 9 }))
        }
        async fn list_routing_rules(
            &self,
            r: Request<ListRequest>,
        ) -> Result<Response<ListRoutingRulesResponse>, Status> {
            self.record(&r);
            let rule = RoutingRule {
                name: "ml-split".into(),
                priority: 5,
                match_model: "gpt-*".into(),
                match_api_keys: vec!["ci".into()],
                match_headers: vec![KeyGlob {
                    key: "x-team".into(),
                    glob: "ml*".into(),
                }],
                match_stream: "yes".into(),
                targets: vec![
                    WeightedTarget {
                        provider: "openai".into(),
                        model: "gpt-4o".into(),
                        weight: 3,
                    },
                    WeightedTarget {
                        provider: "mistral".into(),
                        model: String::new(),
                        weight: 1,
                    },
                ],
                ..Default::default()
            };
            let deny = RoutingRule {
                name: "no-o1".into(),
                priority: 1,
                match_model: "o1*".into(),
                deny: true,
                ..Default::default()
            };
            Ok(Response::new(ListRoutingRulesResponse {
                rules: vec![rule, deny],
                version: 10,
            }))
        }
        async fn list_models(
            &self,
            r: Request<ListRequest>,
        ) -> Result<Response<ListModelsResponse>, Status> {
            self.record(&r);
            let entry = ModelEntry {
                name: "openai-gpt-4o".into(),
                kind: "openai".into(),
                model: "gpt-4o".into(),
                input_per_mtok: 2.5,
                output_per_mtok: 10.0,
                cached_input_per_mtok: 1.25,
                context_window: 128000,
                max_output: 16384,
                capabilities: vec!["tools".into(), "vision".into()],
                quality: 88,
                quality_source: String::new(),
                ..Default::default()
            };
            Ok(Response::new(ListModelsResponse {
                models: vec![entry],
                version: 11,
            }))
        }
        async fn create_model(
            &self,
            r: Request<ModelWrite>,
        ) -> Result<Response<WriteResponse>, Status> {
            self.record(&r);
            Ok(Response::new(WriteResponse { version: 12 }))
        }
        async fn delete_model(
            &self,
            r: Request<DeleteRequest>,
        ) -> Result<Response<WriteResponse>, Status> {
            self.record(&r);
            Ok(Response::new(WriteResponse { version: 13 }))
        }
    }
    unimplemented {
        update_model(ModelWrite) -> WriteResponse;
        delete_provider(DeleteRequest) -> WriteResponse;
        list_credentials(ListRequest) -> ListCredentialsResponse;
        create_credential(CredentialWrite) -> WriteResponse;
        update_credential(CredentialWrite) -> WriteResponse;
        delete_credential(DeleteRequest) -> WriteResponse;
        delete_api_key(DeleteRequest) -> WriteResponse;
        create_routing_rule(RoutingRuleWrite) -> WriteResponse;
        update_routing_rule(RoutingRuleWrite) -> WriteResponse;
        delete_routing_rule(DeleteRequest) -> WriteResponse;
        list_fallback_policies(ListRequest) -> ListFallbackPoliciesResponse;
        create_fallback_policy(FallbackPolicyWrite) -> WriteResponse;
        update_fallback_policy(FallbackPolicyWrite) -> WriteResponse;
        delete_fallback_policy(DeleteRequest) -> WriteResponse;
        get_snapshot(GetSnapshotRequest) -> Snapshot;
        list_data_planes(ListDataPlanesRequest) -> ListDataPlanesResponse;
        list_firewall_rules(ListRequest) -> ListFirewallRulesResponse;
        create_firewall_rule(FirewallRuleWrite) -> WriteResponse;
        update_firewall_rule(FirewallRuleWrite) -> WriteResponse;
        delete_firewall_rule(DeleteRequest) -> WriteResponse;
        list_dashboard_users(ListRequest) -> ListDashboardUsersResponse;
        put_dashboard_user(DashboardUserWrite) -> DashboardUser;
        delete_dashboard_user(DashboardUserDelete) -> DashboardUser;
    }
}

/// The fake's key with limits of every kind.
fn limited_key() -> ApiKey {
    let limits = |rpm, tpm, budget_usd, period: &str| Limits {
        rpm,
        tpm,
        budget_usd,
        budget_period: period.into(),
        ..Default::default()
    };
    ApiKey {
        name: "team-a".into(),
        prefix: "sk-tr-cd".into(),
        limits: Some(limits(60, 10_000, 50.0, "month")),
        user_limits: Some(limits(5, 0, 0.0, "")),
        model_limits: vec![ModelLimit {
            model: "gpt-4o*".into(),
            limits: Some(limits(20, 0, 0.0, "")),
        }],
        ..Default::default()
    }
}

/// Serves `fake` on a fresh local port and returns the connection flags pointing at it.
pub(super) async fn start(fake: Fake, token: Option<&str>, json: bool) -> Connection {
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
        tls_ca: None,
        tls_client_cert: None,
        tls_client_key: None,
    }
}
