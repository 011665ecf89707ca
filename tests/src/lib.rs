//! The harness end-to-end tests share: control planes, data planes and simulators on 127.0.0.1:0,
//! each started and stopped in-process with real listeners, real gRPC and real HTTP.

pub mod killable;
pub mod otlp;
pub mod own_redis;
pub mod tcp_cut;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokenrouter_control_plane::store::{self, PostgresStore, SqliteStore, Store};
use tokenrouter_control_plane::{ControlPlane, MasterKey};
use tokenrouter_data_plane::{DataPlaneConfig, DataPlaneState, WatchConfig};
use tokenrouter_proto::v1::admin_client::AdminClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

/// The master key every test control plane uses.
pub fn master_key() -> MasterKey {
    MasterKey::from_bytes(&[42; 32])
}

/// Which store backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty store: a new SQLite file, or a new schema in the test Postgres database.
/// `None` when Postgres is asked for but not configured (outside CI).
pub async fn fresh_store(backend: Backend) -> Option<(Arc<dyn Store>, String)> {
    match backend {
        Backend::Sqlite => {
            let path = std::env::temp_dir().join(format!(
                "tr-e2e-{}/config.db",
                uuid::Uuid::new_v4().simple()
            ));
            let s = SqliteStore::open(&path).await.expect("open sqlite");
            Some((Arc::new(s), path.display().to_string()))
        }
        Backend::Postgres => {
            let url = store::postgres_test_url()?;
            let schema = format!("tr_e2e_{}", uuid::Uuid::new_v4().simple());
            let s = PostgresStore::connect_in_schema(&url, Some(&schema))
                .await
                .expect("connect postgres");
            Some((Arc::new(s), schema))
        }
    }
}

/// Opens the same store again (a second connection), as a restarted or second control plane would.
pub async fn reopen_store(backend: Backend, id: &str) -> Arc<dyn Store> {
    match backend {
        Backend::Sqlite => Arc::new(
            SqliteStore::open(std::path::Path::new(id))
                .await
                .expect("reopen sqlite"),
        ),
        Backend::Postgres => {
            let url = store::postgres_test_url().expect("postgres url");
            Arc::new(
                PostgresStore::connect_in_schema(&url, Some(id))
                    .await
                    .expect("reconnect postgres"),
            )
        }
    }
}

/// A control plane serving gRPC on a loopback port.
pub struct ControlPlaneHandle {
    pub cp: Arc<ControlPlane>,
    pub addr: SocketAddr,
    /// How [`ControlPlaneHandle::admin`] reaches a control plane serving TLS.
    pub admin_tls: Option<tokenrouter_data_plane::ClientTls>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ControlPlaneHandle {
    /// Starts on `addr` (or a free port) over `store`, with an optional admin token.
    pub async fn start(
        store: Arc<dyn Store>,
        addr: Option<SocketAddr>,
        token: Option<&str>,
    ) -> Self {
        Self::start_with(store, addr, token, None).await
    }

    /// [`ControlPlaneHandle::start`], serving gRPC over TLS when `tls` is given.
    pub async fn start_with(
        store: Arc<dyn Store>,
        addr: Option<SocketAddr>,
        token: Option<&str>,
        tls: Option<tokenrouter_control_plane::ServerTls>,
    ) -> Self {
        let cp = ControlPlane::open(store, master_key())
            .await
            .expect("open control plane");
        let listener =
            TcpListener::bind(addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0))))
                .await
                .expect("bind control plane");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let serve = tokenrouter_control_plane::serve_with(
            listener,
            cp.clone(),
            token.map(str::to_string),
            tls,
            async {
                let _ = stopped.await;
            },
        );
        let task = tokio::spawn(async move {
            serve.await.expect("control plane serve");
        });
        ControlPlaneHandle {
            cp,
            addr,
            admin_tls: None,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        match self.admin_tls {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// An Admin client for this control plane.
    pub async fn admin(&self) -> AdminClient<Channel> {
        let mut endpoint = tonic::transport::Endpoint::from_shared(self.url()).expect("url");
        if let Some(tls) = &self.admin_tls {
            endpoint = endpoint.tls_config(tls.to_tonic()).expect("tls");
        }
        AdminClient::new(endpoint.connect().await.expect("connect admin"))
    }

    /// Shuts down gracefully (open watch streams are ended) and waits until the port is closed.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("control plane stops")
                .expect("task");
        }
    }
}

