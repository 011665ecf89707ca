//! JSON Schema (what OpenAI clients send for tool parameters and `json_schema` answers) reduced to
//! the OpenAPI subset Gemini's `Schema` accepts. Gemini rejects unknown keywords ("Invalid JSON
//! payload received. Unknown name \"additionalProperties\""), so the output is built from an
//! allow-list: `type` (upper-case enum), `format` (only values Gemini accepts), `title`,
//! `description`, `nullable`, string `enum`, `properties`, `required`, `items`, `anyOf`,
//! `minItems`/`maxItems`, `minimum`/`maximum`. Local `$ref`s are inlined (recursion is refused),
//! `allOf` is merged, `oneOf` becomes `anyOf`, `const` becomes a one-value `enum`, a `null` type or
//! branch becomes `nullable`; everything else (`$schema`, `additionalProperties`, `default`,
//! `examples`, `pattern`, ...) is dropped.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// Most schema nodes one reduction may produce (inlined `$ref`s can multiply a schema).
const MAX_NODES: usize = 10_000;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

/// Reduces a client's JSON Schema to Gemini's `Schema`; `param` names the field in 400 errors.
pub(in crate::providers) fn reduce(schema: &Value, param: &str) -> Result<Value, ApiError> {
    let mut reducer = Reducer {
        root: schema,
        param,
        nodes: 0,
        refs: Vec::new(),
    };
    reducer.node(schema, 0).map(Value::Object)
}

/// Whether a reduced object schema declares no properties (Gemini wants such function
/// `parameters` left out rather than sent as an empty object).
pub(in crate::providers) fn is_empty_object(schema: &Value) -> bool {
    let properties = schema.get("properties").and_then(Value::as_object);
    schema.get("anyOf").is_none() && properties.is_none_or(Map::is_empty)
}

struct Reducer<'a> {
    root: &'a Value,
    param: &'a str,
    nodes: usize,
    /// The `$ref`s being inlined right now, to refuse recursive schemas.
    refs: Vec<&'a str>,
}

impl<'a> Reducer<'a> {
    fn refuse(&self, why: impl std::fmt::Display) -> ApiError {
        ApiError::invalid(
            self.param,
            format!("This JSON Schema cannot be sent to Gemini: {why}."),
        )
    }

