//! Provider simulators: local HTTP servers that speak the real wire protocol of OpenAI, Mistral,
//! DeepSeek, Anthropic and Gemini, answer deterministically, and can be told to fail.
//!
//! End-to-end tests, `bench/` and `tokenrouter serve --demo` start a [`Simulator`] on
//! `127.0.0.1:0`, point a provider's base URL at [`Simulator::base_url`], and use
//! [`Simulator::push_fault`] / [`Simulator::set_fault`] to inject errors, stalls and cuts.
//! Answers say plainly that they are simulated; token usage is whitespace word counts. OpenAI,
//! Mistral and Gemini also serve embeddings (deterministic vectors per text; see `embeddings`);
//! OpenAI also serves the Responses API (`responses`), remembering stored answers for
//! `previous_response_id`.

mod anthropic;
mod anthropic_stream;
mod auth;
mod embeddings;
mod errors;
mod gemini;
mod openai;
mod openai_checks;
mod openai_stream;
mod pipeline;
mod recording;
mod responses;
mod responses_checks;
mod responses_stream;
mod sse;
mod state;
mod text;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use pipeline::app;
pub use recording::{Recording, sse_from_chunks, sse_from_response_chunks};
pub use state::SimState;

/// Which provider's wire protocol a simulator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI Chat Completions (`/v1/chat/completions`) and the Responses API (`/v1/responses`).
    OpenAi,
    /// Mistral chat completions: OpenAI-like, usage on the finish chunk, 9-char tool-call ids.
    Mistral,
    /// DeepSeek: OpenAI-like, keep-alive comments, `reasoning_content` for reasoner models.
    DeepSeek,
    /// Anthropic Messages API (`/v1/messages`).
    Anthropic,
    /// Google Gemini `generateContent` / `streamGenerateContent` (`/v1beta`).
    Gemini,
}

impl Protocol {
    /// Parses the lowercase name used on command lines (`openai`, `mistral`, ...).
    pub fn from_name(name: &str) -> Option<Protocol> {
        match name.to_ascii_lowercase().as_str() {
            "openai" => Some(Protocol::OpenAi),
            "mistral" => Some(Protocol::Mistral),
            "deepseek" => Some(Protocol::DeepSeek),
            "anthropic" => Some(Protocol::Anthropic),
            "gemini" | "google" => Some(Protocol::Gemini),
            _ => None,
        }
    }

    /// The lowercase name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Mistral => "mistral",
            Protocol::DeepSeek => "deepseek",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
        }
    }

    /// True for the protocols built on OpenAI chat completions.
    pub fn is_openai_like(self) -> bool {
        matches!(
            self,
            Protocol::OpenAi | Protocol::Mistral | Protocol::DeepSeek
        )
    }

    /// Path prefix a gateway appends the provider's paths to.
    pub fn base_path(self) -> &'static str {
        match self {
            Protocol::Gemini => "/v1beta",
            _ => "/v1",
        }
    }
}

/// How a simulator behaves. Build with [`SimConfig::new`] and adjust the public fields.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Wire protocol to speak.
    pub protocol: Protocol,
    /// Name shown in answers: `[simulated <name>] ...`.
    pub name: String,
    /// Credential every request must carry; empty accepts any (or no) credential.
    pub api_key: String,
    /// Latency added before the response headers of every request.
    pub fixed_latency: Duration,
    /// Pause between streamed chunks.
    pub chunk_interval: Duration,
    /// Keep every request in memory for [`Simulator::requests`]; turn off for long benchmarks.
    pub record_requests: bool,
    /// Reject unknown top-level request fields the way the real provider does (400/422).
    pub strict_fields: bool,
    /// Model ids listed by the models endpoint; empty lists a per-protocol default set.
    pub models: Vec<String>,
    /// Answer only the listed models, as an account without access to the others does: any other
    /// model gets the provider's own "model not found" error (OpenAI, Anthropic, Gemini: 404;
    /// Mistral, DeepSeek: 400).
    pub serves_only_listed: bool,
    /// Whether the models endpoint answers; off, it is a 404 (a server without a list endpoint).
    pub lists_models: bool,
    /// The model answers name instead of the requested one, as real providers answer with the
    /// snapshot that served (OpenAI answers `gpt-4o-mini` as `gpt-4o-mini-2024-07-18`).
    pub answer_model: Option<String>,
}

