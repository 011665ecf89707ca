//! Recorded upstream answers the simulator can replay ([`crate::Fault::Replay`]): a status, a
//! content type and the exact body bytes. SSE bodies are sent event by event with the chunk
//! interval, so a recorded stream arrives the way the provider sent it.

use bytes::Bytes;

use crate::Protocol;
use crate::sse::Frame;

/// One recorded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Recording {
    /// A JSON answer (success or error body).
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Recording {
        Recording {
            status,
            content_type: "application/json".into(),
            body: body.into(),
        }
    }

    /// A raw SSE body, exactly as received.
    pub fn sse(body: impl Into<Vec<u8>>) -> Recording {
        Recording {
            status: 200,
            content_type: "text/event-stream".into(),
            body: body.into(),
        }
    }

    /// An SSE body rebuilt from one-JSON-payload-per-line chunk files (see `fixtures/README.md`).
    pub fn from_chunks(protocol: Protocol, lines: &[String]) -> Recording {
        Recording::sse(sse_from_chunks(protocol, lines))
    }

    /// An OpenAI Responses API stream rebuilt from a chunk file ([`sse_from_response_chunks`]).
    pub fn from_response_chunks(lines: &[String]) -> Recording {
        Recording::sse(sse_from_response_chunks(lines))
    }

    pub(crate) fn is_stream(&self) -> bool {
        self.content_type.starts_with("text/event-stream")
    }

    /// The body split after every blank line; comment-only events do not count as chunks.
    pub(crate) fn frames(&self) -> Vec<Frame> {
        let body = &self.body;
        let mut frames = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < body.len() {
            let end = [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"]
                .iter()
                .find(|sep| body[i..].starts_with(sep))
                .map(|sep| i + sep.len());
            match end {
                Some(end) => {
                    frames.push(frame(&body[start..end]));
                    start = end;
                    i = end;
                }
                None => i += 1,
            }
        }
        if start < body.len() {
            frames.push(frame(&body[start..]));
        }
        frames
    }
}

fn frame(bytes: &[u8]) -> Frame {
    let text = String::from_utf8_lossy(bytes);
    let counts = text.lines().any(|l| l.starts_with("data"));
    Frame {
        bytes: Bytes::copy_from_slice(bytes),
        counts,
    }
}

/// Wraps chunk-file lines in each provider's real SSE framing: `event:` lines for Anthropic,
/// `\r\n\r\n` and no `[DONE]` for Gemini, `data: [DONE]` for the OpenAI protocol.
pub fn sse_from_chunks(protocol: Protocol, lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        match protocol {
            Protocol::Anthropic => push_typed_event(&mut out, line),
            Protocol::Gemini => out.push_str(&format!("data: {line}\r\n\r\n")),
            _ => out.push_str(&format!("data: {line}\n\n")),
        }
    }
    if protocol.is_openai_like() {
        out.push_str("data: [DONE]\n\n");
    }
    out.into_bytes()
}

/// Wraps the lines of an OpenAI Responses API chunk file in its real framing: an `event:` line
/// naming the JSON `type` before each `data:` line, and no `[DONE]`.
pub fn sse_from_response_chunks(lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        push_typed_event(&mut out, line);
    }
    out.into_bytes()
}

/// `event: <the line's JSON type>` and `data: <line>`.
fn push_typed_event(out: &mut String, line: &str) {
    let kind = serde_json::from_str::<serde_json::Value>(line)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_string))
        .unwrap_or_default();
    out.push_str(&format!("event: {kind}\ndata: {line}\n\n"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_at_blank_lines_and_skip_comments_in_counts() {
        let r = Recording::sse(b": keep-alive\n\ndata: {}\r\n\r\nevent: x\ndata: 1\n\n".to_vec());
        let frames = r.frames();
        assert_eq!(frames.len(), 3);
        assert!(!frames[0].counts && frames[1].counts && frames[2].counts);
        let joined: Vec<u8> = frames.iter().flat_map(|f| f.bytes.to_vec()).collect();
        assert_eq!(joined, r.body);
    }

    #[test]
    fn chunk_files_get_real_framing() {
        let lines = vec!["{\"type\":\"ping\"}".to_string()];
        assert_eq!(
            sse_from_chunks(Protocol::Anthropic, &lines),
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
        assert!(sse_from_chunks(Protocol::OpenAi, &lines).ends_with(b"data: [DONE]\n\n"));
        assert!(sse_from_chunks(Protocol::Gemini, &lines).ends_with(b"\r\n\r\n"));
        assert_eq!(
            sse_from_response_chunks(&lines),
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
    }
}
