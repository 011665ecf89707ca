//! Seed inputs for every target, made from the recorded provider traffic in `fixtures/` (see its
//! README for the formats): `*.chunks.txt` re-wrapped in each provider's real SSE framing, raw
//! `*.sse` files and cassette stream bodies for the stream targets; `*.json` bodies and cassette
//! answers for the response targets; cassette request bodies for `request_build`; plus a few
//! hand-written edge cases. Nothing here is generated at random: the fuzzers mutate these.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One seed input.
#[derive(Debug, Clone)]
pub struct Seed {
    /// Where it came from (a fixture file, `#n` for the n-th cassette interaction).
    pub name: String,
    pub data: Vec<u8>,
}

/// Larger stream seeds also get a head of about this size, cut at an event boundary, so that
/// most fuzz iterations stay fast.
const HEAD: usize = 8 * 1024;

/// The repository's `fixtures/` (or `$TOKENROUTER_FIXTURES`).
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("TOKENROUTER_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures"),
    }
}

/// The fixture directory of a provider.
fn dir_of(target: &str) -> Option<&'static str> {
    let name = target
        .strip_prefix("stream_")
        .or_else(|| target.strip_prefix("response_"))?;
    ["openai", "anthropic", "gemini", "mistral", "deepseek"]
        .into_iter()
        .find(|d| *d == name)
}

/// The seeds of `target`.
pub fn for_target(fixtures: &Path, target: &str) -> Result<Vec<Seed>, String> {
    let mut seeds = match target {
        "sse_decoder" => {
            let mut all = handwritten_sse();
            for dir in ["openai", "anthropic", "gemini", "mistral", "deepseek"] {
                all.extend(streams(fixtures, dir)?);
            }
            all
        }
        "request_build" => requests(fixtures)?,
        "stream_filter" => filter_texts(),
        t if t.starts_with("stream_") => {
            let dir = dir_of(t).ok_or_else(|| format!("no target named `{t}`"))?;
            streams(fixtures, dir)?
        }
        t if t.starts_with("response_") => {
            let dir = dir_of(t).ok_or_else(|| format!("no target named `{t}`"))?;
            responses(fixtures, dir)?
        }
        t => return Err(format!("no target named `{t}`")),
    };
    seeds.retain(|s| !s.data.is_empty());
    Ok(seeds)
}

/// Answers a card or an email sits next to: digits, separators, words, markup, other scripts.
fn filter_texts() -> Vec<Seed> {
    [
        "Your card 5500 0055 5555 5559 and jane@example.com are on file.",
        "1234 5678 9012 3456 7890 - 0000",
        "```json\n{\"card\": \"378282246310005\", \"email\": \"a.b@c.io\"}\n```",
        "Kartennummer: 4111-1111-1111-1111 — vielen Dank! 支付完成。",
        "ids: 550e8400-e29b-41d4-a716-446655440000 da39a3ee5e6b4b0d3255bfef95601890afd80709",
    ]
    .iter()
    .enumerate()
    .map(|(i, t)| Seed {
        name: format!("filter/{i}"),
        data: t.as_bytes().to_vec(),
    })
    .collect()
}

fn files(fixtures: &Path, dir: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let path = fixtures.join(dir);
    let entries = std::fs::read_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).map_err(|e| format!("{dir}/{name}: {e}"))?;
        out.push((format!("{dir}/{name}"), bytes));
    }
    out.sort();
    Ok(out)
}

/// One cassette interaction: request body, status, raw response body, parsed response body.
struct Interaction {
    request: Option<Value>,
    raw: Option<String>,
    response: Option<Value>,
}

fn cassette(name: &str, bytes: &[u8]) -> Result<Vec<Interaction>, String> {
    let doc: serde_yaml::Value =
        serde_yaml::from_slice(bytes).map_err(|e| format!("{name}: {e}"))?;
    let to_json = |v: &serde_yaml::Value| serde_json::to_value(v).ok();
    let items = doc
        .get("interactions")
        .and_then(serde_yaml::Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    Ok(items
        .iter()
        .map(|i| Interaction {
            request: i
                .get("request")
                .and_then(|r| r.get("parsed_body"))
                .and_then(to_json),
            raw: i
                .get("response")
                .and_then(|r| r.get("body"))
                .and_then(|b| b.get("string"))
                .and_then(serde_yaml::Value::as_str)
                .map(str::to_string),
            response: i
                .get("response")
                .and_then(|r| r.get("parsed_body"))
                .and_then(to_json),
        })
        .collect())
}

fn looks_like_sse(text: &str) -> bool {
    text.starts_with("data:") || text.starts_with("event:") || text.contains("\ndata:")
}

/// Chunk lines in the provider's SSE framing (fixtures/README.md).
fn wrap_chunks(dir: &str, text: &str) -> Vec<u8> {
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match dir {
            "anthropic" => {
                let kind = serde_json::from_str::<Value>(line)
                    .ok()
                    .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
                    .unwrap_or_default();
                out.push_str(&format!("event: {kind}\ndata: {line}\n\n"));
            }
            "gemini" => out.push_str(&format!("data: {line}\r\n\r\n")),
            _ => out.push_str(&format!("data: {line}\n\n")),
        }
    }
    if !matches!(dir, "anthropic" | "gemini") {
        out.push_str("data: [DONE]\n\n");
    }
    out.into_bytes()
}

