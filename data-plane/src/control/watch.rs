//! The snapshot client: watch the control plane, apply (or refuse) each snapshot, ACK/NACK, persist,
//! and reconnect with jittered exponential backoff while the last snapshot keeps serving.

use std::sync::Arc;
use std::time::Duration;

use tokenrouter_proto::v1::discovery_client::DiscoveryClient;
use tokenrouter_proto::v1::{AckRequest, WatchRequest};
use tonic::codegen::InterceptedService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::Channel;
use tonic::transport::Endpoint;

use crate::control::persist;
use crate::snapshot::policy::jittered_backoff;
use crate::state::DataPlaneState;

const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// Where the control plane is and how to authenticate to it.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    pub control_plane_url: String,
    pub token: Option<String>,
}

/// Loads the snapshot file, if any, so the data plane can serve before the control plane answers.
pub fn start_from_file(state: &DataPlaneState) {
    let Some(path) = &state.config.snapshot_path else {
        return;
    };
    match persist::load(path) {
        Ok(Some(snapshot)) => match state.apply(&snapshot) {
            Ok(()) => {
                tracing::info!(version = snapshot.version, path = %path.display(), "serving the saved snapshot")
            }
            Err(e) => tracing::warn!(error = %e, "the saved snapshot is not usable"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the saved snapshot"),
    }
}

/// Runs until the task is dropped: watch, apply, acknowledge, reconnect.
pub async fn run(state: Arc<DataPlaneState>, config: WatchConfig) {
    let mut failures: u32 = 0;
    loop {
        match watch_once(&state, &config).await {
            Ok(()) => tracing::info!("control plane closed the watch stream"),
            Err(e) => {
                tracing::warn!(error = %e, "control plane unreachable; serving the last snapshot")
            }
        }
        state.set_connected(false);
        failures = failures.saturating_add(1);
        tokio::time::sleep(backoff(failures)).await;
    }
}

/// A random delay between half the base and an exponentially growing ceiling.
fn backoff(failures: u32) -> Duration {
    jittered_backoff(BACKOFF_BASE, BACKOFF_CAP, failures, BACKOFF_BASE / 2)
}

/// Adds the admin token to every call, when one is configured.
#[derive(Debug, Clone)]
pub struct TokenInterceptor(Option<MetadataValue<Ascii>>);

impl Interceptor for TokenInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("authorization", t.clone());
        }
        Ok(req)
    }
}

/// A Discovery client for the configured control plane.
pub async fn discovery_client(
    config: &WatchConfig,
) -> Result<DiscoveryClient<InterceptedService<Channel, TokenInterceptor>>, tonic::Status> {
    let channel = Endpoint::from_shared(config.control_plane_url.clone())
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let token = match &config.token {
        Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| {
            tonic::Status::invalid_argument("the admin token is not a valid header value")
        })?),
        None => None,
    };
    Ok(DiscoveryClient::with_interceptor(
        channel,
        TokenInterceptor(token),
    ))
}

async fn watch_once(state: &DataPlaneState, config: &WatchConfig) -> Result<(), tonic::Status> {
    let mut client = discovery_client(config).await?;
    let serving_version = state.runtime().version;
    let mut stream = client
        .watch(WatchRequest {
            node_id: state.config.node_id.clone(),
            serving_version,
        })
        .await?
        .into_inner();
    state.set_connected(true);
    while let Some(message) = stream.message().await? {
        let Some(snapshot) = message.snapshot else {
            continue;
        };
        let mut ack = AckRequest {
            node_id: state.config.node_id.clone(),
            nonce: message.nonce,
            ..Default::default()
        };
        match state.apply(&snapshot) {
            Ok(()) => {
                if let Some(path) = &state.config.snapshot_path
                    && let Err(e) = persist::save(path, &snapshot).await
                {
                    tracing::warn!(error = %e, "cannot save the snapshot file");
                }
            }
            Err(e) => {
                ack.error = e.to_string();
                ack.rejected_version = snapshot.version;
            }
        }
        ack.version = state.runtime().version;
        let answer = client.ack(ack).await?;
        state
            .limiter
            .set_peers(u64::from(answer.into_inner().data_planes));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_capped() {
        for failures in 0..40 {
            let d = backoff(failures);
            assert!(
                d >= BACKOFF_BASE / 2 && d <= BACKOFF_CAP,
                "{failures}: {d:?}"
            );
        }
    }
}
