//! Gemini's answer on the wire (`GenerateContentResponse`, the same for whole answers and each
//! stream event), read leniently: only the fields the adapter uses, unknown ones ignored. Also
//! the two mappings that need nothing but these types: usage and logprobs.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use crate::telemetry::usage::Usage;

/// One answer, or one stream event (an `error` object instead when a stream fails).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct GenerateResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    pub prompt_feedback: Option<PromptFeedback>,
    pub usage_metadata: Option<UsageMetadata>,
    pub model_version: Option<String>,
    pub error: Option<IgnoredAny>,
}

/// Set when Gemini judged the prompt itself.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct PromptFeedback {
    pub block_reason: Option<String>,
}

/// One candidate answer (an OpenAI choice).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct Candidate {
    pub content: Option<Content>,
    pub finish_reason: Option<String>,
    pub index: Option<u32>,
    pub logprobs_result: Option<LogprobsResult>,
}

/// A candidate's content; the role is always `model`.
#[derive(Deserialize)]
pub(in crate::providers) struct Content {
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// Text (a thought when `thought`), or a function call; either may carry a signature.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct Part {
    pub text: Option<String>,
    #[serde(default)]
    pub thought: bool,
    pub thought_signature: Option<String>,
    pub function_call: Option<FunctionCall>,
}

/// A whole call, or (Vertex) the start, argument pieces or end of a streamed one.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct FunctionCall {
    pub name: Option<String>,
    pub args: Option<Value>,
    #[serde(default)]
    pub partial_args: Vec<PartialArg>,
    #[serde(default)]
    pub will_continue: bool,
}

/// One streamed argument fragment (Vertex Gemini 3): a value for a JSON path.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct PartialArg {
    pub json_path: String,
    pub string_value: Option<String>,
    pub number_value: Option<serde_json::Number>,
    pub bool_value: Option<bool>,
}

/// Token counts; cumulative across a stream.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    tool_use_prompt_token_count: Option<u64>,
    total_token_count: Option<u64>,
}

impl UsageMetadata {
    /// Usage in OpenAI's terms; `None` for metadata without counts (e.g. only `trafficType`).
    /// Thinking is output (`thoughtsTokenCount` is part of `totalTokenCount`); if the total says
    /// more was spent than the parts explain, the rest is counted as output too, so what is
    /// recorded never undercounts what Google bills.
    pub fn to_usage(&self) -> Option<Usage> {
        if self.prompt_token_count.is_none() && self.total_token_count.is_none() {
            return None;
        }
        // Saturating: the counts come from the upstream and may be absurd.
        let prompt = self
            .prompt_token_count
            .unwrap_or(0)
            .saturating_add(self.tool_use_prompt_token_count.unwrap_or(0));
        let reasoning = self.thoughts_token_count.unwrap_or(0);
        let mut completion = self
            .candidates_token_count
            .unwrap_or(0)
            .saturating_add(reasoning);
        if let Some(total) = self.total_token_count
            && total > prompt.saturating_add(completion)
        {
            completion = total - prompt;
        }
        Some(Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cached_tokens: self.cached_content_token_count.unwrap_or(0),
            reasoning_tokens: reasoning,
        })
    }
}

/// Chosen tokens and the top alternatives at each step.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::providers) struct LogprobsResult {
    #[serde(default)]
    top_candidates: Vec<TopCandidates>,
    #[serde(default)]
    chosen_candidates: Vec<TokenLogprob>,
}

#[derive(Deserialize)]
struct TopCandidates {
    #[serde(default)]
    candidates: Vec<TokenLogprob>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenLogprob {
    #[serde(default)]
    token: String,
    #[serde(default)]
    log_probability: f64,
}

impl TokenLogprob {
    fn to_openai(&self) -> Value {
        json!({ "token": self.token, "logprob": self.log_probability, "bytes": self.token.as_bytes() })
    }
}

/// OpenAI's `choices[].logprobs` for Gemini's `logprobsResult`.
pub(in crate::providers) fn logprobs(result: Option<&LogprobsResult>) -> Value {
    let Some(result) = result else {
        return Value::Null;
    };
    let content: Vec<Value> = result
        .chosen_candidates
        .iter()
        .enumerate()
        .map(|(k, chosen)| {
            let mut entry = chosen.to_openai();
            let top = result
                .top_candidates
                .get(k)
                .map_or(&[][..], |t| &t.candidates);
            entry["top_logprobs"] = top.iter().map(TokenLogprob::to_openai).collect();
            entry
        })
        .collect();
    json!({ "content": content, "refusal": null })
}
