//! The `Admin` gRPC service: CRUD for every resource, snapshot reads and data-plane status.

use std::sync::Arc;

use rand::Rng;
use sha2::{Digest, Sha256};
use tokenrouter_proto::v1::admin_server::Admin;
use tokenrouter_proto::v1::*;
use tonic::{Request, Response, Status};

use crate::error::ControlPlaneError;
use crate::resources::{Resource, redact};
use crate::state::ControlPlane;

mod users;
pub use users::ROLES as DASHBOARD_ROLES;

/// Shortest API key accepted when an admin supplies one.
const MIN_KEY_LEN: usize = 8;

/// Serves `tokenrouter.v1.Admin` over a [`ControlPlane`].
#[derive(Debug, Clone)]
pub struct AdminService {
    cp: Arc<ControlPlane>,
}

impl AdminService {
    pub fn new(cp: Arc<ControlPlane>) -> Self {
        AdminService { cp }
    }

    fn listed<R: Resource>(&self) -> (Vec<R>, u64) {
        let s = self.cp.snapshot();
        (
            R::list(&s).iter().map(Resource::redacted).collect(),
            s.version,
        )
    }
}

fn required<T>(field: &str, value: Option<T>) -> Result<T, Status> {
    value.ok_or_else(|| {
        Status::from(ControlPlaneError::BadRequest {
            field: field.into(),
            message: "is required".into(),
        })
    })
}

fn written(version: Result<u64, ControlPlaneError>) -> Result<Response<WriteResponse>, Status> {
    Ok(Response::new(WriteResponse { version: version? }))
}

/// SHA-256 of an API key as lowercase hex: the only form a key is ever stored in.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random key, `sk-tr-` and 40 alphanumeric characters.
fn generate_key() -> String {
    let body: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    format!("sk-tr-{body}")
}

