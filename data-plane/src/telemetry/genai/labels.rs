//! The labels of the GenAI series: which optional ones the operator turned on, and the caps that
//! keep values chosen by a provider or a client (the response model, the end user) from minting
//! unbounded series.

use std::collections::HashSet;

use crate::telemetry::metrics::label_model;

/// Distinct `gen_ai_response_model` values kept; later new ones share [`OVERFLOW`].
pub const MAX_RESPONSE_MODELS: usize = 256;
/// Distinct `tokenrouter_user` values kept (end users are named by clients).
pub const MAX_USERS: usize = 1000;
/// Distinct `tokenrouter_key` values kept (keys come from the configuration; a bound all the same).
pub const MAX_KEYS: usize = 10_000;
/// The value shared by everything past a label's cap.
pub const OVERFLOW: &str = "_other";

/// The labels an operator may add to the GenAI series (`--metrics-labels key,user`). Both are
/// off by default: one series per key or end user multiplies every histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricLabels {
    /// `tokenrouter_key`: the API key's name (never the secret).
    pub key: bool,
    /// `tokenrouter_user`: the request's end user (`user`, or `user_id` in its metadata).
    pub user: bool,
}

impl MetricLabels {
    /// Reads a comma-separated list of `key` and `user` (empty or `none`: neither).
    pub fn parse(list: &str) -> Result<MetricLabels, String> {
        let mut labels = MetricLabels::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "key" => labels.key = true,
                "user" => labels.user = true,
                "none" => {}
                other => {
                    return Err(format!(
                        "`{other}` is not an optional metrics label (key, user)"
                    ));
                }
            }
        }
        Ok(labels)
    }
}

/// The values one label has taken, at most `cap` of them.
#[derive(Debug)]
pub struct Capped {
    seen: HashSet<Box<str>>,
    cap: usize,
}

impl Capped {
    pub fn new(cap: usize) -> Capped {
        Capped {
            seen: HashSet::new(),
            cap,
        }
    }

    /// `value` (cut like a model label) when it is known or there is room, else [`OVERFLOW`].
    pub fn admit<'v>(&mut self, value: &'v str) -> &'v str {
        let value = label_model(value);
        if value.is_empty() || self.seen.contains(value) {
            return value;
        }
        if self.seen.len() < self.cap {
            self.seen.insert(value.into());
            value
        } else {
            OVERFLOW
        }
    }
}

/// Appends `,name="value"` (or `name="value"` to an empty text), the value escaped as the text
/// format requires.
pub fn push(out: &mut String, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    escape_into(out, value);
    out.push('"');
}

/// Appends `value` escaped as the text format requires of a label value.
pub fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_known_labels_only() {
        assert_eq!(MetricLabels::parse("").unwrap(), MetricLabels::default());
        assert_eq!(
            MetricLabels::parse(" key , user").unwrap(),
            MetricLabels {
                key: true,
                user: true
            }
        );
        assert!(MetricLabels::parse("key,secret").is_err());
    }

    #[test]
    fn values_past_the_cap_share_one() {
        let mut c = Capped::new(2);
        assert_eq!(c.admit("a"), "a");
        assert_eq!(c.admit("b"), "b");
        assert_eq!(c.admit("c"), OVERFLOW);
        assert_eq!(c.admit("a"), "a");
        assert_eq!(c.admit(""), "");
    }

    #[test]
    fn values_are_escaped() {
        let mut out = String::new();
        push(&mut out, "a", "x");
        push(&mut out, "b", "q\"\\\n");
        assert_eq!(out, "a=\"x\",b=\"q\\\"\\\\\\n\"");
    }
}
