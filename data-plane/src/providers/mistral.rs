//! Mistral's quirks on top of the OpenAI protocol (filled in by the Mistral adapter work).

use serde_json::{Map, Value};

use super::Translated;
use crate::upstream::UpstreamError;
use crate::usage::Usage;

/// Rewrites an OpenAI-shaped body into what Mistral accepts.
pub fn adapt_request(_body: &mut Map<String, Value>) {}

/// Maps Mistral's answer to OpenAI's shape.
pub fn adapt_response(body: &[u8], usage: Option<Usage>) -> Result<Translated, UpstreamError> {
    Ok(Translated {
        body: body.to_vec(),
        usage,
    })
}

/// Gives streamed tool calls the `index` Mistral leaves out.
#[derive(Debug, Default)]
pub struct ToolIndex;

impl ToolIndex {
    pub fn add_indices(&mut self, _chunk: &mut Map<String, Value>) {}
}