impl SimConfig {
    /// A config with no latency, recording on and strict field checks on.
    pub fn new(protocol: Protocol, name: &str, api_key: &str) -> Self {
        SimConfig {
            protocol,
            name: name.to_string(),
            api_key: api_key.to_string(),
            fixed_latency: Duration::ZERO,
            chunk_interval: Duration::ZERO,
            record_requests: true,
            strict_fields: true,
            models: Vec::new(),
            serves_only_listed: false,
            lists_models: true,
            answer_model: None,
        }
    }
}

/// A fault injected into one request ([`Simulator::push_fault`]) or all of them
/// ([`Simulator::set_fault`]). "Chunks" are SSE data events; comments do not count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status and the provider's own error body; `Retry-After` when given.
    Status {
        /// HTTP status code, e.g. 429, 500, 503, 529.
        status: u16,
        /// Value for the `Retry-After` header (and Gemini's `RetryInfo.retryDelay`).
        retry_after_secs: Option<u64>,
    },
    /// A quota error that must not be retried: OpenAI-style 429 `insufficient_quota`
    /// (Anthropic: 429 spend limit; Gemini: 429 `RESOURCE_EXHAUSTED` without `RetryInfo`).
    InsufficientQuota,
    /// Wait this long before sending the response headers.
    DelayFirstByte(Duration),
    /// Streaming: send N chunks, then keep the connection open and send nothing more.
    /// Non-streaming: never answer.
    StallAfterChunks(usize),
    /// Streaming: send N chunks, then drop the connection without the terminal event.
    /// Non-streaming: send the headers and half of the body, then drop the connection.
    CutAfterChunks(usize),
    /// Streaming: one line of invalid JSON after the first chunk, then the rest as usual.
    /// Non-streaming: same as [`Fault::Garbage`].
    MalformedChunk,
    /// 200 with a body that is not JSON.
    Garbage,
    /// Streaming: send N chunks, then the provider's in-band error event, and close without
    /// the terminal event (OpenAI Responses streams: `response.failed`, status `failed`, error
    /// code `server_error`). Ignored for non-streaming requests.
    ErrorAfterChunks(usize),
    /// Answer with this recorded response instead (credentials are still checked). Streams are
    /// sent event by event with the chunk interval.
    Replay(Recording),
}

/// One request the simulator received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lowercase.
    pub headers: Vec<(String, String)>,
    /// Body parsed as JSON, or `Null` when empty or not JSON.
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running simulator: an axum server on 127.0.0.1, stopped on [`Simulator::shutdown`] or drop.
pub struct Simulator {
    addr: SocketAddr,
    state: Arc<SimState>,
}

impl Simulator {
    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(config: SimConfig) -> std::io::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        Simulator::start_on(listener, config).await
    }

    /// Starts serving on an already bound listener.
    pub async fn start_on(
        listener: tokio::net::TcpListener,
        config: SimConfig,
    ) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let state = SimState::new(config);
        let router = app(state.clone());
        let mut stop = state.shutdown_signal();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopped| *stopped).await;
                })
                .await;
            if let Err(err) = served {
                tracing::debug!(%err, "simulator server ended with an error");
            }
        });
        Ok(Simulator { addr, state })
    }

    /// The socket address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The provider base URL for a gateway: `http://127.0.0.1:PORT/v1` (`/v1beta` for Gemini).
    pub fn base_url(&self) -> String {
        format!(
            "http://{}{}",
            self.addr,
            self.state.config().protocol.base_path()
        )
    }

    /// The shared state (config, faults, recorded requests, counters).
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Queues a fault for the next request only (FIFO).
    pub fn push_fault(&self, fault: Fault) {
        self.state.push_fault(fault);
    }

    /// Applies a fault to every request until cleared with `None`; queued faults go first.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.set_fault(fault);
    }

    /// Every request received so far (empty when recording is off), model listings apart.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    /// Number of requests received, model listings apart ([`Simulator::list_count`]).
    pub fn request_count(&self) -> usize {
        self.state.request_count()
    }

    /// Number of model-list requests received (a gateway discovering what the account serves).
    pub fn list_count(&self) -> usize {
        self.state.list_count()
    }

    /// Requests whose client went away before the simulator finished sending the answer.
    pub fn cancelled_count(&self) -> usize {
        self.state.cancelled_count()
    }

    /// Stops the server: no new connections, open streams end.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.state.trigger_shutdown();
    }
}

#[cfg(test)]
mod tests;
