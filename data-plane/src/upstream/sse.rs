//! An incremental Server-Sent Events decoder (any split of the byte stream gives the same events),
//! bounded so a hostile upstream cannot make it buffer without limit.

/// Longest event the decoder accepts, in bytes.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

/// One decoded event: its `event:` name (if any) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
}

/// Why the byte stream is not acceptable SSE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an upstream event exceeded {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("the upstream stream is not valid UTF-8")]
    NotUtf8,
}

/// Feeds on raw bytes, yields complete events. Handles `\n`, `\r\n` and `\r` line ends, comments
/// (`: keep-alive`) and a UTF-8 character or line end split across reads.
#[derive(Debug)]
pub struct SseDecoder {
    line: Vec<u8>,
    pending_cr: bool,
    event: SseEvent,
    has_data: bool,
    size: usize,
    /// Lines seen so far, blank lines and comments included. It never resets: a caller compares
    /// it with an earlier reading. Any change is upstream activity for an idle timer, a
    /// `: keep-alive` comment too (DeepSeek sends them while a request waits in its queue);
    /// a first-token timer must instead wait for a translated chunk, which comments never give.
    pub lines_seen: u64,
    /// Longest event accepted, in bytes ([`MAX_EVENT_BYTES`] unless set otherwise).
    max_event_bytes: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::with_max_event_bytes(MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A decoder with a smaller (or larger) event limit than [`MAX_EVENT_BYTES`]. The relay always
    /// uses the default; the fuzz targets (`fuzz/`) use a tiny limit to reach the bound quickly.
    pub fn with_max_event_bytes(max_event_bytes: usize) -> Self {
        SseDecoder {
            line: Vec::new(),
            pending_cr: false,
            event: SseEvent::default(),
            has_data: false,
            size: 0,
            lines_seen: 0,
            max_event_bytes,
        }
    }

    /// Bytes held for the event being read (its partial line, data and name): never more than
    /// the event limit. Public so the fuzz targets can check that buffering stays bounded.
    pub fn buffered(&self) -> usize {
        self.line.len() + self.event.data.len() + self.event.event.as_ref().map_or(0, String::len)
    }

    /// Adds bytes and appends every event they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        for &b in bytes {
            if self.pending_cr {
                self.pending_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(out)?,
                b'\r' => {
                    self.pending_cr = true;
                    self.end_line(out)?;
                }
                _ => {
                    self.size += 1;
                    if self.size > self.max_event_bytes {
                        return Err(SseError::TooLarge);
                    }
                    self.line.push(b);
                }
            }
        }
        Ok(())
    }

    /// Ends the stream: a final event without its blank line still counts.
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if !self.line.is_empty() {
            self.end_line(out)?;
        }
        self.dispatch(out);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.lines_seen += 1;
        if self.line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let line = std::str::from_utf8(&self.line).map_err(|_| SseError::NotUtf8)?;
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "" => {} // a comment
            "data" => {
                if self.has_data {
                    self.event.data.push('\n');
                }
                self.event.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event.event = Some(value.to_string()),
            _ => {} // id, retry and unknown fields are not used by any provider we speak
        }
        self.line.clear();
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.has_data || self.event.event.is_some() {
            out.push(std::mem::take(&mut self.event));
        }
        self.event = SseEvent::default();
        self.has_data = false;
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], at: usize) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(&input[..at], &mut out).unwrap();
        d.feed(&input[at..], &mut out).unwrap();
        d.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let input = ": keep-alive\r\n\r\nevent: message_start\r\ndata: {\"a\":\"é\"}\r\n\r\ndata: x\ndata: y\n\ndata: [DONE]\r\r".as_bytes();
        let whole = decode_in_pieces(input, 0);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].event.as_deref(), Some("message_start"));
        assert_eq!(whole[0].data, "{\"a\":\"é\"}");
        assert_eq!(whole[1].data, "x\ny");
        assert_eq!(whole[2].data, "[DONE]");
        for at in 0..=input.len() {
            assert_eq!(decode_in_pieces(input, at), whole, "split at {at}");
        }
    }

    #[test]
    fn bounds_event_size() {
        let mut d = SseDecoder::new();
        let big = vec![b'a'; MAX_EVENT_BYTES + 1];
        assert_eq!(d.feed(&big, &mut Vec::new()), Err(SseError::TooLarge));
    }
}
