//! The load generator's HTTP/1.1 client: one keep-alive hyper connection per worker, to 127.0.0.1
//! only, timing whole answers and every SSE event of a stream as it arrives.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Longest any single request may take before it counts as failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How the SSE events of a stream mark content and the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI chunks: content is a non-empty `"content":"..."`, the end is `data: [DONE]`.
    OpenAi,
    /// Anthropic Messages events: content is a `text_delta`, the end is `message_stop`.
    Anthropic,
    /// OpenAI Responses events: content is a `response.output_text.delta`, the end is
    /// `response.completed`.
    Responses,
}

/// Where requests go and what they carry. Always 127.0.0.1: the port is the only address part.
#[derive(Debug, Clone)]
pub struct Target {
    /// Column name in the report (`direct`, `pass-through`, `tokenrouter`).
    pub label: String,
    pub addr: SocketAddr,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub dialect: Dialect,
}

impl Target {
    /// A target on `127.0.0.1:port`.
    pub fn local(label: &str, port: u16, path: &str, body: serde_json::Value) -> Arc<Target> {
        Self::with_key(label, port, path, body, None)
    }

    /// A target that sends `Authorization: Bearer <key>`.
    pub fn with_key(
        label: &str,
        port: u16,
        path: &str,
        body: serde_json::Value,
        key: Option<&str>,
    ) -> Arc<Target> {
        let mut headers = Vec::new();
        if let Some(v) = key.and_then(|k| HeaderValue::from_str(&format!("Bearer {k}")).ok()) {
            headers.push((AUTHORIZATION, v));
        }
        Arc::new(Target {
            label: label.to_string(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            path: path.to_string(),
            headers,
            body: Bytes::from(body.to_string()),
            dialect: Dialect::OpenAi,
        })
    }

    /// The same target speaking another stream dialect, with extra headers.
    pub fn dialect(mut self: Arc<Self>, d: Dialect, extra: &[(&'static str, &str)]) -> Arc<Self> {
        let t = Arc::make_mut(&mut self);
        t.dialect = d;
        for (name, value) in extra {
            if let Ok(v) = HeaderValue::from_str(value) {
                t.headers.push((HeaderName::from_static(name), v));
            }
        }
        self
    }
}

/// Timing of one streamed answer.
#[derive(Debug, Clone, Default)]
pub struct StreamTiming {
    /// From send to the first event carrying content.
    pub ttft: Option<Duration>,
    /// Arrival time (from send) of every content event.
    pub content_at: Vec<Duration>,
    /// The terminal event arrived.
    pub completed: bool,
    pub total: Duration,
}

/// One keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    /// Connects to `addr`, which must be a loopback address.
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Conn> {
        if !addr.ip().is_loopback() {
            bail!("refusing to send load to {addr}: only 127.0.0.1 is allowed");
        }
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender })
    }

    /// Whether the connection can still carry requests.
    pub fn is_usable(&self) -> bool {
        !self.sender.is_closed()
    }

    async fn send(
        &mut self,
        target: &Target,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(target.path.as_str())
            .header(HOST, HeaderValue::from_static("127.0.0.1"))
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &target.headers {
            builder = builder.header(name, value);
        }
        let request = builder.body(Full::new(target.body.clone()))?;
        self.sender.ready().await?;
        Ok(self.sender.send_request(request).await?)
    }

