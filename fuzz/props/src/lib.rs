//! The properties TokenRouter's fuzz targets check, one function per target, shared by the
//! cargo-fuzz targets (`fuzz/fuzz_targets`, libFuzzer, nightly) and the stable-toolchain runner
//! (`fuzz/stable`). Each returns `Err` with a description when a property fails; a panic inside
//! the data plane propagates (both fuzzers report it as a crash).
//!
//! Streams go through the relay's own per-read step ([`translate_bytes`], [`translate_close`]), so
//! what is checked is exactly what a live stream runs.

mod firewall;
pub mod seeds;

pub use firewall::{PLANTED_CARD, stream_filter};

use tokenrouter_data_plane::hot_path::providers::{
    self, Flow, Protocol, ReasoningCache, RequestCtx, ResponseCtx, StreamTranslator,
};
use tokenrouter_data_plane::hot_path::sse::{SseDecoder, SseError, SseEvent};
use tokenrouter_data_plane::hot_path::{Extensions, request, translate_bytes, translate_close};

/// `Ok`, or what went wrong.
pub type Verdict = Result<(), String>;

/// The event limit of the small-limit decoder runs: small enough that fuzz inputs cross it.
pub const SMALL_LIMIT: usize = 64;

/// Most bytes of chunks a stream may translate to per upstream byte (plus [`OUTPUT_SLACK`]). A
/// chunk repeats the stream's id and model around a delta, so small events grow several times;
/// a factor beyond this means something the upstream sent once is repeated without bound.
pub const MAX_AMPLIFICATION: usize = 32;
/// Output allowed on top of [`MAX_AMPLIFICATION`] (the first chunk of each of up to 128 choices).
pub const OUTPUT_SLACK: usize = 64 * 1024;

/// Every target: its name and what it runs.
pub const TARGETS: &[&str] = &[
    "sse_decoder",
    "stream_openai",
    "stream_anthropic",
    "stream_gemini",
    "stream_mistral",
    "stream_deepseek",
    "response_openai",
    "response_anthropic",
    "response_gemini",
    "response_mistral",
    "response_deepseek",
    "request_build",
    "stream_filter",
];

/// The protocol a `stream_*` or `response_*` target name is about.
pub fn protocol_of(target: &str) -> Option<Protocol> {
    let name = target
        .strip_prefix("stream_")
        .or_else(|| target.strip_prefix("response_"))?;
    Some(match name {
        "openai" => Protocol::OpenAi,
        "anthropic" => Protocol::Anthropic,
        "gemini" => Protocol::Gemini,
        "mistral" => Protocol::Mistral,
        "deepseek" => Protocol::DeepSeek,
        _ => return None,
    })
}

/// Runs target `name` on one input; `split_seed` chooses the pseudo-random split points.
pub fn run(name: &str, data: &[u8], split_seed: u64) -> Verdict {
    match name {
        "sse_decoder" => sse_decoder(data, split_seed),
        "request_build" => request_build(data),
        "stream_filter" => stream_filter(data, split_seed),
        _ => match (name.starts_with("stream_"), protocol_of(name)) {
            (true, Some(p)) => stream(p, data, split_seed),
            (false, Some(p)) => response(p, data),
            _ => Err(format!("no target named `{name}`")),
        },
    }
}

/// FNV-1a: a split seed from the input itself (libFuzzer gives no other randomness).
pub fn hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A tiny deterministic generator (xorshift*), enough to place split points.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// The ways a stream is cut into reads, each compared with the whole stream in one read.
pub fn splittings(data: &[u8], split_seed: u64) -> Vec<(&'static str, Vec<usize>)> {
    let n = data.len();
    let mut rng = Rng::new(split_seed);
    let mut random = Vec::new();
    let mut at = 0;
    while at < n {
        at += 1 + rng.below(17);
        random.push(at.min(n));
    }
    // After every CR (so CRLF pairs split) and inside every multi-byte UTF-8 sequence.
    let boundaries = (1..n)
        .filter(|&i| data[i - 1] == b'\r' || (data[i] & 0xC0) == 0x80)
        .collect();
    vec![
        ("one byte at a time", (1..n).collect()),
        ("random cuts", random),
        ("at CR and inside UTF-8 sequences", boundaries),
    ]
}

/// `data` cut at `cuts` (offsets, clamped, any order).
pub fn pieces<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(data.len())).collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut from = 0;
    for c in cuts {
        out.push(&data[from..c]);
        from = c;
    }
    out.push(&data[from..]);
    out
}

/// What the decoder made of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub events: Vec<SseEvent>,
    pub error: Option<SseError>,
    pub lines_seen: u64,
}

