//! `POST /v1/embeddings` bodies, validated into a [`ChatRequest`] whose operation is embeddings,
//! so that routing, key allow-lists, rules, limits and usage records treat it like any request.

use serde_json::{Map, Value};

use super::parse::{integer_in, object_with_model, split_user};
use super::{Caps, ChatRequest, Features, Operation, present};
use crate::error::ApiError;

/// Inputs one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

fn bad_input() -> ApiError {
    ApiError::invalid(
        "input",
        "`input` must be a non-empty string, an array of non-empty strings, an array of token ids or an array of token-id arrays.",
    )
}

/// Checks `input` and estimates its tokens (about 4 bytes a token; a token id is one).
fn input_tokens(input: Option<&Value>) -> Result<u64, ApiError> {
    let text = |s: &str| -> Result<u64, ApiError> {
        if s.is_empty() {
            return Err(bad_input());
        }
        Ok((s.len() as u64).div_ceil(4))
    };
    let ids = |ids: &[Value]| -> Result<u64, ApiError> {
        if ids.is_empty() || !ids.iter().all(Value::is_u64) {
            return Err(bad_input());
        }
        Ok(ids.len() as u64)
    };
    let items = match input {
        Some(Value::String(s)) => return text(s),
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => return Err(bad_input()),
        None => {
            return Err(ApiError::invalid(
                "input",
                "Missing required parameter: `input`.",
            ));
        }
    };
    if items.len() > MAX_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!(
                "`input` holds {} items; at most {MAX_INPUTS} are allowed.",
                items.len()
            ),
        ));
    }
    if items.iter().all(Value::is_u64) {
        return ids(items);
    }
    items.iter().try_fold(0u64, |sum, item| {
        let n = match item {
            Value::String(s) => text(s)?,
            Value::Array(a) => ids(a)?,
            _ => return Err(bad_input()),
        };
        Ok(sum.saturating_add(n))
    })
}

/// Parses and validates an embeddings body.
pub fn parse_embeddings(bytes: &[u8]) -> Result<ChatRequest, ApiError> {
    let (mut body, model) = object_with_model(bytes, "`model` and `input`")?;
    let prompt_tokens = input_tokens(body.get("input"))?;
    match present(&body, "encoding_format") {
        None => {}
        Some(Value::String(f)) if f == "float" || f == "base64" => {}
        Some(_) => {
            return Err(ApiError::invalid(
                "encoding_format",
                "`encoding_format` must be `float` or `base64`.",
            ));
        }
    }
    integer_in(&body, "dimensions", 1, 65_536)?;
    let user_metadata = split_user(&mut body)?;
    let needs = match present(&body, "dimensions") {
        Some(_) => vec![(Caps::DIMENSIONS, "dimensions")],
        None => Vec::new(),
    };
    Ok(ChatRequest {
        body,
        model,
        stream: false,
        include_usage: false,
        user_metadata,
        features: Features {
            prompt_tokens,
            embeddings: true,
            needs,
            ..Features::default()
        },
        operation: Operation::Embeddings,
        responses: None,
    })
}

/// The texts of an embeddings body's `input` (token-id inputs have none), for the firewall.
pub fn input_texts(body: &mut Map<String, Value>) -> Vec<&mut String> {
    match body.get_mut("input") {
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items
            .iter_mut()
            .filter_map(|i| match i {
                Value::String(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_of_every_shape_are_accepted_and_counted() {
        for (input, tokens) in [
            (r#""hello world""#, 3),
            (r#"["ab", "cdefg"]"#, 3),
            ("[1, 2, 3]", 3),
            ("[[1, 2], [3]]", 3),
        ] {
            let body = format!(r#"{{"model": "m", "input": {input}}}"#);
            let r = parse_embeddings(body.as_bytes()).unwrap();
            assert_eq!(r.features.prompt_tokens, tokens, "{input}");
            assert_eq!(r.operation, Operation::Embeddings);
        }
    }

    #[test]
    fn bad_bodies_name_the_parameter() {
        for (body, param) in [
            (r#"{"model": "m"}"#, "input"),
            (r#"{"model": "m", "input": ""}"#, "input"),
            (r#"{"model": "m", "input": []}"#, "input"),
            (r#"{"model": "m", "input": [1, "a"]}"#, "input"),
            (r#"{"model": "m", "input": {"a": 1}}"#, "input"),
            (
                r#"{"model": "m", "input": "a", "encoding_format": "int8"}"#,
                "encoding_format",
            ),
            (
                r#"{"model": "m", "input": "a", "dimensions": 0}"#,
                "dimensions",
            ),
            (
                r#"{"model": "m", "input": "a", "dimensions": "256"}"#,
                "dimensions",
            ),
            (r#"{"input": "a"}"#, "model"),
        ] {
            let e = parse_embeddings(body.as_bytes()).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{body}");
            assert_eq!(e.param(), Some(param), "{body}");
        }
        let many = format!(
            r#"{{"model": "m", "input": [{}]}}"#,
            vec!["\"a\""; 2049].join(",")
        );
        assert_eq!(
            parse_embeddings(many.as_bytes()).unwrap_err().param(),
            Some("input")
        );
    }
}
