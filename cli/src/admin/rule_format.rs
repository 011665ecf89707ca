//! How routing rules are written on the command line (`NAME=GLOB`, `PROVIDER[:MODEL][=WEIGHT]`) and
//! shown in `rules list` (a compact summary of the conditions and the action, and the full JSON).

use serde_json::{Value, json};
use tokenrouter_proto::v1::{KeyGlob, RoutingRule, WeightedTarget};

use super::output::{Resource, or_dash};
use super::policies::parse_target;

/// Parses `NAME=GLOB` (a header or metadata condition). Only the first '=' separates, so the glob
/// may contain '=' itself.
pub(super) fn parse_key_glob(text: &str) -> Result<KeyGlob, String> {
    let Some((key, glob)) = text.split_once('=') else {
        return Err(format!("{text:?}: expected NAME=GLOB"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{text:?}: the name before '=' is empty"));
    }
    if glob.is_empty() {
        return Err(format!(
            "{text:?}: the glob after '=' is empty (use '*' to match any value)"
        ));
    }
    Ok(KeyGlob {
        key: key.to_string(),
        glob: glob.to_string(),
    })
}

/// Parses one weighted target, `PROVIDER[:MODEL][=WEIGHT]` (weight 1 when left out). The last '='
/// separates the weight; provider and model split at the first ':' as in fallback chains.
pub(super) fn parse_weighted_target(text: &str) -> Result<WeightedTarget, String> {
    let text = text.trim();
    let (target, weight) = match text.rsplit_once('=') {
        Some((target, weight)) => {
            let weight: u32 = weight.trim().parse().map_err(|_| {
                format!("{text:?}: the weight after '=' must be a whole number, at least 1")
            })?;
            if weight == 0 {
                return Err(format!("{text:?}: the weight must be at least 1"));
            }
            (target, weight)
        }
        None => (text, 1),
    };
    let target = parse_target(target)?;
    Ok(WeightedTarget {
        provider: target.provider,
        model: target.model,
        weight,
    })
}

/// `provider` or `provider:model`, as people write it.
fn provider_model(provider: &str, model: &str) -> String {
    if model.is_empty() {
        provider.to_string()
    } else {
        format!("{provider}:{model}")
    }
}

/// What a matching request gets, in the flags' own syntax: `provider openai:gpt-4o`,
/// `targets a=3,b:m=1`, `mode auto:fast` or `deny`.
pub(super) fn action_summary(rule: &RoutingRule) -> String {
    if rule.deny {
        "deny".to_string()
    } else if !rule.mode.is_empty() {
        format!("mode {}", rule.mode)
    } else if !rule.targets.is_empty() {
        let targets: Vec<String> = rule
            .targets
            .iter()
            .map(|t| format!("{}={}", provider_model(&t.provider, &t.model), t.weight))
            .collect();
        format!("targets {}", targets.join(","))
    } else if !rule.target_provider.is_empty() {
        let target = provider_model(&rule.target_provider, &rule.target_model);
        format!("provider {target}")
    } else {
        "-".to_string()
    }
}

/// The conditions besides the model, space-separated in the flags' own terms
/// (`keys=ci,ops header:x-team=ml* metadata:tier=gold tools=yes json=no stream=yes`); `-` when none.
pub(super) fn conditions_summary(rule: &RoutingRule) -> String {
    let mut parts = Vec::new();
    if !rule.match_api_keys.is_empty() {
        parts.push(format!("keys={}", rule.match_api_keys.join(",")));
    }
    for g in &rule.match_headers {
        parts.push(format!("header:{}={}", g.key, g.glob));
    }
    for g in &rule.match_metadata {
        parts.push(format!("metadata:{}={}", g.key, g.glob));
    }
    for (label, value) in [
        ("tools", &rule.match_has_tools),
        ("json", &rule.match_wants_json),
        ("stream", &rule.match_stream),
    ] {
        if !value.is_empty() {
            parts.push(format!("{label}={value}"));
        }
    }
    or_dash(&parts.join(" "))
}

/// A list of `{key, glob}` objects.
fn key_globs_json(globs: &[KeyGlob]) -> Value {
    globs
        .iter()
        .map(|g| json!({ "key": g.key, "glob": g.glob }))
        .collect()
}

impl Resource for RoutingRule {
    const KIND: &'static str = "routing rule";
    const FIELD: &'static str = "routing_rules";
    const HEADERS: &'static [&'static str] = &[
        "PRIORITY",
        "NAME",
        "MODEL",
        "CONDITIONS",
        "ACTION",
        "FALLBACK",
    ];

    fn row(&self) -> Vec<String> {
        vec![
            self.priority.to_string(),
            self.name.clone(),
            self.match_model.clone(),
            conditions_summary(self),
            action_summary(self),
            or_dash(&self.fallback_policy),
        ]
    }

    fn to_json(&self) -> Value {
        let targets: Vec<Value> = self
            .targets
            .iter()
            .map(|t| json!({ "provider": t.provider, "model": t.model, "weight": t.weight }))
            .collect();
        json!({
            "name": self.name,
            "priority": self.priority,
            "match_model": self.match_model,
            "match_api_keys": self.match_api_keys,
            "match_headers": key_globs_json(&self.match_headers),
            "match_metadata": key_globs_json(&self.match_metadata),
            "match_has_tools": self.match_has_tools,
            "match_wants_json": self.match_wants_json,
            "match_stream": self.match_stream,
            "target_provider": self.target_provider,
            "target_model": self.target_model,
            "targets": targets,
            "mode": self.mode,
            "deny": self.deny,
            "fallback_policy": self.fallback_policy,
        })
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn weighted(provider: &str, model: &str, weight: u32) -> WeightedTarget {
        WeightedTarget {
            provider: provider.into(),
            model: model.into(),
            weight,
        }
    }

    fn glob(key: &str, glob: &str) -> KeyGlob {
        KeyGlob {
            key: key.into(),
            glob: glob.into(),
        }
    }

    #[test]
    fn key_globs_split_at_the_first_equals() {
        assert_eq!(parse_key_glob("x-team=ml*"), Ok(glob("x-team", "ml*")));
        assert_eq!(parse_key_glob("q=a=b"), Ok(glob("q", "a=b")));
        assert_eq!(parse_key_glob(" tier =gold"), Ok(glob("tier", "gold")));
        assert!(parse_key_glob("x-team").unwrap_err().contains("NAME=GLOB"));
        assert!(parse_key_glob("=ml").is_err());
        assert!(parse_key_glob("x-team=").unwrap_err().contains("'*'"));
    }

    #[test]
    fn weighted_targets_take_an_optional_model_and_weight() {
        assert_eq!(
            parse_weighted_target("openai"),
            Ok(weighted("openai", "", 1))
        );
        assert_eq!(
            parse_weighted_target("openai:gpt-4o=3"),
            Ok(weighted("openai", "gpt-4o", 3))
        );
        assert_eq!(
            parse_weighted_target(" ollama:llama3:8b=2 "),
            Ok(weighted("ollama", "llama3:8b", 2))
        );
        assert_eq!(
            parse_weighted_target("mistral=10"),
            Ok(weighted("mistral", "", 10))
        );
        assert!(
            parse_weighted_target("openai=0")
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(
            parse_weighted_target("openai=x")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse_weighted_target("openai=-1").is_err());
        assert!(parse_weighted_target("openai:=2").is_err());
        assert!(parse_weighted_target("=2").is_err());
    }

    #[test]
    fn summaries_use_the_flags_syntax() {
        let mut rule = RoutingRule {
            name: "r".into(),
            match_model: "*".into(),
            target_provider: "openai".into(),
            target_model: "gpt-4o".into(),
            ..Default::default()
        };
        assert_eq!(action_summary(&rule), "provider openai:gpt-4o");
        assert_eq!(conditions_summary(&rule), "-");

        rule.target_provider.clear();
        rule.targets = vec![weighted("a", "m", 3), weighted("b", "", 1)];
        assert_eq!(action_summary(&rule), "targets a:m=3,b=1");
        rule.targets.clear();
        rule.mode = "auto:fast".into();
        assert_eq!(action_summary(&rule), "mode auto:fast");
        rule.deny = true;
        assert_eq!(action_summary(&rule), "deny");

        rule.match_api_keys = vec!["ci".into(), "ops".into()];
        rule.match_headers = vec![glob("x-team", "ml*")];
        rule.match_metadata = vec![glob("tier", "gold")];
        rule.match_has_tools = "yes".into();
        rule.match_stream = "no".into();
        assert_eq!(
            conditions_summary(&rule),
            "keys=ci,ops header:x-team=ml* metadata:tier=gold tools=yes stream=no"
        );
    }

    #[test]
    fn row_and_json() {
        let rule = RoutingRule {
            name: "split".into(),
            priority: -1,
            match_model: "gpt-*".into(),
            fallback_policy: "cheap".into(),
            match_api_keys: vec!["ci".into()],
            match_headers: vec![glob("x-team", "ml*")],
            match_metadata: vec![glob("tier", "gold")],
            match_has_tools: String::new(),
            match_wants_json: "yes".into(),
            match_stream: String::new(),
            targets: vec![weighted("a", "m", 3)],
            target_provider: String::new(),
            target_model: String::new(),
            mode: String::new(),
            deny: false,
        };
        assert_eq!(
            rule.row(),
            [
                "-1",
                "split",
                "gpt-*",
                "keys=ci header:x-team=ml* metadata:tier=gold json=yes",
                "targets a:m=3",
                "cheap"
            ]
        );
        assert_eq!(
            rule.to_json(),
            json!({
                "name": "split", "priority": -1, "match_model": "gpt-*",
                "match_api_keys": ["ci"],
                "match_headers": [{"key": "x-team", "glob": "ml*"}],
                "match_metadata": [{"key": "tier", "glob": "gold"}],
                "match_has_tools": "", "match_wants_json": "yes", "match_stream": "",
                "target_provider": "", "target_model": "",
                "targets": [{"provider": "a", "model": "m", "weight": 3}],
                "mode": "", "deny": false, "fallback_policy": "cheap"
            })
        );
    }
}
