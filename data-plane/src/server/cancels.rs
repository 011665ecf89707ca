//! Rapid-reset defence of our own (CVE-2023-44487): requests of one connection that the client
//! cancels (an HTTP/2 stream reset, a client going away) spend a token bucket, whether the server
//! notices while the request waits for its answer (the request is dropped unanswered) or while it
//! reads the body (the body fails); once the bucket is empty the connection is closed outright. hyper's own guards (streams reset before
//! they are accepted; streams the server itself resets) trip only when the client outpaces the
//! server, which under load it may not; this one counts every cancelled request whatever the
//! timing. A client that cancels now and then (a browser closing a tab) never comes near it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

/// Cancelled requests a connection may have in a burst.
pub const BURST: f64 = 200.0;
/// Cancelled requests a second a connection may keep up forever.
pub const PER_SEC: f64 = 10.0;

/// One connection's bucket, and how its serving loop learns it is empty.
#[derive(Debug)]
pub struct Cancels {
    bucket: Mutex<(f64, Instant)>,
    pub tripped: Notify,
}

impl Cancels {
    pub fn new() -> Arc<Cancels> {
        Arc::new(Cancels {
            bucket: Mutex::new((BURST, Instant::now())),
            tripped: Notify::new(),
        })
    }

    /// Counts one cancelled request, and tells the connection once the bucket is empty.
    fn cancelled(&self) {
        if self.spend(Instant::now()) {
            self.tripped.notify_one();
        }
    }

    /// Counts one cancelled request at `now`; `true` once the bucket is empty (and every time
    /// after, until it refills).
    fn spend(&self, now: Instant) -> bool {
        let Ok(mut b) = self.bucket.lock() else {
            return false;
        };
        let (tokens, last) = *b;
        let refilled =
            (tokens + now.saturating_duration_since(last).as_secs_f64() * PER_SEC).min(BURST);
        let left = refilled - 1.0;
        *b = (left.max(0.0), now);
        left < 0.0
    }
}

/// Held by a request while it is served; dropped before [`Guard::answered`], it counts as
/// cancelled.
pub struct Guard {
    cancels: Arc<Cancels>,
    answered: bool,
}

impl Guard {
    pub fn new(cancels: &Arc<Cancels>) -> Guard {
        Guard {
            cancels: cancels.clone(),
            answered: false,
        }
    }

    /// The connection's bucket, for the request's body.
    pub fn cancels(&self) -> &Arc<Cancels> {
        &self.cancels
    }

    /// The request got its answer (its body may still be streaming).
    pub fn answered(mut self) {
        self.answered = true;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.answered {
            self.cancels.cancelled();
        }
    }
}

/// A request body whose failure (the client reset the stream or went away mid-body) counts as a
/// cancelled request of its connection.
pub struct Watched<B> {
    inner: B,
    cancels: Option<Arc<Cancels>>,
}

impl<B> Watched<B> {
    pub fn new(inner: B, cancels: &Arc<Cancels>) -> Watched<B> {
        Watched {
            inner,
            cancels: Some(cancels.clone()),
        }
    }
}

impl<B: Body + Unpin> Body for Watched<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &polled
            && let Some(cancels) = self.cancels.take()
        {
            cancels.cancelled();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_of_cancels_empties_the_bucket_and_time_refills_it() {
        let c = Cancels::new();
        let start = Instant::now();
        for i in 0..BURST as usize {
            assert!(!c.spend(start), "cancel {i} is within the burst");
        }
        assert!(c.spend(start), "one past the burst");
        assert!(
            !c.spend(start + Duration::from_secs(1)),
            "a second refills {PER_SEC}"
        );
    }

    #[tokio::test]
    async fn only_requests_dropped_before_their_answer_count() {
        let c = Cancels::new();
        for _ in 0..1000 {
            Guard::new(&c).answered();
        }
        assert!(!c.spend(Instant::now()), "answered requests cost nothing");
        for _ in 0..BURST as usize {
            drop(Guard::new(&c));
        }
        tokio::time::timeout(Duration::from_secs(1), c.tripped.notified())
            .await
            .expect("the connection is told to close");
    }
}
