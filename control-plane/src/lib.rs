//! TokenRouter's control plane: the store, the `Admin` and `Discovery` gRPC services, publishing
//! versioned snapshots to every connected data plane, and the operator dashboard (HTTP).

pub mod admin;
pub mod auth;
pub mod crypto;
pub mod dashboard;
pub mod discovery;
pub mod error;
pub(crate) mod passwords;
pub mod registry;
pub mod resources;
pub mod state;
pub mod store;
pub mod telemetry;

use std::future::Future;
use std::sync::Arc;

use tokenrouter_proto::v1::admin_server::AdminServer;
use tokenrouter_proto::v1::discovery_server::DiscoveryServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use admin::{AdminService, api_key_record, hash_api_key};
pub use crypto::MasterKey;
pub use discovery::DiscoveryService;
pub use error::ControlPlaneError;
pub use state::ControlPlane;

/// A reflection builder over TokenRouter's descriptors.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(tokenrouter_proto::FILE_DESCRIPTOR_SET)
}

/// Reflection is a convenience for tools: without it the services still serve.
fn reflection_failed(e: tonic_reflection::server::Error) -> tonic_reflection::server::Error {
    tracing::error!(error = %e, "reflection descriptor is invalid");
    e
}

/// Keeps `grpc.health.v1` in step with the store's health: the whole server (`""`) and each of
/// TokenRouter's services are SERVING while the store answers and NOT_SERVING while it does not.
async fn report_health(
    mut healthy: tokio::sync::watch::Receiver<bool>,
    reporter: tonic_health::server::HealthReporter,
) {
    use tonic::server::NamedService;
    use tonic_health::ServingStatus;
    loop {
        let status = if *healthy.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for service in [
            "",
            <AdminServer<AdminService> as NamedService>::NAME,
            <DiscoveryServer<DiscoveryService> as NamedService>::NAME,
        ] {
            reporter.set_service_status(service, status).await;
        }
        if healthy.changed().await.is_err() {
            return;
        }
    }
}

/// The largest Discovery message accepted (a usage batch; snapshots go the other way).
pub const MAX_USAGE_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// TLS on the gRPC port: the server's certificate chain and key (PEM) and, for mutual TLS, the CA
/// that client certificates must chain to (a client without one is refused in the handshake).
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    pub client_ca_pem: Option<Vec<u8>>,
}

/// Serves without TLS: see [`serve_with`].
pub async fn serve(
    listener: TcpListener,
    cp: Arc<ControlPlane>,
    admin_token: Option<String>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    serve_with(listener, cp, admin_token, None, shutdown).await
}

/// Serves both gRPC services, `grpc.health.v1` and server reflection (v1 and v1alpha) on
/// `listener` until `shutdown` completes, over TLS when `tls` is given. With `admin_token` set,
/// Admin and Discovery calls must carry it as a bearer token (on top of any client certificate).
pub async fn serve_with(
    listener: TcpListener,
    cp: Arc<ControlPlane>,
    admin_token: Option<String>,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let check = auth::TokenCheck::new(admin_token.as_deref());
    let admin_check = check.clone();
    // Both reflection versions: current grpcurl speaks v1; Python's grpcio-reflection, Evans
    // and older grpcurl builds speak only v1alpha.
    let reflection_v1 = reflection_builder().build_v1().map_err(reflection_failed);
    let reflection_v1alpha = reflection_builder()
        .build_v1alpha()
        .map_err(reflection_failed);
    let (closing_tx, closing) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        shutdown.await;
        let _ = closing_tx.send(true);
    };
    let (health, health_service) = tonic_health::server::health_reporter();
    tokio::spawn(report_health(cp.health(), health));
    let trace_layer = telemetry::GrpcTraceLayer {
        traces: cp.traces.clone(),
    };
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let mut config = tonic::transport::ServerTlsConfig::new().identity(
            tonic::transport::Identity::from_pem(tls.cert_pem, tls.key_pem),
        );
        if let Some(ca) = tls.client_ca_pem {
            config = config.client_ca_root(tonic::transport::Certificate::from_pem(ca));
        }
        server = server.tls_config(config)?;
    }
    let mut router = server
        .layer(trace_layer)
        // Unauthenticated, like any probe endpoint: it says SERVING or NOT_SERVING and nothing else.
        .add_service(health_service)
        .add_service(AdminServer::with_interceptor(
            AdminService::new(cp.clone()),
            move |r| admin_check.check(r),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            // A usage batch is at most 1,000 records and ~4 MiB of bodies and metadata (the data
            // plane's bounds); tonic's default of 4 MiB would refuse a full one for ever.
            DiscoveryServer::new(DiscoveryService::new(cp, closing))
                .max_decoding_message_size(MAX_USAGE_BATCH_BYTES),
            move |r| check.check(r),
        ));
    if let Ok(reflection) = reflection_v1 {
        router = router.add_service(reflection);
    }
    if let Ok(reflection) = reflection_v1alpha {
        router = router.add_service(reflection);
    }
    router
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
}
