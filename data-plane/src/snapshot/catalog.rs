//! The model catalog: prices, context window, max output, capabilities and a quality score per
//! (provider kind, model). A built-in table ships with the binary; snapshot entries override or
//! extend it.

use std::collections::HashMap;
use std::sync::Arc;

use tokenrouter_proto::v1::ModelEntry;

pub use crate::request::Caps;
use crate::telemetry::usage::{Prices, Usage};

/// Where the built-in quality scores come from.
pub const BUILTIN_QUALITY_SOURCE: &str =
    "TokenRouter default (2026-11): rough standing on public leaderboards; override per deployment";

/// One model's catalog facts.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub kind: String,
    pub model: String,
    /// USD per million tokens.
    pub input_price: f64,
    pub output_price: f64,
    pub cached_input_price: f64,
    pub context_window: u32,
    pub max_output: u32,
    pub caps: Caps,
    pub quality: u32,
    pub quality_source: String,
    /// Per-model timeout overrides (None: the provider's).
    pub first_token_timeout: Option<std::time::Duration>,
    pub idle_timeout: Option<std::time::Duration>,
    pub timeout: Option<std::time::Duration>,
}

impl ModelInfo {
    /// Its prices.
    pub fn prices(&self) -> Prices {
        Prices {
            input: self.input_price,
            cached_input: self.cached_input_price,
            output: self.output_price,
        }
    }

    /// Price of an answer in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        self.prices().cost(usage)
    }
}

/// Catalog lookups by (kind, model) and by kind.
#[derive(Debug, Default)]
pub struct Catalog {
    entries: HashMap<(String, String), Arc<ModelInfo>>,
}

impl Catalog {
    /// The built-in table with `overrides` applied.
    pub fn build(overrides: &[ModelEntry]) -> Catalog {
        let mut entries = HashMap::new();
        for b in BUILTIN {
            let info = ModelInfo {
                kind: b.0.to_string(),
                model: b.1.to_string(),
                input_price: b.2,
                output_price: b.3,
                cached_input_price: b.4,
                context_window: b.5,
                max_output: b.6,
                caps: Caps::from_names(b.7.split_whitespace()),
                quality: b.8,
                quality_source: BUILTIN_QUALITY_SOURCE.to_string(),
                first_token_timeout: None,
                idle_timeout: None,
                timeout: None,
            };
            entries.insert((b.0.to_string(), b.1.to_string()), Arc::new(info));
        }
        for e in overrides {
            let info = ModelInfo {
                kind: e.kind.clone(),
                model: e.model.clone(),
                input_price: e.input_per_mtok,
                output_price: e.output_per_mtok,
                cached_input_price: e.cached_input_per_mtok,
                context_window: e.context_window,
                max_output: e.max_output,
                caps: Caps::from_names(e.capabilities.iter().map(String::as_str)),
                quality: e.quality,
                quality_source: e.quality_source.clone(),
                first_token_timeout: millis(e.first_token_timeout_ms),
                idle_timeout: millis(e.idle_timeout_ms),
                timeout: millis(e.timeout_ms),
            };
            entries.insert((e.kind.clone(), e.model.clone()), Arc::new(info));
        }
        Catalog { entries }
    }

    /// The entry for a model of a provider kind. OpenAI-compatible servers and OpenAI-protocol
    /// aliases fall back to OpenAI's entry of the same name.
    pub fn get(&self, kind: &str, model: &str) -> Option<&Arc<ModelInfo>> {
        self.entries.get(&(kind.to_string(), model.to_string()))
    }

    /// Every model of a provider kind, by name.
    pub fn models_of(&self, kind: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .entries
            .keys()
            .filter(|(k, _)| k == kind)
            .map(|(_, m)| m.clone())
            .collect();
        out.sort();
        out
    }
}

fn millis(ms: u32) -> Option<std::time::Duration> {
    (ms > 0).then(|| std::time::Duration::from_millis(u64::from(ms)))
}

const CHAT: &str = "tools json_mode json_schema vision logit_bias seed logprobs n";
const REASONER: &str = "tools json_mode json_schema vision reasoning seed";

/// (kind, model, input, output, cached input USD/Mtok, context, max output, capabilities, quality).
type Builtin = (
    &'static str,
    &'static str,
    f64,
    f64,
    f64,
    u32,
    u32,
    &'static str,
    u32,
);

