//! The snapshot client: watch one of the control planes, apply (or refuse) each snapshot, ACK/NACK,
//! persist, and on failure move to the next control plane (jittered exponential backoff) while the
//! last snapshot keeps serving.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokenrouter_proto::sealed::MasterKey;
use tokenrouter_proto::v1::discovery_client::DiscoveryClient;
use tokenrouter_proto::v1::{AckRequest, StatusReport, WatchRequest};
use tonic::codegen::InterceptedService;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::control::persist;
use crate::snapshot::policy::jittered_backoff;
use crate::state::DataPlaneState;

const BACKOFF_BASE: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(5);
/// How often a watching data plane reports its live signals (breakers, latency, errors,
/// headroom) for the dashboard's providers page.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Where the control planes are and how to reach them.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// gRPC URLs, tried in turn (`https://` for TLS).
    pub control_planes: Vec<String>,
    pub token: Option<String>,
    pub tls: ClientTls,
    /// Which of `control_planes` the data plane is on; the usage reporter follows the watch.
    pub active: Arc<AtomicUsize>,
}

/// TLS towards the control planes: the CA to trust (else the web's roots) and, for mutual TLS,
/// this data plane's certificate and key (PEM).
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca_pem: Option<Vec<u8>>,
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl WatchConfig {
    /// A config over a comma-separated list of URLs (`--control-plane`), without a token or TLS.
    pub fn new(urls: &str) -> WatchConfig {
        WatchConfig {
            control_planes: urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string)
                .collect(),
            token: None,
            tls: ClientTls::default(),
            active: Arc::default(),
        }
    }

    pub fn with_token(mut self, token: Option<String>) -> WatchConfig {
        self.token = token;
        self
    }

    /// The URL of the control plane in use.
    pub fn current(&self) -> &str {
        let n = self.control_planes.len().max(1);
        self.control_planes
            .get(self.active.load(Ordering::Relaxed) % n)
            .map_or("", String::as_str)
    }

    /// Moves to the next control plane in the list.
    fn advance(&self) {
        self.active.fetch_add(1, Ordering::Relaxed);
    }
}

/// Loads the snapshot file, if any, so the data plane can serve before the control plane answers.
pub fn start_from_file(state: &DataPlaneState) {
    let Some(path) = &state.config.snapshot_path else {
        return;
    };
    let loaded = persist::key_for(path, state.config.snapshot_key.as_ref())
        .and_then(|key| persist::load(path, &key));
    match loaded {
        Ok(Some(snapshot)) => match state.apply(&snapshot) {
            Ok(()) => {
                tracing::info!(version = snapshot.version, path = %path.display(), "serving the saved snapshot")
            }
            Err(e) => tracing::warn!(error = %e, "the saved snapshot is not usable"),
        },
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "cannot read the saved snapshot"),
    }
}

/// Runs until the task is dropped: watch, apply, acknowledge; on failure the next control plane.
pub async fn run(state: Arc<DataPlaneState>, config: WatchConfig) {
    let key = state.config.snapshot_path.as_deref().and_then(|path| {
        persist::key_for(path, state.config.snapshot_key.as_ref())
            .map_err(|e| tracing::error!(error = %e, "snapshots will not be saved"))
            .ok()
    });
    let mut failures: u32 = 0;
    loop {
        let url = config.current().to_string();
        let mut served = false;
        match watch_once(&state, &config, &url, key.as_ref(), &mut served).await {
            Ok(()) => tracing::info!(control_plane = %url, "control plane closed the watch stream"),
            Err(e) => {
                tracing::warn!(control_plane = %url, error = %e, "control plane unreachable; serving the last snapshot")
            }
        }
        state.set_connected(false);
        config.advance();
        // A stream that worked ends for a reason on its side (a restart, a lost store): try the
        // next one at once. Only failures in a row back off.
        failures = if served {
            0
        } else {
            failures.saturating_add(1)
        };
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

/// The Discovery client type.
pub type Client = DiscoveryClient<InterceptedService<Channel, TokenInterceptor>>;

/// A Discovery client for the control plane at `url`.
pub async fn discovery_client(config: &WatchConfig, url: &str) -> Result<Client, tonic::Status> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(10));
    if url.starts_with("https://") {
        endpoint = endpoint
            .tls_config(config.tls.to_tonic())
            .map_err(|e| tonic::Status::invalid_argument(e.to_string()))?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("{e}: {}", source_chain(&e))))?;
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

impl ClientTls {
    /// Reads the PEM files: the CA, and the client certificate and key (both or neither).
    pub fn from_files(
        ca: Option<&std::path::Path>,
        cert: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> std::io::Result<ClientTls> {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
        };
        let identity_pem = match (cert, key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            (None, None) => None,
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "a client certificate needs its key, and a key its certificate",
                ));
            }
        };
        Ok(ClientTls {
            ca_pem: ca.map(read).transpose()?,
            identity_pem,
        })
    }

    /// tonic's TLS settings for an `https://` control plane.
    pub fn to_tonic(&self) -> ClientTlsConfig {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_pem {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_webpki_roots(),
        };
        if let Some((cert, key)) = &self.identity_pem {
            config = config.identity(Identity::from_pem(cert, key));
        }
        config
    }
}

/// The causes under a transport error (tonic's own message is only "transport error").
pub fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push(c.to_string());
        cause = c.source();
    }
    out.join(": ")
}

async fn watch_once(
    state: &DataPlaneState,
    config: &WatchConfig,
    url: &str,
    key: Option<&MasterKey>,
    served: &mut bool,
) -> Result<(), tonic::Status> {
    let mut client = discovery_client(config, url).await?;
    let serving_version = state.runtime().version;
    let mut stream = client
        .watch(WatchRequest {
            node_id: state.config.node_id.clone(),
            serving_version,
        })
        .await?
        .into_inner();
    state.set_connected(true);
    tracing::info!(control_plane = %url, "watching a control plane");
    let mut report = tokio::time::interval(STATUS_EVERY);
    report.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reporting = true;
    loop {
        let message = tokio::select! {
            message = stream.message() => message?,
            _ = report.tick(), if reporting => {
                reporting = report_status(state, &mut client).await;
                continue;
            }
        };
        let Some(message) = message else { break };
        *served = true;
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
                if let (Some(path), Some(key)) = (&state.config.snapshot_path, key)
                    && let Err(e) = persist::save(path, key, &snapshot).await
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

/// Sends the live signals; `false` when this control plane does not take them (one older than
/// the call), so the stream stops trying. Other failures are left to the watch stream to notice.
async fn report_status(state: &DataPlaneState, client: &mut Client) -> bool {
    let report = StatusReport {
        node_id: state.config.node_id.clone(),
        candidates: state.signals.report(),
    };
    match client.report_status(report).await {
        Ok(answer) => {
            state
                .limiter
                .set_peers(u64::from(answer.into_inner().data_planes));
            true
        }
        Err(e) if e.code() == tonic::Code::Unimplemented => false,
        Err(e) => {
            tracing::debug!(error = %e, "cannot report the live signals");
            true
        }
    }
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
