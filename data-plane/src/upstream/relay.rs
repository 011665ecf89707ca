//! Relays an upstream SSE stream to the client as it arrives: decode events, let the adapter turn
//! them into OpenAI chunks, add TokenRouter's extension fields, and end a broken stream with an
//! in-band error (no `[DONE]`, so the OpenAI SDK raises). A producer task owns the upstream: a client
//! that disconnects or stops reading ends it, which cancels the upstream request.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{UpstreamError, UpstreamResponse};
use crate::telemetry::trace::ResponseFacts;
use crate::telemetry::trace::content::StreamCapture;
use crate::telemetry::usage::{OpenAiUsage, Prices, Usage};
use crate::upstream::extensions::Extensions;
use crate::upstream::sse::{SseDecoder, SseEvent};

/// Whether a stream continues after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    More,
    /// The provider's terminal event arrived: send `data: [DONE]` and stop.
    Done,
}

/// Turns upstream SSE events into OpenAI `chat.completion.chunk` JSON objects (serialised, without
/// the `data: ` prefix). An `Err` ends the stream with an in-band error.
pub trait StreamTranslator: Send {
    fn event(&mut self, event: SseEvent, out: &mut Vec<String>) -> Result<Flow, UpstreamError>;
    /// The upstream closed; `Err` if it closed before its terminal event.
    fn end(&mut self, out: &mut Vec<String>) -> Result<(), UpstreamError>;
    /// Usage seen so far.
    fn usage(&self) -> Option<Usage>;
    /// The stream broke with `error`: write the frames that say so in this stream's own terms
    /// and return `true`, or `false` for the relay's OpenAI error frame (chat streams).
    fn failed(&mut self, _error: &crate::error::ApiError, _out: &mut Vec<String>) -> bool {
        false
    }
}

/// How the relay writes what the translator produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// `data: <chunk with the extension fields>`, ended by `data: [DONE]`.
    #[default]
    Chat,
    /// `event: <type>` and `data: <event>` as they are, no `[DONE]` (the Responses API).
    Events,
}

/// How a relayed stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The usage the provider reported, if it did before the end.
    pub usage: Option<Usage>,
    /// The stream reached its terminal event and the client got `[DONE]`.
    pub completed: bool,
    /// Bytes of generated text (content, reasoning, tool-call arguments) sent to the client: what a
    /// stream cut before the provider reported usage is charged for.
    pub streamed_text: u64,
    /// The answer's model; its id, finish reason and content with [`Relay::track_facts`].
    pub facts: ResponseFacts,
}

/// Called once when the stream ends.
pub type OnFinish = Box<dyn FnOnce(Finish) + Send>;

const DONE: &[u8] = b"data: [DONE]\n\n";
/// Frames buffered between the producer and a slow client.
const CLIENT_BUFFER: usize = 16;

/// Limits a relay enforces.
#[derive(Debug, Clone, Copy)]
pub struct RelayTimeouts {
    /// Until the first translated chunk (keep-alive comments do not count).
    pub first_token: Duration,
    /// Between two upstream reads (any bytes count).
    pub idle: Duration,
    /// A client that accepts nothing for this long is dropped.
    pub client_stall: Duration,
}

/// One upstream read, without I/O: decodes `bytes` and translates every event they complete into
/// `out`, stopping at the provider's terminal event (`Flow::Done`: send `[DONE]`, read no more) or
/// at the first error, which ends the stream. Public so the fuzz targets (`fuzz/`) drive exactly
/// the code a live relay runs.
pub fn translate_bytes(
    decoder: &mut SseDecoder,
    translator: &mut dyn StreamTranslator,
    bytes: &[u8],
    out: &mut Vec<String>,
) -> Result<Flow, UpstreamError> {
    let mut events = Vec::new();
    let decoded = decoder.feed(bytes, &mut events);
    for event in events {
        if translator.event(event, out)? == Flow::Done {
            // Whatever follows the terminal event is never read, so bytes after it that do not
            // decode (in the same read) must not turn a finished answer into a broken one: they
            // would not have, had they arrived in a later read.
            return Ok(Flow::Done);
        }
    }
    decoded.map_err(|e| UpstreamError::StreamBroken(e.to_string()))?;
    Ok(Flow::More)
}

