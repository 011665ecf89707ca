//! Credential checks per protocol: bearer token, `x-api-key` + `anthropic-version`, or
//! `x-goog-api-key` (and a hard 400 for keys leaked into the URL).

use axum::http::HeaderMap;

use crate::Protocol;
use crate::errors::ApiError;

/// Checks the request's credentials; `Err` carries the provider's own error.
pub(crate) fn check(
    protocol: Protocol,
    expected_key: &str,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<(), ApiError> {
    match protocol {
        Protocol::OpenAi | Protocol::Mistral | Protocol::DeepSeek => {
            let presented = header(headers, "authorization")
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::trim);
            match presented {
                _ if expected_key.is_empty() => Ok(()),
                Some(key) if key == expected_key => Ok(()),
                // Quoted in full (OpenAI masks the middle) so that a gateway that forwards
                // upstream error text fails secret-canary tests.
                Some(key) => Err(ApiError::new(
                    401,
                    format!(
                        "Incorrect API key provided: {key}. You can find your API key at \
                         https://platform.openai.com/account/api-keys."
                    ),
                )
                .kind("invalid_request_error")
                .code("invalid_api_key")),
                None => Err(ApiError::new(
                    401,
                    "You didn't provide an API key. You need to provide your API key in an \
                     Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                )
                .kind("invalid_request_error")),
            }
        }
        Protocol::Anthropic => {
            let key = header(headers, "x-api-key");
            if !expected_key.is_empty() && key != Some(expected_key) {
                return Err(ApiError::new(401, "invalid x-api-key"));
            }
            if header(headers, "anthropic-version").is_none() {
                return Err(ApiError::new(400, "anthropic-version: header is required"));
            }
            Ok(())
        }
        Protocol::Gemini => {
            if query_has_key(query) {
                return Err(ApiError::new(
                    400,
                    "API key passed in the URL (?key=); this simulator rejects it because keys in \
                     URLs leak into logs. Send the x-goog-api-key header instead.",
                ));
            }
            let key = header(headers, "x-goog-api-key");
            if expected_key.is_empty() || key == Some(expected_key) {
                Ok(())
            } else if key.is_none() {
                Err(ApiError::new(
                    401,
                    "Method doesn't allow unregistered callers (callers without established \
                     identity). Please use API Key or other form of API consumer identity to call \
                     this API.",
                ))
            } else {
                Err(ApiError::new(
                    401,
                    "API key not valid. Please pass a valid API key.",
                ))
            }
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn query_has_key(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some("key"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn bearer_must_match() {
        let ok = headers(&[("authorization", "Bearer k1")]);
        let bad = headers(&[("authorization", "Bearer k2")]);
        assert!(check(Protocol::OpenAi, "k1", &ok, None).is_ok());
        assert_eq!(
            check(Protocol::Mistral, "k1", &bad, None)
                .unwrap_err()
                .status,
            401
        );
        assert!(check(Protocol::DeepSeek, "", &HeaderMap::new(), None).is_ok());
    }

    #[test]
    fn anthropic_needs_version_even_without_key() {
        let no_version = headers(&[("x-api-key", "k")]);
        let err = check(Protocol::Anthropic, "", &no_version, None).unwrap_err();
        assert_eq!(err.status, 400);
        let ok = headers(&[("x-api-key", "k"), ("anthropic-version", "2023-06-01")]);
        assert!(check(Protocol::Anthropic, "k", &ok, None).is_ok());
    }

    #[test]
    fn gemini_rejects_key_in_query() {
        let ok = headers(&[("x-goog-api-key", "k")]);
        assert!(check(Protocol::Gemini, "k", &ok, Some("alt=sse")).is_ok());
        let err = check(Protocol::Gemini, "k", &ok, Some("alt=sse&key=k")).unwrap_err();
        assert_eq!(err.status, 400);
        let err = check(Protocol::Gemini, "", &ok, Some("key=k")).unwrap_err();
        assert_eq!(err.status, 400);
    }
}