/// Decodes `pieces` as successive reads (stopping at the first error, as the relay does) and
/// checks the bound after every read.
pub fn decode(pieces: &[&[u8]], limit: usize) -> Result<Decoded, String> {
    let mut decoder = SseDecoder::with_max_event_bytes(limit);
    let mut events = Vec::new();
    let mut error = None;
    for piece in pieces {
        if let Err(e) = decoder.feed(piece, &mut events) {
            error = Some(e);
            break;
        }
        if decoder.buffered() > limit {
            return Err(format!(
                "the decoder holds {} bytes, over its {limit}-byte limit",
                decoder.buffered()
            ));
        }
    }
    if error.is_none()
        && let Err(e) = decoder.finish(&mut events)
    {
        error = Some(e);
    }
    for e in &events {
        let size = e.data.len() + e.event.as_ref().map_or(0, String::len);
        if size > limit {
            return Err(format!(
                "an event of {size} bytes passed the {limit}-byte limit"
            ));
        }
    }
    Ok(Decoded {
        events,
        error,
        lines_seen: decoder.lines_seen,
    })
}

/// `sse_decoder`: any split of the bytes gives the same events, error and line count as the whole;
/// buffering stays within the event limit (checked with the real limit and with [`SMALL_LIMIT`]).
pub fn sse_decoder(data: &[u8], split_seed: u64) -> Verdict {
    for limit in [
        tokenrouter_data_plane::hot_path::sse::MAX_EVENT_BYTES,
        SMALL_LIMIT,
    ] {
        let whole = decode(&[data], limit)?;
        for (how, cuts) in splittings(data, split_seed) {
            let split = decode(&pieces(data, &cuts), limit)?;
            if split != whole {
                return Err(format!(
                    "decoding {how} (limit {limit}) differs from decoding in one read:\n  \
                     whole: {whole:?}\n  split: {split:?}"
                ));
            }
        }
    }
    Ok(())
}

/// A fixed context, so runs are comparable.
pub fn ctx() -> ResponseCtx {
    ResponseCtx {
        id: "chatcmpl-fuzz".into(),
        created: 1_700_000_000,
        model: "fuzz-model".into(),
        include_usage: true,
        cache: Default::default(),
    }
}

/// What a stream came to for the client.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    pub chunks: Vec<String>,
    /// `Ok(())`: `[DONE]`; `Err`: the in-band error the stream ended with.
    pub end: Result<(), String>,
    pub usage: Option<tokenrouter_data_plane::hot_path::Usage>,
}

/// Relays `pieces` (successive upstream reads) through a fresh translator as the relay does.
pub fn replay(protocol: Protocol, pieces: &[&[u8]], include_usage: bool) -> Replay {
    let mut translator: Box<dyn StreamTranslator> = providers::stream_translator(
        protocol,
        ResponseCtx {
            include_usage,
            ..ctx()
        },
    );
    let mut decoder = SseDecoder::new();
    let mut chunks = Vec::new();
    let mut end = None;
    for piece in pieces {
        match translate_bytes(&mut decoder, translator.as_mut(), piece, &mut chunks) {
            Ok(Flow::More) => {}
            Ok(Flow::Done) => {
                end = Some(Ok(()));
                break;
            }
            Err(e) => {
                end = Some(Err(format!("{e:?}")));
                break;
            }
        }
    }
    let end = end.unwrap_or_else(|| {
        translate_close(&mut decoder, translator.as_mut(), &mut chunks)
            .map_err(|e| format!("{e:?}"))
    });
    Replay {
        chunks,
        end,
        usage: translator.usage(),
    }
}

/// Whether `text` is one JSON object (RFC 8259: UTF-8, the grammar, an object at the top), and
/// whether the relay's splice of the extension fields into it is one too.
///
/// The grammar is the test, not `serde_json::Value`: numbers beyond `f64` (`1e400`) and lone
/// surrogate escapes (`"\ud800"`) are valid JSON that strict parsers refuse, and the OpenAI
/// passthrough relays them as the provider sent them (see fuzz/README.md).
pub fn check_object(what: &str, text: &[u8]) -> Verdict {
    if let Err(e) = json_object(text) {
        return Err(format!(
            "{what} is not a JSON object: {e}\n  {}",
            lossy(text)
        ));
    }
    let mut spliced = Vec::new();
    Extensions::new("fuzz", "pinned", "req-1").splice_with(
        text,
        7,
        "\"cost_usd\":0.5",
        &mut spliced,
    );
    if let Err(e) = json_object(&spliced) {
        return Err(format!(
            "{what} with the extension fields spliced in is not a JSON object: {e}\n  {}",
            lossy(&spliced)
        ));
    }
    Ok(())
}

/// RFC 8259's grammar, with an object at the top.
pub fn json_object(text: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
    let mut p = Grammar {
        b: text.as_bytes(),
        i: 0,
    };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err("the top level is not an object".into());
    }
    p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing bytes at {}", p.i));
    }
    Ok(())
}

struct Grammar<'a> {
    b: &'a [u8],
    i: usize,
}