    fn node(&mut self, schema: &'a Value, depth: usize) -> Result<Map<String, Value>, ApiError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.refuse(format!("it expands to more than {MAX_NODES} nodes")));
        }
        if depth > MAX_DEPTH {
            return Err(self.refuse(format!("it nests deeper than {MAX_DEPTH} levels")));
        }
        let obj = match schema {
            Value::Object(obj) => obj,
            // `true` (anything goes) and `false` have no Gemini form; an empty schema is closest.
            Value::Bool(_) => return Ok(Map::new()),
            _ => return Err(self.refuse("a schema must be an object")),
        };
        if let Some(reference) = obj.get("$ref") {
            let reference = reference
                .as_str()
                .ok_or_else(|| self.refuse("`$ref` must be a string"))?;
            let mut out = self.inline(reference, depth)?;
            copy_text(obj, &mut out);
            return Ok(out);
        }
        let mut out = self.plain(obj, depth)?;
        if let Some(all) = obj.get("allOf") {
            let branches = all
                .as_array()
                .ok_or_else(|| self.refuse("`allOf` must be an array"))?;
            for branch in branches {
                let reduced = self.node(branch, depth + 1)?;
                merge(&mut out, reduced);
            }
        }
        Ok(out)
    }

    /// Inlines a local `$ref` (`#`, `#/$defs/X`, `#/definitions/X`, any JSON pointer into the root).
    fn inline(&mut self, reference: &'a str, depth: usize) -> Result<Map<String, Value>, ApiError> {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(self.refuse(format!("`$ref` `{reference}` is not local to the schema")));
        };
        if self.refs.contains(&reference) {
            return Err(self.refuse(format!(
                "`$ref` `{reference}` is recursive, which Gemini cannot express"
            )));
        }
        let target = self
            .root
            .pointer(pointer)
            .ok_or_else(|| self.refuse(format!("`$ref` `{reference}` points nowhere")))?;
        self.refs.push(reference);
        let out = self.node(target, depth + 1);
        self.refs.pop();
        out
    }

    /// Everything except `$ref` and `allOf`.
    fn plain(
        &mut self,
        obj: &'a Map<String, Value>,
        depth: usize,
    ) -> Result<Map<String, Value>, ApiError> {
        let mut out = Map::new();
        let mut nullable = obj.get("nullable") == Some(&Value::Bool(true));
        let mut types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.contains(&"null") {
            nullable = true;
            types.retain(|t| *t != "null");
        }
        let mut branches = Vec::new();
        for key in ["anyOf", "oneOf"] {
            let Some(list) = obj.get(key) else { continue };
            let list = list
                .as_array()
                .ok_or_else(|| self.refuse(format!("`{key}` must be an array")))?;
            for branch in list {
                if is_null_type(branch) {
                    nullable = true;
                } else {
                    branches.push(Value::Object(self.node(branch, depth + 1)?));
                }
            }
        }
        match types.as_slice() {
            [] => {}
            [one] => {
                out.insert("type".into(), self.gemini_type(one)?);
            }
            many => {
                // `["string", "number"]` is `anyOf` in Gemini's subset.
                for t in many {
                    let mut branch = Map::new();
                    branch.insert("type".into(), self.gemini_type(t)?);
                    branches.push(Value::Object(branch));
                }
            }
        }
        copy_text(obj, &mut out);
        let values = match (obj.get("enum"), obj.get("const")) {
            (Some(Value::Array(values)), _) => Some(values.clone()),
            (_, Some(value)) => Some(vec![value.clone()]),
            _ => None,
        };
        if let Some(values) = values {
            self.enumeration(values, &mut out, &mut nullable);
        }
        if let Some(format) = obj.get("format").and_then(Value::as_str) {
            let kept = match out.get("type").and_then(Value::as_str) {
                Some("STRING") => ["enum", "date-time"].contains(&format),
                Some("NUMBER") => ["float", "double"].contains(&format),
                Some("INTEGER") => ["int32", "int64"].contains(&format),
                _ => false,
            };
            if kept {
                out.insert("format".into(), Value::String(format.into()));
            }
        }
        if let Some(properties) = obj.get("properties") {
            let properties = properties
                .as_object()
                .ok_or_else(|| self.refuse("`properties` must be an object"))?;
            let mut reduced = Map::new();
            for (name, property) in properties {
                reduced.insert(name.clone(), Value::Object(self.node(property, depth + 1)?));
            }
            if let Some(Value::Array(required)) = obj.get("required") {
                let required: Vec<Value> = required
                    .iter()
                    .filter(|r| r.as_str().is_some_and(|r| reduced.contains_key(r)))
                    .cloned()
                    .collect();
                if !required.is_empty() {
                    out.insert("required".into(), Value::Array(required));
                }
            }
            out.insert("properties".into(), Value::Object(reduced));
            out.entry("type").or_insert_with(|| "OBJECT".into());
        }
        match obj.get("items") {
            Some(Value::Array(_)) => {
                return Err(self.refuse("tuple-style `items` arrays are not supported"));
            }
            Some(items) => {
                out.insert("items".into(), Value::Object(self.node(items, depth + 1)?));
                out.entry("type").or_insert_with(|| "ARRAY".into());
            }
            None => {}
        }
        for key in ["minItems", "maxItems"] {
            if let Some(n) = obj.get(key).filter(|v| v.is_u64()) {
                out.insert(key.into(), n.clone());
            }
        }
        for key in ["minimum", "maximum"] {
            if let Some(n) = obj.get(key).filter(|v| v.is_number()) {
                out.insert(key.into(), n.clone());
            }
        }
        match branches.len() {
            0 => {}
            // `anyOf: [X, null]` is X, nullable.
            1 if out.get("type").is_none() => {
                if let Some(Value::Object(only)) = branches.pop() {
                    merge(&mut out, only);
                }
            }
            _ => {
                out.insert("anyOf".into(), Value::Array(branches));
            }
        }
        if nullable {
            out.insert("nullable".into(), Value::Bool(true));
        }
        Ok(out)
    }

    /// Gemini's name for a JSON Schema type.
    fn gemini_type(&self, t: &str) -> Result<Value, ApiError> {
        let name = match t {
            "string" => "STRING",
            "number" => "NUMBER",
            "integer" => "INTEGER",
            "boolean" => "BOOLEAN",
            "array" => "ARRAY",
            "object" => "OBJECT",
            other => return Err(self.refuse(format!("`{other}` is not a JSON Schema type"))),
        };
        Ok(Value::String(name.into()))
    }

    /// Gemini enums are strings; other values become a hint in the description.
    fn enumeration(&self, values: Vec<Value>, out: &mut Map<String, Value>, nullable: &mut bool) {
        if values.iter().any(Value::is_null) {
            *nullable = true;
        }
        let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
        if values.is_empty() {
            return;
        }
        let is_string_type = out.get("type").is_none_or(|t| t == "STRING");
        if is_string_type && values.iter().all(Value::is_string) {
            out.insert("type".into(), "STRING".into());
            out.insert("enum".into(), Value::Array(values));
            return;
        }
        let listed: Vec<String> = values.iter().map(Value::to_string).collect();
        let hint = format!("Allowed values: {}.", listed.join(", "));
        let description = match out.get("description").and_then(Value::as_str) {
            Some(d) if !d.is_empty() => format!("{d} {hint}"),
            _ => hint,
        };
        out.insert("description".into(), Value::String(description));
    }
}

/// Copies the annotations Gemini keeps (`title`, `description`) when they are strings.
fn copy_text(from: &Map<String, Value>, to: &mut Map<String, Value>) {
    for key in ["title", "description"] {
        if let Some(text) = from.get(key).filter(|v| v.is_string()) {
            to.insert(key.into(), text.clone());
        }
    }
}

/// `{"type": "null"}` as an `anyOf` branch.
fn is_null_type(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// Merges a reduced schema into another (`allOf`, a lone `anyOf` branch): properties and
/// `required` are united, other keywords already present win.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (key.as_str(), into.get_mut(&key), value) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, schema) in theirs {
                    mine.entry(name).or_insert(schema);
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                into.insert(key, value);
            }
        }
    }
}