/// The stored form of a key: its hash and a short prefix people can recognise it by.
pub fn api_key_record(name: &str, key: &str) -> ApiKey {
    ApiKey {
        name: name.into(),
        sha256: hash_api_key(key),
        prefix: key.chars().take(10).collect(),
        disabled: false,
        allowed_models: Vec::new(),
        limits: None,
        user_limits: None,
        model_limits: Vec::new(),
        log_bodies: false,
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_providers(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListProvidersResponse>, Status> {
        let (providers, version) = self.listed();
        Ok(Response::new(ListProvidersResponse { providers, version }))
    }
    async fn create_provider(
        &self,
        r: Request<ProviderWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .create(required("provider", r.provider)?, r.expected_version)
                .await,
        )
    }
    async fn update_provider(
        &self,
        r: Request<ProviderWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .update(required("provider", r.provider)?, r.expected_version)
                .await,
        )
    }
    async fn delete_provider(
        &self,
        r: Request<DeleteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .delete::<Provider>(&r.name, r.expected_version)
                .await,
        )
    }

    async fn list_credentials(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListCredentialsResponse>, Status> {
        let (credentials, version) = self.listed();
        Ok(Response::new(ListCredentialsResponse {
            credentials,
            version,
        }))
    }
    async fn create_credential(
        &self,
        r: Request<CredentialWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        let c = required("credential", r.credential)?;
        if c.secret.is_empty() {
            return Err(ControlPlaneError::BadRequest {
                field: "credential.secret".into(),
                message: "must not be empty".into(),
            }
            .into());
        }
        written(self.cp.create(c, r.expected_version).await)
    }
    async fn update_credential(
        &self,
        r: Request<CredentialWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        let mut c = required("credential", r.credential)?;
        if c.secret.is_empty() {
            // Secrets are write-only, so an update without one keeps the stored secret.
            let current = self.cp.snapshot();
            if let Some(old) = current.credentials.iter().find(|o| o.name == c.name) {
                c.secret = old.secret.clone();
            }
        }
        written(self.cp.update(c, r.expected_version).await)
    }
    async fn delete_credential(
        &self,
        r: Request<DeleteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .delete::<Credential>(&r.name, r.expected_version)
                .await,
        )
    }

    async fn list_api_keys(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListApiKeysResponse>, Status> {
        let (api_keys, version) = self.listed();
        Ok(Response::new(ListApiKeysResponse { api_keys, version }))
    }
    async fn create_api_key(
        &self,
        r: Request<ApiKeyCreate>,
    ) -> Result<Response<ApiKeyCreated>, Status> {
        let r = r.into_inner();
        let key = if r.key.is_empty() {
            generate_key()
        } else {
            r.key
        };
        if key.len() < MIN_KEY_LEN || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            let message = format!("must be at least {MIN_KEY_LEN} characters without whitespace");
            return Err(ControlPlaneError::BadRequest {
                field: "key".into(),
                message,
            }
            .into());
        }
        let record = ApiKey {
            allowed_models: r.allowed_models,
            limits: r.limits,
            user_limits: r.user_limits,
            model_limits: r.model_limits,
            log_bodies: r.log_bodies,
            ..api_key_record(&r.name, &key)
        };
        let version = self.cp.create(record.clone(), r.expected_version).await?;
        Ok(Response::new(ApiKeyCreated {
            api_key: Some(record),
            key,
            version,
        }))
    }
    async fn update_api_key(
        &self,
        r: Request<ApiKeyWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        let wanted = required("api_key", r.api_key)?;
        let current = self.cp.snapshot();
        let existing = current.api_keys.iter().find(|k| k.name == wanted.name);
        let existing = existing.ok_or_else(|| ControlPlaneError::NotFound {
            kind: ApiKey::KIND,
            name: wanted.name.clone(),
        })?;
        // Like `allowed_models`, the limits are replaced by what is sent (absent: none).
        let updated = ApiKey {
            disabled: wanted.disabled,
            allowed_models: wanted.allowed_models,
            limits: wanted.limits,
            user_limits: wanted.user_limits,
            model_limits: wanted.model_limits,
            log_bodies: wanted.log_bodies,
            ..existing.clone()
        };
        written(self.cp.update(updated, r.expected_version).await)
    }
    async fn delete_api_key(
        &self,
        r: Request<DeleteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(self.cp.delete::<ApiKey>(&r.name, r.expected_version).await)
    }

    async fn list_routing_rules(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListRoutingRulesResponse>, Status> {
        let (rules, version) = self.listed();
        Ok(Response::new(ListRoutingRulesResponse { rules, version }))
    }
    async fn create_routing_rule(
        &self,
        r: Request<RoutingRuleWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .create(required("rule", r.rule)?, r.expected_version)
                .await,
        )
    }
    async fn update_routing_rule(
        &self,
        r: Request<RoutingRuleWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .update(required("rule", r.rule)?, r.expected_version)
                .await,
        )
    }
    async fn delete_routing_rule(
        &self,
        r: Request<DeleteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .delete::<RoutingRule>(&r.name, r.expected_version)
                .await,
        )
    }

    async fn list_firewall_rules(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListFirewallRulesResponse>, Status> {
        let (rules, version) = self.listed();
        Ok(Response::new(ListFirewallRulesResponse { rules, version }))
    }
    async fn create_firewall_rule(
        &self,
        r: Request<FirewallRuleWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .create(required("rule", r.rule)?, r.expected_version)
                .await,
        )
    }
    async fn update_firewall_rule(
        &self,
        r: Request<FirewallRuleWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .update(required("rule", r.rule)?, r.expected_version)
                .await,
        )
    }
    async fn delete_firewall_rule(
        &self,
        r: Request<DeleteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .delete::<FirewallRule>(&r.name, r.expected_version)
                .await,
        )
    }

    async fn list_fallback_policies(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListFallbackPoliciesResponse>, Status> {
        let (policies, version) = self.listed();
        Ok(Response::new(ListFallbackPoliciesResponse {
            policies,
            version,
        }))
    }
    async fn create_fallback_policy(
        &self,
        r: Request<FallbackPolicyWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .create(required("policy", r.policy)?, r.expected_version)
                .await,
        )
    }
    async fn update_fallback_policy(
        &self,
        r: Request<FallbackPolicyWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .update(required("policy", r.policy)?, r.expected_version)
                .await,
        )
    }
    async fn delete_fallback_policy(
        &self,
        r: Request<DeleteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .delete::<FallbackPolicy>(&r.name, r.expected_version)
                .await,
        )
    }

    async fn list_models(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListModelsResponse>, Status> {
        let (models, version) = self.listed();
        Ok(Response::new(ListModelsResponse { models, version }))
    }
    async fn create_model(
        &self,
        r: Request<ModelWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .create(required("model", r.model)?, r.expected_version)
                .await,
        )
    }
    async fn update_model(
        &self,
        r: Request<ModelWrite>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .update(required("model", r.model)?, r.expected_version)
                .await,
        )
    }
    async fn delete_model(
        &self,
        r: Request<DeleteRequest>,
    ) -> Result<Response<WriteResponse>, Status> {
        let r = r.into_inner();
        written(
            self.cp
                .delete::<ModelEntry>(&r.name, r.expected_version)
                .await,
        )
    }

    async fn get_snapshot(
        &self,
        _: Request<GetSnapshotRequest>,
    ) -> Result<Response<Snapshot>, Status> {
        Ok(Response::new(redact(&self.cp.snapshot())))
    }
    async fn get_usage(&self, r: Request<UsageQuery>) -> Result<Response<UsageReport>, Status> {
        let report = self.cp.usage(r.into_inner()).await?;
        Ok(Response::new(report))
    }

    async fn list_data_planes(
        &self,
        _: Request<ListDataPlanesRequest>,
    ) -> Result<Response<ListDataPlanesResponse>, Status> {
        let version = self.cp.snapshot().version;
        Ok(Response::new(ListDataPlanesResponse {
            data_planes: self.cp.list_data_planes().await,
            version,
        }))
    }

    async fn list_dashboard_users(
        &self,
        _: Request<ListRequest>,
    ) -> Result<Response<ListDashboardUsersResponse>, Status> {
        let users = users::list(self.cp.store().as_ref()).await?;
        Ok(Response::new(ListDashboardUsersResponse { users }))
    }

    async fn put_dashboard_user(
        &self,
        r: Request<DashboardUserWrite>,
    ) -> Result<Response<DashboardUser>, Status> {
        let user = users::put(self.cp.store().as_ref(), r.into_inner()).await?;
        Ok(Response::new(user))
    }

    async fn delete_dashboard_user(
        &self,
        r: Request<DashboardUserDelete>,
    ) -> Result<Response<DashboardUser>, Status> {
        let user = users::delete(self.cp.store().as_ref(), r.into_inner()).await?;
        Ok(Response::new(user))
    }
}

#[cfg(test)]
mod tests;