impl Grammar<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at {}", c as char, self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<(), String> {
        if depth > 512 {
            return Err("nested too deeply".into());
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(format!("expected `,` or `}}` at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(format!("expected `,` or `]` at {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.literal("true"),
            Some(b'f') => self.literal("false"),
            Some(b'n') => self.literal("null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(format!("expected a value at {}", self.i)),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), String> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            Err(format!("expected `{word}` at {}", self.i))
        }
    }

    fn digits(&mut self) -> usize {
        let from = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - from
    }

    fn number(&mut self) -> Result<(), String> {
        let at = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(format!("bad number at {at}")),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(format!("bad fraction at {at}"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(format!("bad exponent at {at}"));
            }
        }
        Ok(())
    }

    fn string(&mut self) -> Result<(), String> {
        self.eat(b'"')?;
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 1,
                        Some(b'u') => {
                            let hex = self.b.get(self.i + 1..self.i + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(format!("bad \\u escape at {}", self.i));
                            }
                            self.i += 5;
                        }
                        _ => return Err(format!("bad escape at {}", self.i)),
                    }
                }
                Some(c) if c < 0x20 => {
                    return Err(format!("control character in a string at {}", self.i));
                }
                Some(_) => self.i += 1,
            }
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut short: String = text.chars().take(600).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// `stream_*`: bytes → decoder → translator never panics, every chunk is a JSON object, the
/// chunks stay within [`MAX_AMPLIFICATION`] of the input, and any split of the reads gives the
/// same chunks, ending and usage as one read (with and without the client asking for usage).
pub fn stream(protocol: Protocol, data: &[u8], split_seed: u64) -> Verdict {
    for include_usage in [true, false] {
        let whole = replay(protocol, &[data], include_usage);
        let size: usize = whole.chunks.iter().map(String::len).sum();
        if size > MAX_AMPLIFICATION * data.len() + OUTPUT_SLACK {
            return Err(format!(
                "{} upstream bytes became {size} bytes of chunks (over {MAX_AMPLIFICATION}x)",
                data.len()
            ));
        }
        for (i, chunk) in whole.chunks.iter().enumerate() {
            check_object("a chunk", chunk.as_bytes()).map_err(|e| format!("{e}\n  (chunk {i})"))?;
        }
        for (how, cuts) in splittings(data, split_seed) {
            let split = replay(protocol, &pieces(data, &cuts), include_usage);
            if split != whole {
                return Err(format!(
                    "relaying {how} differs from one read (include_usage {include_usage}):\n  \
                     whole: {whole:?}\n  split: {split:?}"
                ));
            }
        }
    }
    Ok(())
}

/// `stream_*` with explicit cut points (the stable runner picks them).
pub fn stream_split(protocol: Protocol, data: &[u8], cuts: &[usize]) -> Verdict {
    let whole = replay(protocol, &[data], true);
    let split = replay(protocol, &pieces(data, cuts), true);
    if split != whole {
        return Err(format!(
            "relaying cut at {cuts:?} differs from one read:\n  whole: {whole:?}\n  split: {split:?}"
        ));
    }
    Ok(())
}

/// `response_*`: `translate_response` never panics and an answer it accepts becomes a JSON object;
/// the error mapper never panics on the same bytes, and its client error body is JSON.
pub fn response(protocol: Protocol, data: &[u8]) -> Verdict {
    if let Ok(t) = providers::translate_response(protocol, data, &ctx()) {
        check_object("the translated answer", &t.body)?;
    }
    let mut headers = http::HeaderMap::new();
    let first_line = data.split(|&b| b == b'\n').next().unwrap_or_default();
    if let Ok(v) = http::HeaderValue::from_bytes(first_line) {
        headers.insert("retry-after", v);
    }
    let status = 400 + u16::from(data.first().copied().unwrap_or(0)) % 200;
    let error = providers::upstream_error(protocol, status, &headers, data);
    let body = error.to_api_error("fuzz").body().to_string();
    check_object("the client's error body", body.as_bytes())
}

/// `request_build`: any body `request::parse` accepts builds for every protocol without panicking,
/// into a JSON object.
pub fn request_build(data: &[u8]) -> Verdict {
    let Ok(req) = request::parse(data) else {
        return Ok(());
    };
    let cache = ReasoningCache::default();
    for protocol in [
        Protocol::OpenAi,
        Protocol::Compatible,
        Protocol::Mistral,
        Protocol::DeepSeek,
        Protocol::Anthropic,
        Protocol::Gemini,
    ] {
        let ctx = RequestCtx {
            body: &req.body,
            model: &req.model,
            stream: req.stream,
            cache: &cache,
        };
        if let Ok(call) = providers::build(protocol, &ctx) {
            check_object(&format!("the {protocol:?} request body"), &call.body)?;
        }
    }
    Ok(())
}