/// The upstream closed (after [`translate_bytes`] returned `Flow::More` for every read): the last
/// event without its blank line, then the translator's verdict. `Ok` when the stream completed.
pub fn translate_close(
    decoder: &mut SseDecoder,
    translator: &mut dyn StreamTranslator,
    out: &mut Vec<String>,
) -> Result<(), UpstreamError> {
    let mut events = Vec::new();
    let _ = decoder.finish(&mut events);
    for event in events {
        if translator.event(event, out)? == Flow::Done {
            return Ok(());
        }
    }
    translator.end(out)
}

/// How a relayed stream ends once its queue is sent.
#[derive(Debug)]
enum Ending {
    /// The answer is whole (`[DONE]` for chat, nothing more for events).
    Done,
    /// Broken: this last frame (if any) says so.
    Failed(Option<Bytes>),
}

/// An upstream stream being relayed.
pub struct Relay {
    upstream: UpstreamResponse,
    decoder: SseDecoder,
    translator: Box<dyn StreamTranslator>,
    /// Translated chunks (JSON objects) not yet sent.
    queue: VecDeque<String>,
    ext: Extensions,
    started: Instant,
    timeouts: RelayTimeouts,
    /// The model's prices, for `cost_usd` on the chunk that carries usage.
    prices: Option<Prices>,
    /// Set when nothing but what is queued remains: how the stream ends.
    ending: Option<Ending>,
    framing: Framing,
    done: bool,
    on_finish: Option<OnFinish>,
    /// Bytes of generated text in the chunks sent so far (see [`Finish::streamed_text`]).
    streamed_text: u64,
    /// What the chunks say of the answer: its model always (the first chunk's), its id and
    /// finish reason when a span wants them.
    facts: ResponseFacts,
    track_finish: bool,
    /// The answer's content as the client gets it, when the operator captures content.
    capture: Option<StreamCapture>,
}

