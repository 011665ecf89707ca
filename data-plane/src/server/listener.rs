//! One listener: the accept loop with its caps (open connections, per client address), hyper's
//! HTTP/1.1 and HTTP/2 with their timeouts and limits, each connection's idle timeout, and the
//! drain: stop accepting, let every connection finish what it is serving, up to a deadline.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::request::body::{BodyClock, Deadlined};
use crate::server::admission::{Activity, Admission, Tracked};
use crate::server::cancels::{Cancels, Guard, Watched};
use crate::server::client_ip::{ClientSlot, PerClient, is_trusted};
use crate::state::{BODY_RATE_GRACE, ListenerLimits};
use crate::telemetry::connections::Refusal;

/// Connections past the cap that are still answered with a 503 at once; past these they are
/// closed unanswered (answering costs a socket too).
const OVERFLOW_ANSWERS: usize = 64;
/// How long an overflow answer waits for the request and for the client to read the answer.
const OVERFLOW_WAIT: Duration = Duration::from_secs(1);

/// Streams the server may reset or refuse on one HTTP/2 connection before it closes it.
const H2_MAX_LOCAL_RESETS: usize = 1024;

/// What every connection of a listener shares.
struct Shared {
    router: Router,
    admission: Admission,
    http: auto::Builder<TokioExecutor>,
    clock: BodyClock,
}