/// List prices as published by each vendor (2026-11); override them in the control plane.
#[rustfmt::skip]
const BUILTIN: &[Builtin] = &[
    ("openai", "gpt-4o", 2.5, 10.0, 1.25, 128_000, 16_384, CHAT, 80),
    ("openai", "gpt-4o-mini", 0.15, 0.6, 0.075, 128_000, 16_384, CHAT, 70),
    ("openai", "gpt-4.1", 2.0, 8.0, 0.5, 1_047_576, 32_768, CHAT, 83),
    ("openai", "gpt-4.1-mini", 0.4, 1.6, 0.1, 1_047_576, 32_768, CHAT, 76),
    ("openai", "gpt-4.1-nano", 0.1, 0.4, 0.025, 1_047_576, 32_768, CHAT, 65),
    ("openai", "o3", 2.0, 8.0, 0.5, 200_000, 100_000, REASONER, 90),
    ("openai", "o4-mini", 1.1, 4.4, 0.275, 200_000, 100_000, REASONER, 85),
    ("openai", "gpt-5", 1.25, 10.0, 0.125, 400_000, 128_000, REASONER, 92),
    ("openai", "gpt-5-mini", 0.25, 2.0, 0.025, 400_000, 128_000, REASONER, 85),
    ("anthropic", "claude-opus-4-1", 15.0, 75.0, 1.5, 200_000, 32_000, "tools json_mode vision reasoning", 92),
    ("anthropic", "claude-sonnet-4-5", 3.0, 15.0, 0.3, 200_000, 64_000, "tools json_mode vision reasoning", 91),
    ("anthropic", "claude-haiku-4-5", 1.0, 5.0, 0.1, 200_000, 64_000, "tools json_mode vision reasoning", 80),
    ("anthropic", "claude-3-5-haiku-latest", 0.8, 4.0, 0.08, 200_000, 8_192, "tools json_mode vision", 70),
    ("gemini", "gemini-2.5-pro", 1.25, 10.0, 0.31, 1_048_576, 65_536, "tools json_mode json_schema vision reasoning seed logprobs n", 90),
    ("gemini", "gemini-2.5-flash", 0.3, 2.5, 0.075, 1_048_576, 65_536, "tools json_mode json_schema vision reasoning seed logprobs n", 82),
    ("gemini", "gemini-2.5-flash-lite", 0.1, 0.4, 0.025, 1_048_576, 65_536, "tools json_mode json_schema vision reasoning seed n", 70),
    ("gemini", "gemini-2.0-flash", 0.1, 0.4, 0.025, 1_048_576, 8_192, "tools json_mode json_schema vision seed n", 72),
    ("mistral", "mistral-large-latest", 2.0, 6.0, 0.0, 128_000, 32_768, "tools json_mode json_schema vision seed", 78),
    ("mistral", "mistral-medium-latest", 0.4, 2.0, 0.0, 128_000, 32_768, "tools json_mode json_schema vision seed", 76),
    ("mistral", "mistral-small-latest", 0.1, 0.3, 0.0, 128_000, 32_768, "tools json_mode json_schema vision seed", 68),
    ("mistral", "codestral-latest", 0.3, 0.9, 0.0, 256_000, 32_768, "tools json_mode seed", 70),
    ("mistral", "magistral-medium-latest", 2.0, 5.0, 0.0, 128_000, 40_000, "tools json_mode reasoning seed", 80),
    ("deepseek", "deepseek-chat", 0.27, 1.1, 0.07, 128_000, 8_192, "tools json_mode logprobs", 80),
    ("deepseek", "deepseek-reasoner", 0.55, 2.19, 0.14, 128_000, 64_000, "tools json_mode reasoning", 86),
    // Embeddings models: input tokens are all they are priced on; max output is the vector length.
    ("openai", "text-embedding-3-small", 0.02, 0.0, 0.0, 8_191, 1_536, "embeddings dimensions", 70),
    ("openai", "text-embedding-3-large", 0.13, 0.0, 0.0, 8_191, 3_072, "embeddings dimensions", 80),
    ("openai", "text-embedding-ada-002", 0.1, 0.0, 0.0, 8_191, 1_536, "embeddings", 60),
    ("gemini", "gemini-embedding-001", 0.15, 0.0, 0.0, 2_048, 3_072, "embeddings dimensions", 80),
    ("mistral", "mistral-embed", 0.1, 0.0, 0.0, 8_192, 1_024, "embeddings", 70),
    ("mistral", "codestral-embed", 0.15, 0.0, 0.0, 8_192, 3_072, "embeddings dimensions", 75),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::usage::Usage;

    #[test]
    fn overrides_replace_builtins_and_costs_add_up() {
        let cat = Catalog::build(&[ModelEntry {
            name: "x".into(),
            kind: "openai".into(),
            model: "gpt-4o".into(),
            input_per_mtok: 1.0,
            output_per_mtok: 2.0,
            cached_input_per_mtok: 0.5,
            capabilities: vec!["tools".into()],
            ..Default::default()
        }]);
        let m = cat.get("openai", "gpt-4o").unwrap();
        assert_eq!(m.caps, Caps::TOOLS);
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 1_000_000,
            cached_tokens: 500_000,
            reasoning_tokens: 0,
        };
        assert!((m.cost(&usage) - (0.5 + 0.25 + 2.0)).abs() < 1e-9);
        assert!(
            cat.models_of("deepseek")
                .contains(&"deepseek-reasoner".to_string())
        );
        assert!(
            Caps::from_names(["tools", "vision"]).missing(Caps::TOOLS.union(Caps::SEED))
                == Caps::SEED
        );
    }
}
