//! Provider base URLs in one canonical form, whichever convention the operator copied them from.
//!
//! The official SDKs disagree on where the version path goes: `ANTHROPIC_BASE_URL` is
//! `https://api.anthropic.com` (the client appends `/v1/messages`), Google's Gemini base URL has no
//! `/v1beta`, the Mistral SDK's `server_url` has no `/v1`, DeepSeek documents both forms, and
//! `OPENAI_BASE_URL` includes `/v1`. The data plane appends only the endpoint (`/messages`,
//! `/chat/completions`, `/models/{m}:generateContent`), so the stored base URL must carry the
//! version path. [`normalize_base_url`] adds it when the path is empty; both planes and the CLI use
//! it, so the form stored is the form every reader sees.

use crate::validate::{ValidationError, check_base_url};

/// The version path a provider kind's API lives under, for kinds whose servers we know.
/// `openai-compatible` (and any unknown kind) has none: an arbitrary server's layout cannot be
/// guessed.
pub fn default_version_path(kind: &str) -> Option<&'static str> {
    match kind {
        "openai" | "anthropic" | "mistral" | "deepseek" => Some("/v1"),
        "gemini" => Some("/v1beta"),
        _ => None,
    }
}

/// The canonical base URL for a provider of `kind`: surrounding whitespace and trailing `/` removed,
/// and, when no path is given, the kind's version path added (`/v1`, or `/v1beta` for Gemini).
/// A path that is given (`/v1`, `/v1beta`, a proxy's prefix) is kept as it is. The result is a
/// fixed point: normalising it again returns it unchanged. `field` names the setting in errors.
pub fn normalize_base_url(field: &str, kind: &str, raw: &str) -> Result<String, ValidationError> {
    let raw = raw.trim();
    check_base_url(field, raw)?;
    let mut url = url::Url::parse(raw).map_err(|e| ValidationError {
        field: field.into(),
        message: format!("not a valid URL: {e}"),
    })?;
    let path = url.path().trim_end_matches('/').to_string();
    match (path.is_empty(), default_version_path(kind)) {
        (true, Some(version)) => url.set_path(version),
        _ => url.set_path(&path),
    }
    // With no query or fragment (checked above) the serialisation ends with the path; an empty path
    // serialises as `/`.
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::SUPPORTED_KINDS;

    fn norm(kind: &str, raw: &str) -> String {
        normalize_base_url("base_url", kind, raw).unwrap()
    }

    /// (kind, SDK-style bare host, canonical form) for every kind whose layout is known.
    const OFFICIAL: &[(&str, &str, &str)] = &[
        (
            "openai",
            "https://api.openai.com",
            "https://api.openai.com/v1",
        ),
        (
            "anthropic",
            "https://api.anthropic.com",
            "https://api.anthropic.com/v1",
        ),
        (
            "gemini",
            "https://generativelanguage.googleapis.com",
            "https://generativelanguage.googleapis.com/v1beta",
        ),
        (
            "mistral",
            "https://api.mistral.ai",
            "https://api.mistral.ai/v1",
        ),
        (
            "deepseek",
            "https://api.deepseek.com",
            "https://api.deepseek.com/v1",
        ),
    ];

    #[test]
    fn every_known_kind_accepts_the_bare_and_the_full_form() {
        for (kind, bare, full) in OFFICIAL {
            for raw in [
                bare.to_string(),
                format!("{bare}/"),
                full.to_string(),
                format!("{full}/"),
                format!("  {full}//  "),
            ] {
                assert_eq!(norm(kind, &raw), *full, "{kind} {raw:?}");
            }
        }
    }

    #[test]
    fn every_supported_kind_has_a_rule() {
        for kind in SUPPORTED_KINDS {
            let expected = match *kind {
                "openai-compatible" => "http://h:8000",
                "gemini" => "http://h:8000/v1beta",
                _ => "http://h:8000/v1",
            };
            assert_eq!(norm(kind, "http://h:8000/"), expected, "{kind}");
            assert_eq!(norm(kind, "http://h:8000"), expected, "{kind}");
        }
    }

    #[test]
    fn a_given_path_is_kept() {
        assert_eq!(norm("gemini", "http://h/v1/"), "http://h/v1");
        assert_eq!(norm("gemini", "http://h/v1beta"), "http://h/v1beta");
        assert_eq!(norm("anthropic", "http://h/v1"), "http://h/v1");
        assert_eq!(
            norm("anthropic", "https://api.deepseek.com/anthropic/"),
            "https://api.deepseek.com/anthropic"
        );
        assert_eq!(
            norm("openai", "http://proxy/openai/v1/"),
            "http://proxy/openai/v1"
        );
        assert_eq!(
            norm("openai-compatible", "http://127.0.0.1:11434/v1/"),
            "http://127.0.0.1:11434/v1"
        );
        assert_eq!(
            norm("openai-compatible", "http://127.0.0.1:11434/"),
            "http://127.0.0.1:11434"
        );
    }

    #[test]
    fn unknown_kinds_are_only_trimmed() {
        assert_eq!(norm("nope", "http://h/"), "http://h");
    }

    #[test]
    fn normalising_twice_changes_nothing() {
        for kind in SUPPORTED_KINDS {
            for raw in [
                "http://h",
                "http://h/v1/",
                "https://H.example:8443/x/y/",
                "http://h/v1beta",
            ] {
                let once = norm(kind, raw);
                assert_eq!(norm(kind, &once), once, "{kind} {raw}");
            }
        }
    }

    #[test]
    fn invalid_urls_are_refused_naming_the_field() {
        for raw in [
            "",
            "api.anthropic.com",
            "ftp://h",
            "http://user:pw@h",
            "http://h/?key=1",
            "http://h/#x",
        ] {
            let err = normalize_base_url("ANTHROPIC_BASE_URL", "anthropic", raw).unwrap_err();
            assert_eq!(err.field, "ANTHROPIC_BASE_URL", "{raw:?}");
        }
    }
}