/// hyper configured from the limits.
fn http_builder(limits: &ListenerLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses a buffer under 8 KiB.
        .max_buf_size((limits.max_header_bytes as usize).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes)
        .max_pending_accept_reset_streams(limits.h2_max_pending_resets)
        // Rapid reset (CVE-2023-44487): a client that keeps opening streams past the concurrency
        // limit, or cancelling them, makes the server refuse or reset them; past this many the
        // connection ends with GOAWAY ENHANCE_YOUR_CALM. These trip only when the client outpaces
        // the server; `server::cancels` closes the connection whatever the timing.
        .max_local_error_reset_streams(Some(H2_MAX_LOCAL_RESETS))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// Serves `router` on `listener` until `drain` turns true, then stops accepting and waits for the
/// open connections to finish, at most `drain_timeout` (the rest are closed). Returns how many
/// connections were still open when it gave up.
pub async fn run(
    listener: TcpListener,
    router: Router,
    admission: Admission,
    mut drain: watch::Receiver<bool>,
    drain_timeout: Duration,
) -> usize {
    let limits = admission.limits().clone();
    let shared = Arc::new(Shared {
        router,
        http: http_builder(&limits),
        clock: BodyClock {
            timeout: limits.body_read_timeout,
            min_bytes_per_sec: limits.body_min_bytes_per_sec,
            grace: BODY_RATE_GRACE,
        },
        admission,
    });
    let capacity = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let overflow = Arc::new(Semaphore::new(OVERFLOW_ANSWERS));
    let per_client =
        (limits.max_connections_per_ip > 0).then(|| PerClient::new(limits.max_connections_per_ip));
    let mut connections = JoinSet::new();
    let for_connections = drain.clone();
    loop {
        tokio::select! {
            biased;
            () = drained(&mut drain) => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(&shared, &e).await;
                        continue;
                    }
                };
                while connections.try_join_next().is_some() {}
                let _ = tcp.set_nodelay(true);
                let Ok(permit) = capacity.clone().try_acquire_owned() else {
                    refuse(&shared, &overflow, tcp, Refusal::Connections, "open connections");
                    continue;
                };
                // A trusted proxy carries many clients: they are counted per request instead.
                let slot = match &per_client {
                    Some(per) if !is_trusted(&limits.trusted_proxies, peer.ip()) => {
                        match per.take(peer.ip()) {
                            Some(slot) => Some(slot),
                            None => {
                                refuse(&shared, &overflow, tcp, Refusal::ClientIp, "connections from one client");
                                continue;
                            }
                        }
                    }
                    _ => None,
                };
                let shared = shared.clone();
                let drain = for_connections.clone();
                connections.spawn(async move {
                    serve_connection(&shared, tcp, peer, drain, slot).await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(drain_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    let left = connections.len();
    if drained.is_err() {
        tracing::warn!(
            connections = left,
            "drain timeout: closing the connections still open"
        );
        connections.shutdown().await;
    }
    left
}

/// Completes once the drain has begun (or its sender is gone).
async fn drained(drain: &mut watch::Receiver<bool>) {
    let _ = drain.wait_for(|d| *d).await;
}

async fn accept_failed(shared: &Shared, e: &std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    // Out of file descriptors (EMFILE/ENFILE) or memory: pause rather than spin.
    shared
        .admission
        .stats()
        .accept_errors
        .fetch_add(1, Ordering::Relaxed);
    tracing::warn!(error = %e, "accept failed; pausing 50 ms");
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Serves one connection until it closes, is idle too long, or the drain asks it to finish.
async fn serve_connection(
    shared: &Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    mut drain: watch::Receiver<bool>,
    _slot: Option<ClientSlot>,
) {
    let stats = shared.admission.stats().clone();
    stats.open.fetch_add(1, Ordering::Relaxed);
    let activity = Activity::new();
    let cancels = Cancels::new();
    let service = {
        let shared = shared.clone();
        let activity = activity.clone();
        let cancels = cancels.clone();
        hyper::service::service_fn(move |request: http::Request<Incoming>| {
            let admitted = shared
                .admission
                .admit(request.headers(), peer.ip(), &activity);
            let shared = shared.clone();
            let guard = Guard::new(&cancels);
            async move {
                let ticket = match admitted {
                    Ok(ticket) => ticket,
                    Err(refused) => return Ok::<_, Infallible>(refused.into_response()),
                };
                let clock = shared.clock;
                let request = request.map(|body| {
                    axum::body::Body::new(Watched::new(
                        Deadlined::new(body, clock),
                        guard.cancels(),
                    ))
                });
                let response = match shared.router.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                guard.answered();
                Ok(response.map(|body| axum::body::Body::new(Tracked::new(body, ticket))))
            }
        })
    };
    let keep_alive = shared.admission.limits().keep_alive_timeout;
    let connection = shared.http.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let mut idle_check = tokio::time::interval_at(
        tokio::time::Instant::now() + keep_alive,
        (keep_alive / 4).max(Duration::from_millis(100)),
    );
    let mut finishing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                break;
            }
            () = drained(&mut drain), if !finishing => {
                connection.as_mut().graceful_shutdown();
                finishing = true;
            }
            () = cancels.tripped.notified() => {
                // Rapid reset: closed outright, not drained (its requests are cancelled anyway).
                stats.rapid_resets.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, "closing a connection that cancelled too many requests");
                break;
            }
            _ = idle_check.tick(), if !finishing => {
                if activity.idle_for() >= keep_alive {
                    connection.as_mut().graceful_shutdown();
                    finishing = true;
                }
            }
        }
    }
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

/// Answers a connection past a cap with a 503 and closes it, or closes it unanswered when too
/// many such answers are already being written.
fn refuse(
    shared: &Shared,
    overflow: &Arc<Semaphore>,
    mut tcp: TcpStream,
    why: Refusal,
    what: &'static str,
) {
    shared.admission.stats().refused(why);
    let Ok(permit) = overflow.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let error = crate::error::ApiError::server_overloaded(what);
        let body = error.body().to_string();
        let answer = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut request = [0u8; 4096];
        // Read the request first, so closing does not reset the connection under the answer.
        let _ = tokio::time::timeout(OVERFLOW_WAIT, tcp.read(&mut request)).await;
        let _ = tokio::time::timeout(OVERFLOW_WAIT, async {
            tcp.write_all(answer.as_bytes()).await?;
            tcp.shutdown().await?;
            while tcp.read(&mut request).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
        drop(permit);
    });
}
