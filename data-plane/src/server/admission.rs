//! Per request, before any route runs: the cap on requests in flight and, behind a trusted proxy,
//! on one forwarded client's requests (past either: 503 `server_overloaded` with `Retry-After`).
//! What is admitted holds a [`Ticket`] until its response's last byte (a stream's too), which also
//! tells the connection it is busy, for its idle timeout.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::body::Body as AxumBody;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::Instant;

use crate::error::ApiError;
use crate::server::client_ip::{ClientSlot, PerClient, forwarded_client, is_trusted};
use crate::state::ListenerLimits;
use crate::telemetry::connections::{ConnectionStats, Refusal};

/// Whether one connection is busy, and since when it has been idle.
#[derive(Debug)]
pub struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds after `born` when its last request ended.
    last_done_ms: AtomicU64,
}

impl Activity {
    pub fn new() -> Arc<Self> {
        Arc::new(Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_done_ms: AtomicU64::new(0),
        })
    }

    /// How long it has had no request in flight (zero while it has one).
    pub fn idle_for(&self) -> std::time::Duration {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return std::time::Duration::ZERO;
        }
        let last = std::time::Duration::from_millis(self.last_done_ms.load(Ordering::Acquire));
        self.born.elapsed().saturating_sub(last)
    }
}

/// Admits requests on one listener.
#[derive(Debug)]
pub struct Admission {
    limits: ListenerLimits,
    stats: Arc<ConnectionStats>,
    /// Forwarded clients' requests, when a per-client cap and trusted proxies are set.
    forwarded: Option<Arc<PerClient>>,
}

impl Admission {
    pub fn new(limits: ListenerLimits, stats: Arc<ConnectionStats>) -> Self {
        let forwarded = (limits.max_connections_per_ip > 0 && !limits.trusted_proxies.is_empty())
            .then(|| PerClient::new(limits.max_connections_per_ip));
        Admission {
            limits,
            stats,
            forwarded,
        }
    }

    pub fn limits(&self) -> &ListenerLimits {
        &self.limits
    }

    pub fn stats(&self) -> &Arc<ConnectionStats> {
        &self.stats
    }

    /// A ticket for this request, or the 503 error to answer instead.
    pub fn admit(
        &self,
        headers: &http::HeaderMap,
        peer: IpAddr,
        activity: &Arc<Activity>,
    ) -> Result<Ticket, ApiError> {
        let held = self.stats.in_flight.fetch_add(1, Ordering::AcqRel);
        // Counted from here: a refusal below gives it back through the ticket's drop.
        let mut ticket = Ticket {
            stats: self.stats.clone(),
            activity: activity.clone(),
            _client: None,
        };
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        if held >= self.limits.max_requests {
            self.stats.refused(Refusal::Requests);
            return Err(ApiError::server_overloaded("requests in flight"));
        }
        if let Some(per) = &self.forwarded
            && is_trusted(&self.limits.trusted_proxies, peer)
            && let Some(client) = forwarded_client(headers, &self.limits.trusted_proxies)
        {
            match per.take(client) {
                Some(slot) => ticket._client = Some(slot),
                None => {
                    self.stats.refused(Refusal::ClientIp);
                    return Err(ApiError::server_overloaded("requests from one client"));
                }
            }
        }
        Ok(ticket)
    }
}

/// One admitted request, held until its response is done with.
#[derive(Debug)]
pub struct Ticket {
    stats: Arc<ConnectionStats>,
    activity: Arc<Activity>,
    _client: Option<ClientSlot>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::AcqRel);
        let now = self.activity.born.elapsed().as_millis() as u64;
        self.activity.last_done_ms.store(now, Ordering::Release);
        self.activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`Ticket`] until hyper drops it.
pub struct Tracked {
    inner: AxumBody,
    _ticket: Ticket,
}

impl Tracked {
    pub fn new(inner: AxumBody, ticket: Ticket) -> Self {
        Tracked {
            inner,
            _ticket: ticket,
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