    /// Sends the target's body and reads the whole answer; an error unless the status is 200.
    pub async fn call(&mut self, target: &Target) -> anyhow::Result<Bytes> {
        let work = async {
            let response = self.send(target).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            if status != hyper::StatusCode::OK {
                bail!("status {status}: {}", String::from_utf8_lossy(&body));
            }
            Ok(body)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .context("request timed out")?
    }

    /// Sends a streaming request and times every event; an error unless it is 200 and completes.
    pub async fn stream(&mut self, target: &Target) -> anyhow::Result<StreamTiming> {
        self.stream_signal(target, None).await
    }

    /// Like [`Conn::stream`], and adds one to `on_first` when the first content event arrives.
    pub async fn stream_signal(
        &mut self,
        target: &Target,
        on_first: Option<&AtomicUsize>,
    ) -> anyhow::Result<StreamTiming> {
        let started = Instant::now();
        let work = async {
            let response = self.send(target).await?;
            let status = response.status();
            let mut body = response.into_body();
            if status != hyper::StatusCode::OK {
                let text = body.collect().await?.to_bytes();
                bail!("status {status}: {}", String::from_utf8_lossy(&text));
            }
            let mut timing = StreamTiming::default();
            let mut buffer: Vec<u8> = Vec::with_capacity(4096);
            while let Some(frame) = body.frame().await {
                let frame = frame?;
                let Some(data) = frame.data_ref() else {
                    continue;
                };
                let at = started.elapsed();
                buffer.extend_from_slice(data);
                while let Some(end) = find(&buffer, b"\n\n") {
                    let event: Vec<u8> = buffer.drain(..end + 2).collect();
                    let had = timing.ttft.is_some();
                    classify(&event, target.dialect, at, &mut timing)?;
                    if let (false, true, Some(counter)) = (had, timing.ttft.is_some(), on_first) {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if !timing.completed {
                bail!("the stream ended without its terminal event");
            }
            timing.total = started.elapsed();
            Ok(timing)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .context("stream timed out")?
    }
}

/// Records what one SSE event means for the timing.
fn classify(
    event: &[u8],
    dialect: Dialect,
    at: Duration,
    timing: &mut StreamTiming,
) -> anyhow::Result<()> {
    if find(event, b"data: {\"error\"").is_some()
        || find(event, b"event: error").is_some()
        || find(event, b"event: response.failed").is_some()
    {
        bail!("in-band error: {}", String::from_utf8_lossy(event));
    }
    let (content, end) = match dialect {
        Dialect::OpenAi => (
            has_text(event, b"\"content\":\""),
            find(event, b"data: [DONE]").is_some(),
        ),
        Dialect::Anthropic => (
            find(event, b"\"text_delta\"").is_some() && has_text(event, b"\"text\":\""),
            find(event, b"event: message_stop").is_some(),
        ),
        Dialect::Responses => (
            find(event, b"event: response.output_text.delta").is_some()
                && has_text(event, b"\"delta\":\""),
            find(event, b"event: response.completed").is_some(),
        ),
    };
    if content {
        timing.ttft.get_or_insert(at);
        timing.content_at.push(at);
    }
    if end {
        timing.completed = true;
    }
    Ok(())
}

/// Whether `needle` (a JSON key and opening quote) is followed by a non-empty string.
fn has_text(haystack: &[u8], needle: &[u8]) -> bool {
    let mut rest = haystack;
    while let Some(at) = find(rest, needle) {
        let after = &rest[at + needle.len()..];
        if after.first().is_some_and(|&b| b != b'"') {
            return true;
        }
        rest = after;
    }
    false
}

/// Position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_events() {
        let mut t = StreamTiming::default();
        let at = Duration::from_millis(3);
        classify(
            b"data: {\"delta\":{\"content\":\"\"}}\n\n",
            Dialect::OpenAi,
            at,
            &mut t,
        )
        .unwrap();
        assert!(t.ttft.is_none());
        classify(
            b"data: {\"delta\":{\"content\":\"Hi\"}}\n\n",
            Dialect::OpenAi,
            at,
            &mut t,
        )
        .unwrap();
        assert_eq!(t.ttft, Some(at));
        classify(b"data: [DONE]\n\n", Dialect::OpenAi, at, &mut t).unwrap();
        assert!(t.completed);
        assert!(classify(b"data: {\"error\":{}}\n\n", Dialect::OpenAi, at, &mut t).is_err());
    }
}