/// The first events of a long stream, up to about [`HEAD`] bytes.
fn head(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() <= 2 * HEAD {
        return None;
    }
    let cut = data[..HEAD].windows(2).rposition(|w| w == b"\n\n")? + 2;
    Some(data[..cut].to_vec())
}

fn push_stream(out: &mut Vec<Seed>, name: String, data: Vec<u8>) {
    if let Some(h) = head(&data) {
        out.push(Seed {
            name: format!("{name} (head)"),
            data: h,
        });
    }
    out.push(Seed { name, data });
}

/// The stream seeds of one provider directory.
pub fn streams(fixtures: &Path, dir: &str) -> Result<Vec<Seed>, String> {
    let mut out = Vec::new();
    for (name, bytes) in files(fixtures, dir)? {
        if name.ends_with(".chunks.txt") {
            let text = String::from_utf8_lossy(&bytes);
            push_stream(&mut out, name, wrap_chunks(dir, &text));
        } else if name.ends_with(".sse") {
            push_stream(&mut out, name, bytes);
        } else if name.ends_with(".yaml") {
            for (i, it) in cassette(&name, &bytes)?.into_iter().enumerate() {
                if let Some(raw) = it.raw.filter(|r| looks_like_sse(r)) {
                    push_stream(&mut out, format!("{name}#{i}"), raw.into_bytes());
                }
            }
        }
    }
    Ok(out)
}

/// The non-streaming answer and error body seeds of one provider directory.
pub fn responses(fixtures: &Path, dir: &str) -> Result<Vec<Seed>, String> {
    let mut out = Vec::new();
    for (name, bytes) in files(fixtures, dir)? {
        if name.ends_with(".json") {
            out.push(Seed { name, data: bytes });
        } else if name.ends_with(".yaml") {
            for (i, it) in cassette(&name, &bytes)?.into_iter().enumerate() {
                let data = match (it.raw, it.response) {
                    (Some(raw), _) if !looks_like_sse(&raw) => raw.into_bytes(),
                    (_, Some(v)) => v.to_string().into_bytes(),
                    _ => continue,
                };
                out.push(Seed {
                    name: format!("{name}#{i}"),
                    data,
                });
            }
        }
    }
    Ok(out)
}

/// Request bodies: every cassette's recorded request (most are OpenAI-shaped), plus hand-written
/// ones for the mappings no recording exercises.
pub fn requests(fixtures: &Path) -> Result<Vec<Seed>, String> {
    let mut out: Vec<Seed> = HANDWRITTEN_REQUESTS
        .iter()
        .enumerate()
        .map(|(i, r)| Seed {
            name: format!("handwritten request #{i}"),
            data: r.as_bytes().to_vec(),
        })
        .collect();
    for dir in ["openai", "anthropic", "gemini", "mistral", "deepseek"] {
        for (name, bytes) in files(fixtures, dir)? {
            if !name.ends_with(".yaml") {
                continue;
            }
            for (i, it) in cassette(&name, &bytes)?.into_iter().enumerate() {
                if let Some(Value::Object(mut body)) = it.request {
                    // Non-OpenAI recordings name no model in the body; give them one so they parse.
                    body.entry("model")
                        .or_insert_with(|| Value::from("fuzz-model"));
                    out.push(Seed {
                        name: format!("{name}#{i} request"),
                        data: Value::Object(body).to_string().into_bytes(),
                    });
                }
            }
        }
    }
    Ok(out)
}

const HANDWRITTEN_REQUESTS: &[&str] = &[
    r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
    r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"developer","content":"be brief"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],"max_completion_tokens":100,"max_tokens":50,"temperature":2,"seed":7,"n":1,"logprobs":false,"reasoning_effort":"high"}"#,
    r#"{"model":"m","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get","arguments":"{\"city\":\"Paris\"}"}}],"reasoning_content":"think","thinking_blocks":[{"type":"thinking","thinking":"t","signature":"s"}]},{"role":"tool","tool_call_id":"call_abc","content":"sunny"}],"tools":[{"type":"function","function":{"name":"get","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"required","parallel_tool_calls":false}"#,
    r#"{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"s"}]},{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":{"type":"object"}}},"stop":["a","b"],"top_p":0.5,"presence_penalty":0,"frequency_penalty":0,"user":"{\"task\":\"t\"}"}"#,
    r#"{"model":"magistral-medium","messages":[{"role":"user","content":"x"}],"reasoning_effort":"minimal","tool_choice":{"type":"function","function":{"name":"f"}},"tools":[{"type":"function","function":{"name":"f"}}],"thinking":{"type":"disabled"},"response_format":{"type":"json_object"}}"#,
];

/// Decoder edge cases: every line ending, comments, fields without a colon or value, a BOM.
fn handwritten_sse() -> Vec<Seed> {
    let cases: &[&[u8]] = &[
        b": keep-alive\r\n\r\nevent: message_start\r\ndata: {\"a\":\"\xc3\xa9\"}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\r\r",
        b"data\n\ndata:\n\nevent\n\nevent:ping\ndata:  two spaces\nid: 1\nretry: 10\n\n",
        b"\xef\xbb\xbfdata: bom\n\ndata: last without a blank line",
        b"data: \xf0\x9f\x98\x80 emoji\r\n\r\n:comment\rdata: cr\r\r",
    ];
    cases
        .iter()
        .enumerate()
        .map(|(i, c)| Seed {
            name: format!("handwritten sse #{i}"),
            data: c.to_vec(),
        })
        .collect()
}
