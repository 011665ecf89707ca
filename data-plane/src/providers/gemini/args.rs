//! Function-call arguments that Gemini 3 on Vertex streams piece by piece
//! (`functionCall.partialArgs[{jsonPath, stringValue|numberValue|boolValue, willContinue}]`):
//! each piece sets the value at a JSON path of the arguments object, and string pieces for the
//! same path concatenate. The client still gets each call whole, once it is complete.

use serde_json::{Map, Value};

use crate::error::UpstreamError;
use crate::providers::gemini::response::Pending;
use crate::providers::gemini::wire::PartialArg;

/// Most argument bytes one streamed call may accumulate.
const MAX_ARGS_BYTES: usize = 1 << 20;
/// Deepest JSON path followed. Real arguments nest far less (OpenAI clients parse them with
/// limits like serde_json's 128), and a path of a few thousand steps would build a value whose
/// serialisation and drop recurse deep enough to overflow the stack and abort the process.
const MAX_PATH_STEPS: usize = 64;

/// One step of a JSON path.
#[derive(Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Parses `$.a.b[0]['c d']` into steps; `None` for anything else.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let mut rest = path.strip_prefix('$')?;
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix("['") {
            let end = r.find("']")?;
            steps.push(Step::Key(r[..end].to_string()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            steps.push(Step::Index(r[..end].parse().ok()?));
            rest = &r[end + 1..];
        } else {
            return None;
        }
    }
    Some(steps)
}

/// The value at `steps`, created (as `null`) when missing. Arrays grow one element at a time.
fn slot<'v>(mut value: &'v mut Value, steps: &[Step]) -> Option<&'v mut Value> {
    for step in steps {
        value = match step {
            Step::Key(key) => {
                if !value.is_object() {
                    *value = Value::Object(Map::new());
                }
                value
                    .as_object_mut()?
                    .entry(key.clone())
                    .or_insert(Value::Null)
            }
            Step::Index(i) => {
                if !value.is_array() {
                    *value = Value::Array(Vec::new());
                }
                let list = value.as_array_mut()?;
                if *i == list.len() {
                    list.push(Value::Null);
                }
                list.get_mut(*i)?
            }
        };
    }
    Some(value)
}

/// Applies one streamed argument piece to a pending call.
pub(in crate::providers) fn apply_partial(
    pending: &mut Pending,
    arg: PartialArg,
) -> Result<(), UpstreamError> {
    let broken =
        |why: &str| UpstreamError::Malformed(format!("streamed function-call arguments {why}"));
    let steps = parse_path(&arg.json_path)
        .filter(|s| !s.is_empty() && s.len() <= MAX_PATH_STEPS)
        .ok_or_else(|| broken("with a path this gateway cannot follow"))?;
    pending.size += arg.json_path.len() + arg.string_value.as_ref().map_or(8, String::len);
    if pending.size > MAX_ARGS_BYTES {
        return Err(broken(&format!("larger than {MAX_ARGS_BYTES} bytes")));
    }
    let target = slot(&mut pending.args, &steps).ok_or_else(|| broken("with a gap in an array"))?;
    match (arg.string_value, arg.number_value, arg.bool_value) {
        (Some(more), _, _) => match target {
            Value::String(text) => text.push_str(&more),
            other => *other = Value::String(more),
        },
        (None, Some(n), _) => *target = Value::Number(n),
        (None, None, Some(b)) => *target = Value::Bool(b),
        (None, None, None) => *target = Value::Null,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        assert_eq!(
            parse_path("$.a[1]['b c'].d"),
            Some(vec![
                Step::Key("a".into()),
                Step::Index(1),
                Step::Key("b c".into()),
                Step::Key("d".into())
            ])
        );
        assert_eq!(parse_path("$"), Some(vec![]));
        assert_eq!(parse_path("a.b"), None);
        assert_eq!(parse_path("$..a"), None);
        assert_eq!(parse_path("$[x]"), None);
    }

    #[test]
    fn builds_nested_values() {
        let mut v = Value::Object(Map::new());
        *slot(&mut v, &parse_path("$.a[0].b").unwrap()).unwrap() = Value::from(1);
        *slot(&mut v, &parse_path("$.a[1]").unwrap()).unwrap() = Value::from("x");
        assert_eq!(v, serde_json::json!({"a": [{"b": 1}, "x"]}));
        assert!(slot(&mut v, &parse_path("$.a[5]").unwrap()).is_none());
    }
}
