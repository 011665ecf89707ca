//! Checks of a firewall rule on its own: known detectors, action and direction, custom patterns
//! that compile within a size limit, sane keywords and model globs.

use super::{FIREWALL_DETECTORS, ValidationError, bad, check_model_name};
use crate::v1::FirewallRule;

/// What a firewall rule does, and where it looks.
pub const FIREWALL_ACTIONS: &[&str] = &["block", "mask", "flag"];
pub const FIREWALL_DIRECTIONS: &[&str] = &["input", "output", "both"];
/// Longest custom pattern, and the most compiled program one may grow into (a hostile pattern
/// such as `(a{1000}){1000}` is refused rather than allowed to eat memory).
pub const MAX_FIREWALL_REGEX: usize = 1_000;
pub const FIREWALL_REGEX_SIZE_LIMIT: usize = 1 << 20;

/// `r` on its own; `at` renders a field path under the rule.
pub(super) fn check(r: &FirewallRule, at: &impl Fn(&str) -> String) -> Result<(), ValidationError> {
    if r.detectors.is_empty() && r.regexes.is_empty() && r.keywords.is_empty() {
        return Err(bad(
            at("detectors"),
            "a rule needs at least one detector, regex or keyword",
        ));
    }
    for d in &r.detectors {
        if !FIREWALL_DETECTORS.contains(&d.as_str()) {
            return Err(bad(
                at("detectors"),
                format!("{d:?} is not one of {}", FIREWALL_DETECTORS.join(", ")),
            ));
        }
    }
    if !FIREWALL_ACTIONS.contains(&r.action.as_str()) {
        return Err(bad(at("action"), "must be block, mask or flag"));
    }
    if !FIREWALL_DIRECTIONS.contains(&r.direction.as_str()) {
        return Err(bad(at("direction"), "must be input, output or both"));
    }
    for (i, pattern) in r.regexes.iter().enumerate() {
        if pattern.is_empty() || pattern.len() > MAX_FIREWALL_REGEX {
            return Err(bad(
                at(&format!("regexes[{i}]")),
                format!("must be 1 to {MAX_FIREWALL_REGEX} characters"),
            ));
        }
        if let Err(e) = regex::RegexBuilder::new(pattern)
            .size_limit(FIREWALL_REGEX_SIZE_LIMIT)
            .build()
        {
            // The pattern is the admin's own; the error names its position, not a match.
            let reason = match e {
                regex::Error::CompiledTooBig(_) => "compiles to a program too large".to_string(),
                other => format!("does not compile: {}", error_line(&other.to_string())),
            };
            return Err(bad(at(&format!("regexes[{i}]")), reason));
        }
    }
    for k in &r.keywords {
        if k.trim().is_empty() || k.len() > 256 || k.chars().any(char::is_control) {
            return Err(bad(
                at("keywords"),
                "keywords are 1 to 256 characters, without control characters",
            ));
        }
    }
    for m in &r.match_models {
        check_model_name(&at("match_models"), m)?;
    }
    Ok(())
}

/// The reason in a regex error (its last line; the lines above repeat the pattern).
fn error_line(s: &str) -> &str {
    s.lines().last().unwrap_or(s).trim()
}
