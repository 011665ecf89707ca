//! The Gemini adapter (placeholder until its translation lands: every call refuses clearly).

use axum::http::HeaderMap;

use super::{Flow, RequestCtx, ResponseCtx, StreamTranslator, Translated, UpstreamCall};
use crate::error::ApiError;
use crate::sse::SseEvent;
use crate::upstream::UpstreamError;
use crate::usage::Usage;

pub fn build_request(_ctx: &RequestCtx<'_>) -> Result<UpstreamCall, ApiError> {
    Err(ApiError::bad_request(
        "unsupported_provider",
        "This provider kind is not supported yet.",
    ))
}

pub fn translate_response(_body: &[u8], _ctx: &ResponseCtx) -> Result<Translated, UpstreamError> {
    Err(UpstreamError::Malformed("is not supported yet".into()))
}

pub fn map_error(status: u16, _headers: &HeaderMap, _body: &[u8]) -> UpstreamError {
    UpstreamError::Status {
        status,
        code: None,
        message: format!("HTTP {status}"),
        retry_after: None,
    }
}

pub struct GeminiStream;

impl GeminiStream {
    pub fn new(_ctx: ResponseCtx) -> Self {
        GeminiStream
    }
}

impl StreamTranslator for GeminiStream {
    fn event(&mut self, _event: SseEvent, _out: &mut Vec<String>) -> Result<Flow, UpstreamError> {
        Err(UpstreamError::Malformed("is not supported yet".into()))
    }
    fn end(&mut self, _out: &mut Vec<String>) -> Result<(), UpstreamError> {
        Ok(())
    }
    fn usage(&self) -> Option<Usage> {
        None
    }
}
