//! Test support: loads the recorded provider traffic in `fixtures/` (see its README for formats and
//! provenance) and replays streams through a translator, whole and split at every byte.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::error::UpstreamError;
use crate::providers::reasoning_cache::ReasoningCache;
use crate::providers::{Flow, Protocol, ResponseCtx, StreamTranslator, stream_translator};
use crate::upstream::sse::SseDecoder;

/// `fixtures/<rel>` in the repository.
pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(rel)
}

/// Every file name in `fixtures/<dir>`.
pub fn list(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path(dir))
        .unwrap_or_else(|e| panic!("fixtures/{dir}: {e}"))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

pub fn text(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("fixtures/{rel}: {e}"))
}

pub fn json(rel: &str) -> Value {
    serde_json::from_str(&text(rel)).unwrap_or_else(|e| panic!("fixtures/{rel}: {e}"))
}

/// The JSON payloads of a `*.chunks.txt` file, one per line.
pub fn chunks(rel: &str) -> Vec<String> {
    text(rel)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// Re-wraps chunk lines as the provider's real SSE framing (README: `event:` lines for Anthropic,
/// `\r\n\r\n` and no `[DONE]` for Gemini, `[DONE]` for the OpenAI protocol).
pub fn chunks_to_sse(protocol: Protocol, lines: &[String]) -> Vec<u8> {
    use tokenrouter_simulators::Protocol as Sim;
    let sim = match protocol {
        Protocol::Anthropic => Sim::Anthropic,
        Protocol::Gemini => Sim::Gemini,
        Protocol::Mistral => Sim::Mistral,
        Protocol::DeepSeek => Sim::DeepSeek,
        Protocol::OpenAi | Protocol::Compatible => Sim::OpenAi,
    };
    tokenrouter_simulators::sse_from_chunks(sim, lines)
}

/// One request/response pair of a pydantic-ai VCR cassette.
#[derive(Debug, Clone)]
pub struct Interaction {
    pub uri: String,
    /// The request body (`parsed_body`), when recorded.
    pub request: Option<Value>,
    pub status: u16,
    /// The raw response body (`body.string`: real SSE framing for streams).
    pub raw: Option<String>,
    /// The parsed JSON response body (`parsed_body`).
    pub response: Option<Value>,
}

/// Every interaction of a `*.yaml` cassette.
pub fn cassette(rel: &str) -> Vec<Interaction> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&text(rel)).unwrap_or_else(|e| panic!("fixtures/{rel}: {e}"));
    let to_json = |v: &serde_yaml::Value| serde_json::to_value(v).ok();
    let empty = Vec::new();
    let items = doc
        .get("interactions")
        .and_then(|i| i.as_sequence())
        .unwrap_or(&empty);
    items
        .iter()
        .map(|i| {
            let req = &i["request"];
            let resp = &i["response"];
            Interaction {
                uri: req["uri"].as_str().unwrap_or_default().to_string(),
                request: req.get("parsed_body").and_then(to_json),
                status: resp["status"]["code"].as_u64().unwrap_or(0) as u16,
                raw: resp
                    .get("body")
                    .and_then(|b| b.get("string"))
                    .and_then(|s| s.as_str())
                    .map(str::to_string),
                response: resp.get("parsed_body").and_then(to_json),
            }
        })
        .collect()
}

/// The reasoning cache the adapter tests share: one per test process, so a multi-turn test's
/// later turn finds what its first turn's answer left (a data plane has its own, in its state).
pub fn cache() -> Arc<ReasoningCache> {
    static CACHE: OnceLock<Arc<ReasoningCache>> = OnceLock::new();
    CACHE.get_or_init(Arc::default).clone()
}

/// A fixed context so translations are comparable.
pub fn ctx(include_usage: bool) -> ResponseCtx {
    ResponseCtx {
        id: "chatcmpl-test".into(),
        created: 1_700_000_000,
        model: "test-model".into(),
        include_usage,
        cache: cache(),
    }
}

/// What a stream translated to: the chunks (parsed) and how it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub chunks: Vec<Value>,
    /// `Ok(true)`: ended with `[DONE]`; `Ok(false)`: upstream closed cleanly; `Err`: in-band error.
    pub end: Result<bool, UpstreamError>,
}

/// Feeds `bytes` (split into the given pieces) through a fresh translator.
pub fn replay_pieces(protocol: Protocol, pieces: &[&[u8]], include_usage: bool) -> Replay {
    let mut translator: Box<dyn StreamTranslator> = stream_translator(protocol, ctx(include_usage));
    let mut decoder = SseDecoder::new();
    let mut out = Vec::new();
    let mut events = Vec::new();
    let parse = |out: Vec<String>| {
        out.iter()
            .map(|c| serde_json::from_str::<Value>(c).expect("translator emitted invalid JSON"))
            .collect::<Vec<_>>()
    };
    for piece in pieces {
        decoder.feed(piece, &mut events).expect("valid SSE");
        for event in events.drain(..) {
            match translator.event(event, &mut out) {
                Ok(Flow::More) => {}
                Ok(Flow::Done) => {
                    return Replay {
                        chunks: parse(out),
                        end: Ok(true),
                    };
                }
                Err(e) => {
                    return Replay {
                        chunks: parse(out),
                        end: Err(e),
                    };
                }
            }
        }
    }
    decoder.finish(&mut events).expect("valid SSE");
    for event in events.drain(..) {
        match translator.event(event, &mut out) {
            Ok(Flow::More) => {}
            Ok(Flow::Done) => {
                return Replay {
                    chunks: parse(out),
                    end: Ok(true),
                };
            }
            Err(e) => {
                return Replay {
                    chunks: parse(out),
                    end: Err(e),
                };
            }
        }
    }
    let end = translator.end(&mut out).map(|()| false);
    Replay {
        chunks: parse(out),
        end,
    }
}

/// Replays a whole stream in one piece.
pub fn replay(protocol: Protocol, bytes: &[u8], include_usage: bool) -> Replay {
    replay_pieces(protocol, &[bytes], include_usage)
}

/// Asserts that splitting the stream at every byte (inside UTF-8 sequences and CRLF pairs too)
/// translates to exactly what the whole stream does.
pub fn assert_split_invariant(protocol: Protocol, bytes: &[u8], include_usage: bool) {
    let whole = replay(protocol, bytes, include_usage);
    for at in 1..bytes.len() {
        let split = replay_pieces(protocol, &[&bytes[..at], &bytes[at..]], include_usage);
        assert_eq!(split, whole, "split at byte {at} changed the translation");
    }
}

/// Concatenates the `delta.content` of every chunk's first choice.
pub fn content_of(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}