impl Drop for ControlPlaneHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A data plane serving HTTP on a loopback port, watching a control plane.
pub struct DataPlaneHandle {
    pub state: Arc<DataPlaneState>,
    pub addr: SocketAddr,
    /// The admin listener (`/metrics`, `/status`).
    pub admin_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl DataPlaneHandle {
    pub async fn start(
        config: DataPlaneConfig,
        control_plane_url: &str,
        token: Option<&str>,
    ) -> Self {
        let watch = WatchConfig::new(control_plane_url).with_token(token.map(str::to_string));
        Self::start_watching(config, watch).await
    }

    /// Starts with a watch already configured (several control planes, TLS).
    pub async fn start_watching(config: DataPlaneConfig, watch: WatchConfig) -> Self {
        let state = DataPlaneState::new(config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind data plane");
        let addr = listener.local_addr().expect("local addr");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let admin_addr = admin.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(tokenrouter_data_plane::serve(
            listener,
            Some(admin),
            state.clone(),
            Some(watch),
            async {
                let _ = stopped.await;
            },
        ));
        DataPlaneHandle {
            state,
            addr,
            admin_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Shuts down gracefully and waits until `serve` has returned (usage flushed included).
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .expect("data plane stops")
                .expect("task")
                .expect("serve");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A URL on the admin listener (`/metrics`, `/status`).
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// The Prometheus text its admin listener serves on `/metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::get(self.admin_url("/metrics"))
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .expect("/metrics body")
    }

    /// Waits until this data plane serves `version` (or later); panics after 10 s.
    pub async fn wait_for_version(&self, version: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.state.runtime().version < version || !self.state.is_ready() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "data plane never reached version {version} (at {})",
                self.state.runtime().version
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until the condition holds; panics after 10 s.
    pub async fn wait_until(&self, what: &str, condition: impl Fn(&DataPlaneState) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !condition(&self.state) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for: {what}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for DataPlaneHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A unique data-plane config with a snapshot file in a fresh temp directory.
pub fn data_plane_config(name: &str) -> DataPlaneConfig {
    let dir = std::env::temp_dir().join(format!("tr-dp-{}", uuid::Uuid::new_v4().simple()));
    DataPlaneConfig {
        node_id: format!("{name}-{}", uuid::Uuid::new_v4().simple()),
        snapshot_path: Some(dir.join("snapshot.pb")),
        ..DataPlaneConfig::default()
    }
}

/// POSTs a chat completion with `key` and returns (status, JSON body).
pub async fn chat(
    http: &reqwest::Client,
    dp: &DataPlaneHandle,
    key: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = http
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("send chat");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// The service names a gRPC server lists through server reflection (v1).
pub async fn reflection_services(url: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(reflection_channel(url).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection call")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("reflection answer")
        .expect("one message");
    match first.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

/// The service names a gRPC server lists through the older `grpc.reflection.v1alpha` protocol, the
/// only one Python's grpcio-reflection, Evans and older grpcurl builds speak.
pub async fn reflection_services_v1alpha(url: &str) -> Vec<String> {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;

    let mut client = ServerReflectionClient::new(reflection_channel(url).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("v1alpha reflection call")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("v1alpha reflection answer")
        .expect("one message");
    match first.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected v1alpha reflection answer: {other:?}"),
    }
}

async fn reflection_channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("url")
        .connect()
        .await
        .expect("connect reflection")
}
