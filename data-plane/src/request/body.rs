//! A request body on a clock: it must arrive whole within the body read timeout and, after a short
//! grace, at no less than the minimum rate, so a client trickling bytes cannot hold a request (and
//! its memory) open for ever. The timer exists only while the body is actually waiting for bytes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error a [`Deadlined`] body ends with when its client is too slow.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether `error` (or anything it wraps) is a [`BodyTimedOut`].
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// How fast a body must come.
#[derive(Debug, Clone, Copy)]
pub struct BodyClock {
    pub timeout: Duration,
    pub min_bytes_per_sec: u64,
    pub grace: Duration,
}

impl BodyClock {
    /// When the body must be done, or have more bytes than `received`, whichever comes first.
    fn deadline(&self, started: Instant, received: u64) -> Instant {
        let whole = started + self.timeout;
        if self.min_bytes_per_sec == 0 {
            return whole;
        }
        let earned = Duration::from_secs_f64(received as f64 / self.min_bytes_per_sec as f64);
        whole.min(started + self.grace + earned)
    }
}

/// `inner` under a [`BodyClock`].
pub struct Deadlined<B> {
    inner: B,
    clock: BodyClock,
    started: Instant,
    received: u64,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> Deadlined<B> {
    pub fn new(inner: B, clock: BodyClock) -> Self {
        Deadlined {
            inner,
            clock,
            started: Instant::now(),
            received: 0,
            sleep: None,
        }
    }
}

impl<B> Body for Deadlined<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = this.clock.deadline(this.started, this.received);
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if sleep.deadline() != deadline {
                    sleep.as_mut().reset(deadline);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
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
    use std::future::Future as _;

    use http_body_util::BodyExt;
    use tokio::sync::mpsc;

    use super::*;

    /// A body fed by hand: bytes arrive when the test sends them.
    struct Fed(mpsc::Receiver<Bytes>);

    impl Body for Fed {
        type Data = Bytes;
        type Error = std::convert::Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
        }
    }

    fn clock(min_rate: u64) -> BodyClock {
        BodyClock {
            timeout: Duration::from_secs(60),
            min_bytes_per_sec: min_rate,
            grace: Duration::from_secs(5),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickle_below_the_minimum_rate_times_out() {
        let (tx, rx) = mpsc::channel(8);
        let body = Deadlined::new(Fed(rx), clock(1000));
        let feeder = tokio::spawn(async move {
            // 100 bytes a second: a tenth of the minimum.
            for _ in 0..100 {
                if tx.send(Bytes::from(vec![b'x'; 100])).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let started = Instant::now();
        let e = body.collect().await.expect_err("times out");
        assert!(timed_out(&*e));
        // 5 s grace plus what the bytes received earned (~0.1 s a second): well before 60 s.
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "{:?}",
            started.elapsed()
        );
        feeder.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_body_is_read_and_a_stalled_one_stops_at_the_timeout() {
        let (tx, rx) = mpsc::channel(8);
        let body = Deadlined::new(Fed(rx), clock(0));
        let feeder = tokio::spawn(async move {
            for _ in 0..10 {
                tx.send(Bytes::from_static(b"0123456789")).await.unwrap();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let read = body.collect().await.unwrap().to_bytes();
        assert_eq!(read.len(), 100);
        feeder.await.unwrap();

        let (_tx, rx) = mpsc::channel::<Bytes>(1);
        let mut stalled = std::pin::pin!(Deadlined::new(Fed(rx), clock(0)).collect());
        let waker = futures::task::noop_waker();
        assert!(
            stalled
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        tokio::time::sleep(Duration::from_secs(61)).await;
        let e = stalled.await.expect_err("times out");
        assert!(timed_out(&*e));
    }
}
