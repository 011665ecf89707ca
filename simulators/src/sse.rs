//! Streaming bodies: SSE frames sent one at a time with the chunk interval, and the stream
//! faults (stall, cut, malformed line, in-band error) applied on the way out.

use std::io;
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use serde_json::Value;

use crate::Fault;
use crate::state::CancelGuard;

/// One piece of a streamed body.
pub(crate) struct Frame {
    pub bytes: Bytes,
    /// True for data events (what fault chunk counts refer to); false for comments.
    pub counts: bool,
}

/// `data: <json>\n\n` (OpenAI, Mistral, DeepSeek).
pub(crate) fn data(json: &Value) -> Frame {
    Frame {
        bytes: Bytes::from(format!("data: {json}\n\n")),
        counts: true,
    }
}

/// `event: <name>\ndata: <json>\n\n` (Anthropic).
pub(crate) fn event(name: &str, json: &Value) -> Frame {
    Frame {
        bytes: Bytes::from(format!("event: {name}\ndata: {json}\n\n")),
        counts: true,
    }
}

/// `data: <json>\r\n\r\n` (Gemini with `alt=sse`).
pub(crate) fn data_crlf(json: &Value) -> Frame {
    Frame {
        bytes: Bytes::from(format!("data: {json}\r\n\r\n")),
        counts: true,
    }
}

/// An SSE comment line, e.g. DeepSeek's `: keep-alive`; not a chunk.
pub(crate) fn comment(text: &'static str) -> Frame {
    Frame {
        bytes: Bytes::from_static(text.as_bytes()),
        counts: false,
    }
}

/// `data: [DONE]\n\n`.
pub(crate) fn done() -> Frame {
    Frame {
        bytes: Bytes::from_static(b"data: [DONE]\n\n"),
        counts: true,
    }
}

/// A streamed answer before faults are applied.
pub(crate) struct StreamReply {
    pub frames: Vec<Frame>,
    pub content_type: &'static str,
    /// What [`Fault::MalformedChunk`] inserts after the first chunk.
    pub malformed: Bytes,
    /// What [`Fault::ErrorAfterChunks`] sends before closing.
    pub error_frame: ErrorFrame,
}

/// The in-band error a stream ends with under [`Fault::ErrorAfterChunks`].
pub(crate) enum ErrorFrame {
    /// The same bytes wherever the stream breaks.
    Fixed(Bytes),
    /// Bytes built from the number of chunks already sent (Responses events are numbered).
    Numbered(Box<dyn FnOnce(usize) -> Bytes + Send>),
}

impl From<Bytes> for ErrorFrame {
    fn from(bytes: Bytes) -> ErrorFrame {
        ErrorFrame::Fixed(bytes)
    }
}

impl ErrorFrame {
    fn render(self, sent: usize) -> Bytes {
        match self {
            ErrorFrame::Fixed(bytes) => bytes,
            ErrorFrame::Numbered(build) => build(sent),
        }
    }
}

enum StreamFault {
    None,
    Stall(usize),
    Cut(usize),
    Error(usize),
}

struct Driver {
    frames: std::iter::Peekable<std::vec::IntoIter<Frame>>,
    sent: usize,
    fault: StreamFault,
    malformed: Option<Bytes>,
    error_frame: Option<ErrorFrame>,
    interval: Duration,
    guard: CancelGuard,
    done: bool,
}

type Item = Result<Bytes, io::Error>;

/// Pause before a deliberate cut so that everything sent before it reaches the client.
pub(crate) const FLUSH_PAUSE: Duration = Duration::from_millis(10);

/// Builds the body that sends `reply` frame by frame, applying `fault`.
pub(crate) fn body(reply: StreamReply, fault: Option<&Fault>, guard: CancelGuard) -> Body {
    let (fault, malformed) = match fault {
        Some(Fault::StallAfterChunks(n)) => (StreamFault::Stall(*n), None),
        Some(Fault::CutAfterChunks(n)) => (StreamFault::Cut(*n), None),
        Some(Fault::ErrorAfterChunks(n)) => (StreamFault::Error(*n), None),
        Some(Fault::MalformedChunk) => (StreamFault::None, Some(reply.malformed)),
        _ => (StreamFault::None, None),
    };
    let driver = Driver {
        frames: reply.frames.into_iter().peekable(),
        sent: 0,
        fault,
        malformed,
        error_frame: Some(reply.error_frame),
        interval: guard.state().config().chunk_interval,
        guard,
        done: false,
    };
    Body::from_stream(futures::stream::unfold(driver, step))
}

async fn step(mut driver: Driver) -> Option<(Item, Driver)> {
    if driver.done {
        return None;
    }
    if driver.sent >= 1
        && let Some(bad) = driver.malformed.take()
    {
        return Some((Ok(bad), driver));
    }
    // Frames that are not chunks (comments) go out before a fault triggers.
    let next_counts = driver.frames.peek().is_some_and(|frame| frame.counts);
    match driver.fault {
        _ if !next_counts => {}
        StreamFault::Stall(n) if driver.sent >= n => {
            // Hang until the client leaves (the guard then counts a cancel) or the simulator stops.
            let state = driver.guard.state().clone();
            state.stopped().await;
            return Some(end(driver, Err(io::Error::other("simulator stopped"))));
        }
        StreamFault::Cut(n) if driver.sent >= n => {
            // Pending once so hyper flushes what was sent; then an error from the body makes
            // hyper drop the connection without a clean end.
            tokio::time::sleep(FLUSH_PAUSE).await;
            return Some(end(
                driver,
                Err(io::Error::other("simulated connection cut")),
            ));
        }
        StreamFault::Error(n) if driver.sent >= n => {
            let frame = driver
                .error_frame
                .take()
                .map(|frame| frame.render(driver.sent))
                .unwrap_or_default();
            return Some(end(driver, Ok(frame)));
        }
        _ => {}
    }
    let Some(frame) = driver.frames.next() else {
        driver.guard.finish();
        return None;
    };
    if frame.counts && driver.sent > 0 && !driver.interval.is_zero() {
        let state = driver.guard.state().clone();
        if !state.sleep(driver.interval).await {
            return Some(end(driver, Err(io::Error::other("simulator stopped"))));
        }
    }
    if frame.counts {
        driver.sent += 1;
    }
    Some((Ok(frame.bytes), driver))
}

fn end(mut driver: Driver, item: Item) -> (Item, Driver) {
    driver.guard.finish();
    driver.done = true;
    (item, driver)
}