impl Relay {
    /// Starts reading `response` and waits until the adapter has produced its first chunk, so a
    /// provider that fails before sending anything can still be replaced by the next attempt.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        response: UpstreamResponse,
        translator: Box<dyn StreamTranslator>,
        ext: Extensions,
        started: Instant,
        timeouts: RelayTimeouts,
        prices: Option<Prices>,
        on_finish: OnFinish,
    ) -> Result<Relay, UpstreamError> {
        let mut relay = Relay {
            upstream: response,
            decoder: SseDecoder::new(),
            translator,
            queue: VecDeque::new(),
            ext,
            started,
            timeouts,
            prices,
            ending: None,
            framing: Framing::Chat,
            done: false,
            // Armed only when the relay is handed out: an attempt that fails before its first
            // chunk, or loses a hedge and is dropped while opening, is not the request's answer
            // and must not record itself.
            on_finish: None,
            streamed_text: 0,
            facts: ResponseFacts::default(),
            track_finish: false,
            capture: None,
        };
        let first = async {
            while relay.queue.is_empty() && relay.ending.is_none() {
                match relay.upstream.chunk().await? {
                    Some(bytes) => relay.absorb(&bytes)?,
                    None => {
                        return Err(UpstreamError::StreamBroken(
                            "ended its stream before sending anything".into(),
                        ));
                    }
                }
            }
            Ok(())
        };
        match tokio::time::timeout(timeouts.first_token, first).await {
            Ok(result) => result?,
            Err(_) => return Err(UpstreamError::Timeout),
        }
        if relay.queue.is_empty() {
            return Err(UpstreamError::StreamBroken(
                "finished its stream without any content".into(),
            ));
        }
        relay.on_finish = Some(on_finish);
        Ok(relay)
    }

    /// Reads the answer's finish reason (and with `content`, its text and tool calls) from the
    /// chunks as they go out, for the attempt's span; otherwise only the first chunk is read.
    pub fn track_facts(&mut self, content: bool) {
        self.track_finish = true;
        if content {
            self.capture = Some(StreamCapture::default());
        }
    }

    /// Decodes bytes and translates every complete event; errors before the first chunk propagate.
    fn absorb(&mut self, bytes: &[u8]) -> Result<(), UpstreamError> {
        let mut out = Vec::new();
        let flow = translate_bytes(&mut self.decoder, self.translator.as_mut(), bytes, &mut out);
        self.queue.extend(out);
        if flow? == Flow::Done {
            self.ending = Some(Ending::Done);
        }
        Ok(())
    }

    /// Writes the stream as Responses API events instead of chat chunks.
    pub fn frame_events(&mut self) {
        self.framing = Framing::Events;
    }

    /// The client's response body. The upstream is read by a task that stops when the client goes
    /// away or stops reading for `client_stall`.
    pub fn into_body(mut self) -> Body {
        let (tx, rx) = mpsc::channel::<Bytes>(CLIENT_BUFFER);
        let stall = self.timeouts.client_stall;
        tokio::spawn(async move {
            loop {
                let frame = tokio::select! {
                    frame = self.next_frame() => frame,
                    () = tx.closed() => break,
                };
                let Some(frame) = frame else { break };
                match tokio::time::timeout(stall, tx.send(frame)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break,
                    Err(_) => {
                        tracing::debug!(provider = %self.ext.provider, "client stopped reading; ending the stream");
                        break;
                    }
                }
            }
        });
        let stream =
            tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, std::convert::Infallible>);
        Body::from_stream(stream)
    }

    async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                self.streamed_text += text_bytes(&chunk) as u64;
                self.facts.absorb_chunk(&chunk, self.track_finish);
                if let Some(capture) = &mut self.capture {
                    capture.absorb(&chunk);
                }
                return Some(self.frame(&chunk));
            }
            if let Some(ending) = self.ending.take() {
                let (completed, last) = match ending {
                    Ending::Done => (
                        true,
                        (self.framing == Framing::Chat).then(|| Bytes::from_static(DONE)),
                    ),
                    Ending::Failed(frame) => (false, frame),
                };
                self.finish(completed);
                match last {
                    Some(last) => return Some(last),
                    None => return None,
                }
            }
            if self.done {
                return None;
            }
            match tokio::time::timeout(self.timeouts.idle, self.upstream.chunk()).await {
                Err(_) => self.fail(UpstreamError::Timeout),
                Ok(Ok(Some(bytes))) => {
                    if let Err(e) = self.absorb(&bytes) {
                        self.fail(e);
                    }
                }
                Ok(Err(e)) => self.fail(e),
                Ok(Ok(None)) => self.upstream_closed(),
            }
        }
    }

    /// One chunk with the extension fields (and `cost_usd` on the chunk that carries usage), or
    /// one Responses event with its `event:` line.
    fn frame(&self, chunk: &str) -> Bytes {
        if self.framing == Framing::Events {
            let mut frame = Vec::with_capacity(chunk.len() + 64);
            frame.extend_from_slice(b"event: ");
            frame.extend_from_slice(event_type(chunk).as_bytes());
            frame.extend_from_slice(b"\ndata: ");
            frame.extend_from_slice(chunk.as_bytes());
            frame.extend_from_slice(b"\n\n");
            return Bytes::from(frame);
        }
        let latency = self.started.elapsed().as_millis() as u64;
        let mut frame = Vec::with_capacity(chunk.len() + 192);
        frame.extend_from_slice(b"data: ");
        let cost = self
            .prices
            .filter(|_| chunk.contains("\"usage\":{"))
            .and_then(|prices| {
                #[derive(serde::Deserialize)]
                struct Peek {
                    usage: OpenAiUsage,
                }
                let usage = Usage::from(serde_json::from_str::<Peek>(chunk).ok()?.usage);
                Some(format!("\"cost_usd\":{}", prices.cost(&usage)))
            });
        self.ext.splice_with(
            chunk.as_bytes(),
            latency,
            cost.as_deref().unwrap_or(""),
            &mut frame,
        );
        frame.extend_from_slice(b"\n\n");
        Bytes::from(frame)
    }

    fn upstream_closed(&mut self) {
        let mut out = Vec::new();
        let closed = translate_close(&mut self.decoder, self.translator.as_mut(), &mut out);
        self.queue.extend(out);
        match closed {
            Ok(()) => self.ending = Some(Ending::Done),
            Err(e) => self.fail(e),
        }
    }

    /// Ends the stream with an in-band error after whatever is queued: the translator's own
    /// frames (a Responses stream's `response.failed`), else OpenAI's error object.
    fn fail(&mut self, error: UpstreamError) {
        let api = error.to_api_error(&self.ext.provider);
        let mut out = Vec::new();
        if self.translator.failed(&api, &mut out) {
            self.queue.extend(out);
            self.ending = Some(Ending::Failed(None));
        } else {
            let frame = Bytes::from(format!("data: {}\n\n", api.body()));
            self.ending = Some(Ending::Failed(Some(frame)));
        }
    }

    fn finish(&mut self, completed: bool) {
        self.done = true;
        self.report(completed);
    }

    fn report(&mut self, completed: bool) {
        if let Some(f) = self.on_finish.take() {
            let mut facts = std::mem::take(&mut self.facts);
            facts.output_messages = self.capture.as_ref().and_then(StreamCapture::messages);
            f(Finish {
                usage: self.translator.usage(),
                completed,
                streamed_text: self.streamed_text,
                facts,
            });
        }
    }
}

