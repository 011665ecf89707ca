//! Model resolution: turns the requested model into an ordered list of attempts (provider + upstream
//! model) using routing rules, `provider:model` pins and the models providers declare.

use crate::error::ApiError;
use crate::runtime::{Runtime, TargetRt};

/// One upstream try.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub target: TargetRt,
    /// The model name sent upstream.
    pub model: String,
}

/// The attempts for one request and why they were chosen.
#[derive(Debug, Clone)]
pub struct Plan {
    pub attempts: Vec<Attempt>,
    /// `rule:<name>`, `pinned` or `direct`.
    pub mode: String,
}

/// Resolves `requested` against the runtime.
pub fn resolve(rt: &Runtime, requested: &str) -> Result<Plan, ApiError> {
    if let Some(rule) = rt.rules.iter().find(|r| glob_match(&r.pattern, requested)) {
        let attempts = std::iter::once(&rule.target)
            .chain(rule.fallback.iter())
            .take(rule.max_attempts.max(1))
            .map(|t| attempt(t, requested))
            .collect();
        return Ok(Plan {
            attempts,
            mode: format!("rule:{}", rule.name),
        });
    }
    if let Some((provider, model)) = split_pinned(rt, requested) {
        let target = TargetRt {
            provider,
            model: model.to_string(),
        };
        return Ok(Plan {
            attempts: vec![attempt(&target, requested)],
            mode: "pinned".into(),
        });
    }
    if let Some(providers) = rt.models.get(requested) {
        let attempts = providers
            .iter()
            .map(|p| {
                attempt(
                    &TargetRt {
                        provider: p.clone(),
                        model: String::new(),
                    },
                    requested,
                )
            })
            .collect();
        return Ok(Plan {
            attempts,
            mode: "direct".into(),
        });
    }
    Err(ApiError::model_not_found(requested))
}

fn attempt(target: &TargetRt, requested: &str) -> Attempt {
    let model = if target.model.is_empty() {
        requested.to_string()
    } else {
        target.model.clone()
    };
    Attempt {
        target: target.clone(),
        model,
    }
}

/// `provider:model` or `provider/model` where `provider` names a configured provider. Other names
/// with `:` or `/` (Ollama's `llama3:8b`, `meta-llama/...`) stay bare model names.
fn split_pinned<'a>(
    rt: &Runtime,
    requested: &'a str,
) -> Option<(std::sync::Arc<crate::runtime::ProviderRt>, &'a str)> {
    let (prefix, model) = requested.split_once([':', '/'])?;
    let provider = rt.providers.get(prefix)?;
    (!model.is_empty()).then(|| (provider.clone(), model))
}

/// Whole-string match where `*` stands for any run of characters.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return pattern == text;
    };
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = parts.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty();
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_names() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("gpt-4*", "gpt-4o"));
        assert!(!glob_match("gpt-4*", "xgpt-4o"));
        assert!(glob_match("*mini", "gpt-4o-mini"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXbY"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
        assert!(!glob_match("ab*ba", "aba"));
    }
}
