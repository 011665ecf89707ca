//! Relays an upstream SSE stream to the client as it arrives: decode events, let the adapter turn
//! them into OpenAI chunks, add TokenRouter's extension fields, and end a broken stream with an
//! in-band error (no `[DONE]`, so the OpenAI SDK raises).

use std::collections::VecDeque;
use std::time::Instant;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::{UpstreamError, classify_transport};
use crate::extensions::Extensions;
use crate::providers::{Flow, StreamTranslator};
use crate::sse::SseDecoder;
use crate::usage::Usage;

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// Called once when the stream ends, with the usage seen and whether it completed.
pub type OnFinish = Box<dyn FnOnce(Option<Usage>, bool) + Send>;

/// An upstream stream being relayed.
pub struct Relay {
    upstream: ByteStream,
    decoder: SseDecoder,
    translator: Box<dyn StreamTranslator>,
    /// Translated chunks (JSON objects) not yet sent.
    queue: VecDeque<String>,
    ext: Extensions,
    started: Instant,
    /// Set when nothing but what is queued remains: `Some(frame)` is the final frame to send.
    ending: Option<Option<Bytes>>,
    done: bool,
    on_finish: Option<OnFinish>,
}

impl Relay {
    /// Starts reading `response` and waits until the adapter has produced its first chunk, so a
    /// provider that fails before sending anything can still be replaced by the next attempt.
    pub async fn open(
        response: reqwest::Response,
        translator: Box<dyn StreamTranslator>,
        ext: Extensions,
        started: Instant,
        on_finish: OnFinish,
    ) -> Result<Relay, UpstreamError> {
        let mut relay = Relay {
            upstream: Box::pin(response.bytes_stream()),
            decoder: SseDecoder::new(),
            translator,
            queue: VecDeque::new(),
            ext,
            started,
            ending: None,
            done: false,
            on_finish: Some(on_finish),
        };
        while relay.queue.is_empty() && relay.ending.is_none() {
            match relay.upstream.next().await {
                Some(Ok(bytes)) => relay.absorb(&bytes)?,
                Some(Err(e)) => return Err(classify_transport(e)),
                None => {
                    return Err(UpstreamError::StreamBroken(
                        "ended its stream before sending anything".into(),
                    ));
                }
            }
        }
        if relay.queue.is_empty()
            && relay.ending == Some(Some(Bytes::from_static(b"data: [DONE]\n\n")))
        {
            return Err(UpstreamError::StreamBroken(
                "finished its stream without any content".into(),
            ));
        }
        Ok(relay)
    }

    /// Decodes bytes and translates every complete event; errors before the first chunk propagate.
    fn absorb(&mut self, bytes: &[u8]) -> Result<(), UpstreamError> {
        let mut events = Vec::new();
        let decoded = self.decoder.feed(bytes, &mut events);
        let mut out = Vec::new();
        let mut translated = Ok(());
        for event in events {
            match self.translator.event(event, &mut out) {
                Ok(Flow::More) => {}
                Ok(Flow::Done) => {
                    self.ending = Some(Some(Bytes::from_static(b"data: [DONE]\n\n")));
                    break;
                }
                Err(e) => {
                    translated = Err(e);
                    break;
                }
            }
        }
        self.queue.extend(out);
        translated?;
        decoded.map_err(|e| UpstreamError::StreamBroken(e.to_string()))
    }

    /// The relayed stream of SSE bytes for the client.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send {
        futures::stream::unfold(self, |mut relay| async move {
            relay.next_frame().await.map(|frame| (Ok(frame), relay))
        })
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                let latency = self.started.elapsed().as_millis() as u64;
                let mut frame = Vec::with_capacity(chunk.len() + 160);
                frame.extend_from_slice(b"data: ");
                self.ext.splice_into(chunk.as_bytes(), latency, &mut frame);
                frame.extend_from_slice(b"\n\n");
                return Some(Bytes::from(frame));
            }
            if let Some(last) = self.ending.take() {
                let completed = last.as_deref() == Some(b"data: [DONE]\n\n");
                self.finish(completed);
                return last;
            }
            if self.done {
                return None;
            }
            match self.upstream.next().await {
                Some(Ok(bytes)) => {
                    if let Err(e) = self.absorb(&bytes) {
                        self.fail(e);
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(provider = %self.ext.provider, error = %e, "upstream stream broke");
                    self.fail(UpstreamError::StreamBroken("broke off the stream".into()));
                }
                None => {
                    let mut events = Vec::new();
                    let _ = self.decoder.finish(&mut events);
                    let mut out = Vec::new();
                    let mut flow = Flow::More;
                    for event in events {
                        match self.translator.event(event, &mut out) {
                            Ok(Flow::Done) => flow = Flow::Done,
                            Ok(Flow::More) => {}
                            Err(e) => {
                                self.queue.extend(out.drain(..));
                                self.fail(e);
                                break;
                            }
                        }
                    }
                    self.queue.extend(out.drain(..));
                    if self.ending.is_none() {
                        if flow == Flow::Done {
                            self.ending = Some(Some(Bytes::from_static(b"data: [DONE]\n\n")));
                        } else {
                            match self.translator.end(&mut out) {
                                Ok(()) => {
                                    self.ending =
                                        Some(Some(Bytes::from_static(b"data: [DONE]\n\n")))
                                }
                                Err(e) => self.fail(e),
                            }
                            self.queue.extend(out);
                        }
                    }
                }
            }
        }
    }

    /// Ends the stream with an in-band error frame after whatever is queued.
    fn fail(&mut self, error: UpstreamError) {
        let api = error.to_api_error(&self.ext.provider);
        self.ending = Some(Some(Bytes::from(format!("data: {}\n\n", api.body()))));
    }

    fn finish(&mut self, completed: bool) {
        self.done = true;
        if let Some(f) = self.on_finish.take() {
            f(self.translator.usage(), completed);
        }
    }
}

impl Drop for Relay {
    /// A client that went away still has its usage recorded (the upstream is dropped with us).
    fn drop(&mut self) {
        if let Some(f) = self.on_finish.take() {
            f(self.translator.usage(), false);
        }
    }
}
