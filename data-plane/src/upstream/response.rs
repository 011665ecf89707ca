//! A provider's 2xx answer as it arrives: status and headers, and a body read in chunks against
//! the attempt's deadline (the provider's total timeout covers the body too).

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::Instant;

use super::UpstreamError;

/// An upstream response whose body has not been read yet.
#[derive(Debug)]
pub struct UpstreamResponse {
    status: http::StatusCode,
    headers: HeaderMap,
    body: Incoming,
    deadline: Instant,
}

impl UpstreamResponse {
    pub fn new(response: http::Response<Incoming>, deadline: Instant) -> Self {
        let (parts, body) = response.into_parts();
        UpstreamResponse {
            status: parts.status,
            headers: parts.headers,
            body,
            deadline,
        }
    }

    pub fn status(&self) -> http::StatusCode {
        self.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// `Content-Length`, when the provider sent a valid one.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(http::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }

    /// The next chunk of the body; `None` at its end. Trailers are skipped.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, UpstreamError> {
        loop {
            let frame = match tokio::time::timeout_at(self.deadline, self.body.frame()).await {
                Err(_) => return Err(UpstreamError::Timeout),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => {
                    tracing::debug!(error = %e, "upstream body broke");
                    return Err(UpstreamError::StreamBroken("broke off its answer".into()));
                }
                Ok(Some(Ok(frame))) => frame,
            };
            if let Ok(data) = frame.into_data() {
                return Ok(Some(data));
            }
        }
    }
}
