//! The `Discovery` gRPC service: a state-of-the-world Watch stream per data plane, plus ACK/NACK.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokenrouter_proto::v1::discovery_server::Discovery;
use tokenrouter_proto::v1::{
    AckRequest, AckResponse, Snapshot, StatusReport, UsageBatch, WatchRequest, WatchResponse,
};

use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::state::ControlPlane;

/// Most usage records one report may carry.
const MAX_USAGE_BATCH: usize = 5000;
/// Why a control plane without its store pushes nothing.
const LOST_STORE: &str = "this control plane cannot reach its store; try another";

/// Serves `tokenrouter.v1.Discovery` over a [`ControlPlane`].
#[derive(Debug, Clone)]
pub struct DiscoveryService {
    cp: Arc<ControlPlane>,
    closing: watch::Receiver<bool>,
}

impl DiscoveryService {
    /// `closing` turning true ends every open Watch stream, so a graceful shutdown can finish and
    /// data planes move on to reconnecting (to this copy when it returns, or to another one).
    pub fn new(cp: Arc<ControlPlane>, closing: watch::Receiver<bool>) -> Self {
        DiscoveryService { cp, closing }
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Discovery for DiscoveryService {
    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let req = request.into_inner();
        if req.node_id.is_empty() || req.node_id.len() > 128 {
            return Err(Status::invalid_argument(
                "node_id: must be 1 to 128 characters",
            ));
        }
        let cp = self.cp.clone();
        let mut closing = self.closing.clone();
        if *closing.borrow() {
            return Err(Status::unavailable("the control plane is shutting down"));
        }
        let mut health = cp.health();
        if !*health.borrow() {
            return Err(Status::unavailable(LOST_STORE));
        }
        let mut updates = cp.subscribe();
        let stream_no = cp.data_planes.connected(&req.node_id, req.serving_version);
        tracing::info!(node = %req.node_id, serving = req.serving_version, "data plane connected");
        // Capacity 1: a slow reader holds at most one pending snapshot and then gets the latest.
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                let snapshot = updates.borrow_and_update().clone();
                let span = cp.traces.push(&req.node_id, snapshot.version);
                let message = WatchResponse {
                    nonce: uuid::Uuid::new_v4().to_string(),
                    snapshot: Some(Snapshot::clone(&snapshot)),
                };
                if tx.send(Ok(message)).await.is_err() {
                    if let Some(s) = &span {
                        s.fail("disconnected");
                    }
                    break;
                }
                drop(span);
                let store_lost = tokio::select! {
                    changed = updates.changed() => if changed.is_err() { break } else { false },
                    () = tx.closed() => break,
                    _ = closing.wait_for(|c| *c) => break,
                    // What this copy holds may be stale now: send the data plane to another.
                    _ = health.wait_for(|h| !*h) => true,
                };
                if store_lost {
                    let _ = tx.send(Err(Status::unavailable(LOST_STORE))).await;
                    break;
                }
            }
            cp.data_planes.disconnected(&req.node_id, stream_no);
            cp.save_data_planes().await;
            tracing::info!(node = %req.node_id, "data plane disconnected");
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn report_usage(
        &self,
        request: Request<UsageBatch>,
    ) -> Result<Response<AckResponse>, Status> {
        let batch = request.into_inner();
        if batch.records.len() > MAX_USAGE_BATCH {
            return Err(Status::invalid_argument(format!(
                "records: at most {MAX_USAGE_BATCH} per batch"
            )));
        }
        if batch.dropped > 0 {
            tracing::warn!(node = %batch.node_id, dropped = batch.dropped, "a data plane dropped usage records (buffer full)");
        }
        self.cp.record_usage(batch.records.into()).await?;
        Ok(Response::new(AckResponse {
            data_planes: self.cp.data_planes.connected_count(),
        }))
    }

    async fn ack(&self, request: Request<AckRequest>) -> Result<Response<AckResponse>, Status> {
        let ack = request.into_inner();
        if ack.error.is_empty() {
            tracing::debug!(node = %ack.node_id, version = ack.version, "data plane acknowledged");
        } else {
            tracing::warn!(node = %ack.node_id, rejected = ack.rejected_version, serving = ack.version, error = %ack.error, "data plane refused a snapshot");
        }
        self.cp.data_planes.acked(&ack);
        Ok(Response::new(AckResponse {
            data_planes: self.cp.data_planes.connected_count(),
        }))
    }

    async fn report_status(
        &self,
        request: Request<StatusReport>,
    ) -> Result<Response<AckResponse>, Status> {
        self.cp.data_planes.reported(request.into_inner());
        Ok(Response::new(AckResponse {
            data_planes: self.cp.data_planes.connected_count(),
        }))
    }
}
