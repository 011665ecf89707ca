//! Tool-call ids for Anthropic, which requires `^[a-zA-Z0-9_-]+$` on `tool_use.id` and
//! `tool_result.tool_use_id`. An id that already fits (Anthropic's own `toolu_…`, OpenAI's
//! `call_…`, Mistral's nine alphanumerics) is sent as it is; any other one (a client's made-up
//! `call.1`, an empty id, a colon-separated id from another gateway) becomes its valid characters
//! followed by a hash of the whole id. The mapping is a pure function of the id, so the assistant
//! turn and its tool result get the same value on every turn, in every data plane, with no state.
//!
//! Nothing needs mapping back: Anthropic's answers carry ids it issued itself (valid, so the
//! client sends them back unchanged), never the ids of earlier turns.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

/// Longest part of an invalid id kept, readable, before the hash.
const KEPT: usize = 40;

/// Whether Anthropic accepts `id` as it is.
pub(in crate::providers) fn is_valid(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The id Anthropic is sent for the client's `id`.
pub(in crate::providers) fn to_anthropic(id: &str) -> Cow<'_, str> {
    if is_valid(id) {
        return Cow::Borrowed(id);
    }
    let digest = Sha256::digest(id.as_bytes());
    let mut out: String = id
        .chars()
        .take(KEPT)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !out.is_empty() {
        out.push('_');
    }
    out.push_str("tr");
    out.push_str(&hex::encode(&digest[..8]));
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_stay_and_others_become_valid_stable_and_distinct() {
        for id in [
            "toolu_01A09q90qw90lq917835lq9",
            "call_abc-1",
            "gSIMJiOkT",
            "x",
        ] {
            assert!(matches!(to_anthropic(id), Cow::Borrowed(_)), "{id}");
        }
        let odd = [
            "call.1",
            "call:1",
            "",
            "functions.get_weather:0",
            "id with spaces",
            "caf\u{e9}",
        ];
        let mapped: Vec<String> = odd.iter().map(|id| to_anthropic(id).into_owned()).collect();
        for (id, m) in odd.iter().zip(&mapped) {
            assert!(is_valid(m), "{id:?} -> {m}");
            assert_eq!(to_anthropic(id), m.as_str(), "deterministic");
        }
        assert_eq!(
            mapped[3].split("_tr").next(),
            Some("functions_get_weather_0")
        );
        // `call.1` and `call:1` keep the same readable part but differ by their hashes.
        let mut unique = mapped.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), mapped.len(), "{mapped:?}");
    }

    #[test]
    fn long_invalid_ids_are_bounded() {
        let long = "a.".repeat(5000);
        let m = to_anthropic(&long);
        assert!(is_valid(&m));
        assert!(m.len() <= KEPT + 1 + 2 + 16, "{}", m.len());
    }
}
