//! The input side: every text a request carries to the provider (each message's content, text
//! parts, reasoning and tool-call arguments, whatever its role, and the tools' descriptions) goes
//! through the rules before the request is translated.

use serde_json::{Map, Value};

use crate::firewall::{Audit, Blocked, Direction, Firewall, active, filter_text};

/// Applies the input rules for this key and model to `texts` (an embeddings request's inputs),
/// masking in place.
pub fn check_texts(
    fw: &Firewall,
    key: &str,
    model: &str,
    texts: Vec<&mut String>,
    audit: &mut Audit,
) -> Result<(), Blocked> {
    let Some(active) = active(fw, Direction::Input, key, model) else {
        return Ok(());
    };
    for text in texts {
        filter_text(fw, &active, Direction::Input, text, audit)?;
    }
    Ok(())
}

/// Applies the input rules for this key and model to `body` (masking in place). `Ok` with what
/// was done, `Err` when a block rule found something.
pub fn check(
    fw: &Firewall,
    key: &str,
    model: &str,
    body: &mut Map<String, Value>,
    audit: &mut Audit,
) -> Result<(), Blocked> {
    let Some(active) = active(fw, Direction::Input, key, model) else {
        return Ok(());
    };
    let mut each = |v: &mut Value| -> Result<(), Blocked> {
        if let Value::String(s) = v {
            filter_text(fw, &active, Direction::Input, s, audit)?;
        }
        Ok(())
    };
    if let Some(Value::Array(messages)) = body.get_mut("messages") {
        for m in messages.iter_mut() {
            let Some(m) = m.as_object_mut() else { continue };
            match m.get_mut("content") {
                Some(Value::Array(parts)) => {
                    for part in parts.iter_mut() {
                        if let Some(text) = part.get_mut("text") {
                            each(text)?;
                        }
                    }
                }
                Some(content) => each(content)?,
                None => {}
            }
            if let Some(reasoning) = m.get_mut("reasoning_content") {
                each(reasoning)?;
            }
            if let Some(Value::Array(calls)) = m.get_mut("tool_calls") {
                for call in calls.iter_mut() {
                    if let Some(arguments) = call.pointer_mut("/function/arguments") {
                        each(arguments)?;
                    }
                }
            }
        }
    }
    if let Some(Value::Array(tools)) = body.get_mut("tools") {
        for tool in tools.iter_mut() {
            if let Some(description) = tool.pointer_mut("/function/description") {
                each(description)?;
            }
        }
    }
    Ok(())
}
