//! Relays an OpenAI-protocol SSE stream to the client as it arrives, adding TokenRouter's extension
//! fields to every chunk without re-serialising it, and ending a broken stream with an in-band error.

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{UpstreamError, classify_transport};
use crate::error::ApiError;
use crate::extensions::Extensions;
use crate::sse::{SseDecoder, SseEvent};

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// An upstream stream being relayed.
pub struct Relay {
    upstream: ByteStream,
    decoder: SseDecoder,
    queue: VecDeque<SseEvent>,
    ext: Extensions,
    started: Instant,
    finished: bool,
}

impl Relay {
    /// Starts reading `response` and waits for its first event, so a provider that fails before
    /// sending anything can still be replaced by the next attempt.
    pub async fn open(
        response: reqwest::Response,
        ext: Extensions,
        started: Instant,
    ) -> Result<Relay, UpstreamError> {
        let mut relay = Relay {
            upstream: Box::pin(response.bytes_stream()),
            decoder: SseDecoder::new(),
            queue: VecDeque::new(),
            ext,
            started,
            finished: false,
        };
        while relay.queue.is_empty() {
            match relay.upstream.next().await {
                Some(Ok(bytes)) => {
                    let mut events = Vec::new();
                    relay
                        .decoder
                        .feed(&bytes, &mut events)
                        .map_err(|e| UpstreamError::StreamBroken(e.to_string()))?;
                    relay.queue.extend(events);
                }
                Some(Err(e)) => return Err(classify_transport(e)),
                None => {
                    return Err(UpstreamError::StreamBroken(
                        "ended its stream before sending anything".into(),
                    ));
                }
            }
        }
        Ok(relay)
    }

    /// The relayed stream of SSE bytes for the client.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
        futures::stream::unfold(self, |mut relay| async move {
            relay.next_frame().await.map(|frame| (Ok(frame), relay))
        })
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                if let Some(frame) = self.translate(event) {
                    return Some(frame);
                }
                continue;
            }
            if self.finished {
                return None;
            }
            match self.upstream.next().await {
                Some(Ok(bytes)) => {
                    let mut events = Vec::new();
                    if let Err(e) = self.decoder.feed(&bytes, &mut events) {
                        return Some(self.fail(&e.to_string()));
                    }
                    self.queue.extend(events);
                }
                Some(Err(e)) => {
                    tracing::warn!(provider = %self.ext.provider, error = %e, "upstream stream broke");
                    return Some(self.fail("broke off the stream"));
                }
                None => {
                    let mut events = Vec::new();
                    let _ = self.decoder.finish(&mut events);
                    if events.is_empty() {
                        return Some(self.fail("ended the stream without finishing it"));
                    }
                    self.queue.extend(events);
                }
            }
        }
    }

    /// One upstream event to one client frame (None: nothing to send for it).
    fn translate(&mut self, event: SseEvent) -> Option<Bytes> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finished = true;
            self.queue.clear();
            return Some(Bytes::from_static(b"data: [DONE]\n\n"));
        }
        if serde_json::from_str::<serde::de::IgnoredAny>(data).is_err() || !data.starts_with('{') {
            tracing::warn!(provider = %self.ext.provider, "dropped a malformed upstream stream event");
            return None;
        }
        if is_error_event(data) {
            // Forward the provider's in-band error as ours, scrubbed, and end without [DONE].
            let message = serde_json::from_str::<super::ErrorEnvelope>(data)
                .ok()
                .and_then(|e| e.error.message)
                .map(|m| super::scrub(&m, None))
                .unwrap_or_else(|| "failed mid-stream".into());
            return Some(self.fail(&format!("reported an error mid-stream: {message}")));
        }
        let latency = self.started.elapsed().as_millis() as u64;
        let mut frame = Vec::with_capacity(data.len() + 160);
        frame.extend_from_slice(b"data: ");
        self.ext.splice_into(data.as_bytes(), latency, &mut frame);
        frame.extend_from_slice(b"\n\n");
        Some(Bytes::from(frame))
    }

    /// The in-band error frame that ends a broken stream (no `[DONE]` follows).
    fn fail(&mut self, why: &str) -> Bytes {
        self.finished = true;
        self.queue.clear();
        let error = ApiError::bad_gateway(
            "upstream_stream_error",
            format!("Provider `{}` {why}.", self.ext.provider),
        );
        Bytes::from(format!("data: {}\n\n", error.body()))
    }
}

fn is_error_event(data: &str) -> bool {
    let inner = data.trim_start_matches('{').trim_start();
    inner.starts_with("\"error\"")
}
