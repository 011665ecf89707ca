//! TokenRouter's extension fields (`provider`, `latency_ms`, `routing_mode`, `x_request_id`), added
//! to an upstream JSON object by splicing bytes before its closing brace.

/// The per-request extension values, pre-rendered once.
#[derive(Debug, Clone)]
pub struct Extensions {
    pub provider: String,
    pub request_id: String,
    /// `,"provider":"..","routing_mode":"..","x_request_id":".."` without `latency_ms`.
    fixed: String,
}

impl Extensions {
    pub fn new(provider: &str, routing_mode: &str, request_id: &str) -> Self {
        let mut fixed =
            String::with_capacity(48 + provider.len() + routing_mode.len() + request_id.len());
        for (i, (name, value)) in [
            ("provider", provider),
            ("routing_mode", routing_mode),
            ("x_request_id", request_id),
        ]
        .into_iter()
        .enumerate()
        {
            if i > 0 {
                fixed.push(',');
            }
            fixed.push('"');
            fixed.push_str(name);
            fixed.push_str("\":");
            push_json_string(&mut fixed, value);
        }
        Extensions {
            provider: provider.to_string(),
            request_id: request_id.to_string(),
            fixed,
        }
    }

    /// Adds the extension fields (and `extra`) to the JSON object in `object`, in place: the bytes
    /// after its final `}` are dropped, the fields appended, and the brace closed again.
    pub fn splice_in_place(&self, object: &mut Vec<u8>, latency_ms: u64, extra: &str) {
        let Some(end) = object.iter().rposition(|&b| b == b'}') else {
            return;
        };
        object.truncate(end);
        let empty = object.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        if !empty {
            object.push(b',');
        }
        object.extend_from_slice(self.fixed.as_bytes());
        object.extend_from_slice(b",\"latency_ms\":");
        object.extend_from_slice(latency_ms.to_string().as_bytes());
        if !extra.is_empty() {
            object.push(b',');
            object.extend_from_slice(extra.as_bytes());
        }
        object.push(b'}');
    }

    /// Writes `object` with the extension fields added before its final `}` into `out`.
    /// `object` must be a JSON object (checked by the caller).
    pub fn splice_into(&self, object: &[u8], latency_ms: u64, out: &mut Vec<u8>) {
        self.splice_with(object, latency_ms, "", out);
    }

    /// Like [`Extensions::splice_into`], also adding `extra` (`"name":value` pairs joined by commas).
    pub fn splice_with(&self, object: &[u8], latency_ms: u64, extra: &str, out: &mut Vec<u8>) {
        let end = object
            .iter()
            .rposition(|&b| b == b'}')
            .unwrap_or(object.len());
        let body = &object[..end];
        let empty = body.iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
        out.extend_from_slice(body);
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(self.fixed.as_bytes());
        out.extend_from_slice(b",\"latency_ms\":");
        out.extend_from_slice(latency_ms.to_string().as_bytes());
        if !extra.is_empty() {
            out.push(b',');
            out.extend_from_slice(extra.as_bytes());
        }
        out.push(b'}');
    }
}

/// Appends `value` as a JSON string literal (quoted and escaped).
fn push_json_string(out: &mut String, value: &str) {
    let needs_escape = value.chars().any(|c| c == '"' || c == '\\' || c < ' ');
    if needs_escape {
        out.push_str(&serde_json::Value::from(value).to_string());
    } else {
        out.push('"');
        out.push_str(value);
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splices_valid_json() {
        let ext = Extensions::new("openai", "pinned", "req-\"1");
        for input in [&b"{\"id\":\"x\"}"[..], b"{}", b"{ \"a\": [1] }\n"] {
            let mut out = Vec::new();
            ext.splice_into(input, 12, &mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["provider"], "openai");
            assert_eq!(v["latency_ms"], 12);
            assert_eq!(v["x_request_id"], "req-\"1");
        }
    }
}