impl Drop for Relay {
    /// A client that went away still has its usage recorded (the upstream is dropped with us).
    fn drop(&mut self) {
        self.report(false);
    }
}

/// A Responses event's `type`: the first field of the events TokenRouter writes and of OpenAI's;
/// read from the JSON otherwise.
fn event_type(event: &str) -> std::borrow::Cow<'_, str> {
    const HEAD: &str = "{\"type\":\"";
    if let Some(rest) = event.strip_prefix(HEAD)
        && let Some(end) = rest.find('"')
        && !rest[..end].contains('\\')
    {
        return std::borrow::Cow::Borrowed(&rest[..end]);
    }
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: String,
    }
    serde_json::from_str::<Kind>(event)
        .map(|k| std::borrow::Cow::Owned(k.kind.replace(['\r', '\n'], "")))
        .unwrap_or(std::borrow::Cow::Borrowed("message"))
}

/// Bytes of generated text in one translated chunk: the string values of its `content`,
/// `reasoning_content` and tool-call `arguments` fields, escapes counted as written. A scan, no
/// parse: it runs on every chunk sent.
fn text_bytes(chunk: &str) -> usize {
    // `delta` is a string only in Responses events (a chat chunk's is an object).
    const FIELDS: [&str; 4] = [
        "\"content\":\"",
        "\"reasoning_content\":\"",
        "\"arguments\":\"",
        "\"delta\":\"",
    ];
    let bytes = chunk.as_bytes();
    let mut total = 0;
    for field in FIELDS {
        let mut from = 0;
        while let Some(at) = chunk[from..].find(field) {
            let start = from + at + field.len();
            let mut end = start;
            while end < bytes.len() && bytes[end] != b'"' {
                end += if bytes[end] == b'\\' { 2 } else { 1 };
            }
            total += end.min(bytes.len()) - start;
            from = end.min(bytes.len());
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{Protocol, ResponseCtx, stream_translator};

    fn relay(reads: &[&[u8]]) -> (Vec<String>, Result<Flow, UpstreamError>) {
        let ctx = ResponseCtx {
            id: "chatcmpl-t".into(),
            created: 1,
            model: "m".into(),
            include_usage: false,
            cache: Default::default(),
        };
        let mut translator = stream_translator(Protocol::OpenAi, ctx);
        let mut decoder = SseDecoder::new();
        let mut out = Vec::new();
        let mut flow = Ok(Flow::More);
        for read in reads {
            flow = translate_bytes(&mut decoder, translator.as_mut(), read, &mut out);
            if flow != Ok(Flow::More) {
                break;
            }
        }
        (out, flow)
    }

    /// Found by fuzzing (`stream_openai`): undecodable bytes after `[DONE]` in the same read
    /// ended a finished stream with an error, though in a later read they were never looked at.
    #[test]
    fn bytes_after_the_terminal_event_do_not_matter_in_any_read() {
        let stream: &[u8] = b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n\xff\n";
        let whole = relay(&[stream]);
        assert_eq!(whole.1, Ok(Flow::Done));
        assert_eq!(
            whole.0.len(),
            0,
            "a usage-only chunk the client did not ask for"
        );
        for at in 1..stream.len() {
            assert_eq!(
                relay(&[&stream[..at], &stream[at..]]),
                whole,
                "split at {at}"
            );
        }
    }

    #[test]
    fn text_bytes_counts_generated_text_only() {
        let chunk = r#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hel\"lo","reasoning_content":"ab","tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]}}],"model":"m"}"#;
        assert_eq!(text_bytes(chunk), 7 + 2 + 9);
        assert_eq!(
            text_bytes(r#"{"choices":[{"delta":{"role":"assistant","content":null}}]}"#),
            0
        );
        assert_eq!(text_bytes(r#"{"delta":{"content":"unterminated"#), 12);
    }

    #[test]
    fn undecodable_bytes_before_the_end_still_break_the_stream() {
        let (_, flow) = relay(&[b"data: {\"choices\":[]}\n\n\xff\n\ndata: [DONE]\n\n"]);
        assert!(
            matches!(flow, Err(UpstreamError::StreamBroken(_))),
            "{flow:?}"
        );
    }
}
