//! Talking to providers over HTTP: pooled clients, the request URI, sending with a deadline,
//! reading bodies within a cap, the SSE decoder and the stream relay, and scrubbing secrets from
//! whatever a provider says before a client sees it. Knows no provider: adapters plug in.

pub mod clients;
pub mod extensions;
pub mod guard;
pub mod proxy;
pub mod relay;
mod response;
pub mod sse;
pub mod uri;

pub use response::UpstreamResponse;

use bytes::Bytes;
use http_body_util::Full;

pub use crate::error::UpstreamError;
use crate::upstream::clients::HttpClient;
pub use crate::upstream::uri::upstream_uri;

/// Most bytes of an upstream error body that are read.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Most bytes of a non-streaming upstream answer.
pub const MAX_RESPONSE_BODY: usize = 64 * 1024 * 1024;

/// Sends `request` with `client`; returns the response only for a 2xx status. Any other status is
/// read (up to 64 KiB) and handed to `refused`, which says what it means in the provider's words.
/// The `timeout` covers the whole exchange, body included (see [`UpstreamResponse::chunk`]).
pub async fn send(
    client: &HttpClient,
    request: http::Request<Full<Bytes>>,
    timeout: std::time::Duration,
    refused: impl FnOnce(u16, &http::HeaderMap, &[u8]) -> UpstreamError,
) -> Result<UpstreamResponse, UpstreamError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let response = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => return Err(UpstreamError::Timeout),
        Ok(Err(e)) => return Err(classify_transport(&e)),
        Ok(Ok(r)) => UpstreamResponse::new(r, deadline),
    };
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_capped(response, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    Err(refused(status, &headers, &body))
}

/// Maps a transport failure without quoting it (the text can be long and is not for clients).
fn classify_transport(e: &hyper_util::client::legacy::Error) -> UpstreamError {
    tracing::debug!(error = ?e, "upstream request failed");
    if e.is_connect() {
        UpstreamError::Connect("connection failed".into())
    } else {
        UpstreamError::Connect("request failed".into())
    }
}

/// Spare capacity [`read_capped`] leaves for the extension fields (`routing` included).
const SPLICE_HEADROOM: usize = 1024;

/// Reads a response body up to `limit` bytes.
pub async fn read_capped(
    mut response: UpstreamResponse,
    limit: usize,
) -> Result<Vec<u8>, UpstreamError> {
    let expected = response.content_length().unwrap_or(0).min(limit as u64) as usize;
    // Room for the extension fields spliced in afterwards, so that does not reallocate.
    let mut out = Vec::with_capacity(expected + SPLICE_HEADROOM);
    while let Some(chunk) = response.chunk().await? {
        if out.len() + chunk.len() > limit {
            return Err(UpstreamError::Malformed(format!(
                "sent an answer larger than {limit} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Removes our credential and anything shaped like an API key from provider text.
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    let mut out = text.to_string();
    if let Some(secret) = secret.filter(|s| s.len() >= 4) {
        out = out.replace(secret, "[redacted]");
    }
    let mut result = String::with_capacity(out.len());
    for (i, word) in out.split(' ').enumerate() {
        if i > 0 {
            result.push(' ');
        }
        let looks_like_key = ["sk-", "AIza", "key-", "sk_"]
            .iter()
            .any(|p| word.starts_with(p))
            && word.len() > 12;
        result.push_str(if looks_like_key { "[redacted]" } else { word });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_retryable_failures() {
        let status = |status, code: Option<&str>| UpstreamError::Status {
            status,
            code: code.map(Into::into),
            message: String::new(),
            retry_after: None,
        };
        assert!(status(429, None).retryable());
        assert!(!status(429, Some("insufficient_quota")).retryable());
        assert!(!status(429, Some("enforced_spend_limit_reached")).retryable());
        assert!(!status(402, None).retryable());
        assert!(status(503, None).retryable());
        assert!(status(529, None).retryable());
        assert!(!status(400, None).retryable());
        assert!(!status(401, None).retryable());
        assert!(UpstreamError::Timeout.retryable());
        let in_band = |code: &str| UpstreamError::InBand {
            code: Some(code.into()),
            message: String::new(),
        };
        assert!(in_band("overloaded_error").retryable());
        assert!(in_band("UNAVAILABLE").retryable());
        assert!(!in_band("INVALID_ARGUMENT").retryable());
        assert_eq!(status(401, None).to_api_error("p").status(), 502);
        assert_eq!(
            status(402, None).to_api_error("p").code(),
            Some("insufficient_quota")
        );
        assert_eq!(UpstreamError::Timeout.to_api_error("p").status(), 504);
        assert_eq!(status(422, None).to_api_error("p").status(), 400);
        assert_eq!(status(404, None).to_api_error("p").status(), 404);
    }

    #[test]
    fn scrubs_credentials() {
        let text = scrub(
            "Incorrect API key provided: sk-proj-abcdefghijklmnop. Also mysecretvalue here",
            Some("mysecretvalue"),
        );
        assert!(!text.contains("abcdefghijklmnop"));
        assert!(!text.contains("mysecretvalue"));
    }
}
