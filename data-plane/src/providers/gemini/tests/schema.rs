//! JSON Schema reduction to Gemini's subset: what is kept, converted, inlined, dropped and refused.
#![cfg(test)]

use serde_json::{Value, json};

use crate::providers::gemini::schema::reduce;

fn reduced(schema: Value) -> Value {
    reduce(&schema, "p").unwrap()
}

#[test]
fn keeps_the_subset_and_drops_the_rest() {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "urn:x", "title": "Order",
        "type": "object", "additionalProperties": false, "description": "An order.",
        "properties": {
            "id": { "type": "integer", "format": "int64", "minimum": 1, "default": 1, "examples": [3] },
            "when": { "type": "string", "format": "date-time" },
            "site": { "type": "string", "format": "uri", "pattern": "^https://", "maxLength": 99 },
            "ratio": { "type": "number", "format": "percent", "maximum": 1 },
            "tags": { "type": "array", "items": { "type": "string" }, "minItems": 1, "maxItems": 5,
                      "uniqueItems": true },
            "kind": { "enum": ["a", "b"] },
            "fixed": { "const": "yes" },
            "meta": { "type": "object", "additionalProperties": { "type": "string" } },
        },
        "required": ["id", "ghost"],
    });
    assert_eq!(
        reduced(schema),
        json!({
            "title": "Order", "type": "OBJECT", "description": "An order.",
            "properties": {
                "id": { "type": "INTEGER", "format": "int64", "minimum": 1 },
                "when": { "type": "STRING", "format": "date-time" },
                "site": { "type": "STRING" },
                "ratio": { "type": "NUMBER", "maximum": 1 },
                "tags": { "type": "ARRAY", "items": { "type": "STRING" }, "minItems": 1, "maxItems": 5 },
                "kind": { "type": "STRING", "enum": ["a", "b"] },
                "fixed": { "type": "STRING", "enum": ["yes"] },
                "meta": { "type": "OBJECT" },
            },
            "required": ["id"],
        })
    );
}

#[test]
fn null_becomes_nullable() {
    assert_eq!(
        reduced(json!({ "type": ["string", "null"], "description": "Maybe." })),
        json!({ "type": "STRING", "nullable": true, "description": "Maybe." })
    );
    assert_eq!(
        reduced(
            json!({ "anyOf": [{ "type": "integer" }, { "type": "null" }], "description": "n" })
        ),
        json!({ "type": "INTEGER", "nullable": true, "description": "n" })
    );
    assert_eq!(
        reduced(json!({ "enum": ["x", null] })),
        json!({ "type": "STRING", "enum": ["x"], "nullable": true })
    );
}

#[test]
fn unions_become_any_of() {
    assert_eq!(
        reduced(
            json!({ "oneOf": [{ "type": "string" }, { "type": "object", "properties": { "a": { "type": "boolean" } } }] })
        ),
        json!({ "anyOf": [{ "type": "STRING" }, { "type": "OBJECT", "properties": { "a": { "type": "BOOLEAN" } } }] })
    );
    assert_eq!(
        reduced(json!({ "type": ["string", "number"] })),
        json!({ "anyOf": [{ "type": "STRING" }, { "type": "NUMBER" }] })
    );
}

#[test]
fn non_string_enums_become_a_hint() {
    assert_eq!(
        reduced(json!({ "type": "integer", "enum": [1, 2, 3], "description": "Level." })),
        json!({ "type": "INTEGER", "description": "Level. Allowed values: 1, 2, 3." })
    );
}

#[test]
fn local_refs_are_inlined_and_all_of_merged() {
    let schema = json!({
        "type": "object",
        "$defs": { "Point": { "type": "object", "properties": { "x": { "type": "number" } }, "required": ["x"] } },
        "definitions": { "Named": { "properties": { "name": { "type": "string" } }, "required": ["name"] } },
        "properties": {
            "from": { "$ref": "#/$defs/Point", "description": "Start." },
            "to": { "$ref": "#/$defs/Point" },
            "label": { "allOf": [{ "$ref": "#/definitions/Named" }, { "properties": { "size": { "type": "integer" } } }] },
        },
    });
    let point = |d: Option<&str>| {
        let mut p = json!({ "type": "OBJECT", "properties": { "x": { "type": "NUMBER" } }, "required": ["x"] });
        if let Some(d) = d {
            p["description"] = json!(d);
        }
        p
    };
    assert_eq!(
        reduced(schema),
        json!({ "type": "OBJECT", "properties": {
            "from": point(Some("Start.")),
            "to": point(None),
            "label": { "type": "OBJECT", "properties": { "name": { "type": "STRING" }, "size": { "type": "INTEGER" } },
                       "required": ["name"] },
        } })
    );
}

#[test]
fn what_gemini_cannot_express_is_refused_with_the_param() {
    let recursive = json!({ "$defs": { "Node": { "type": "object", "properties": {
        "children": { "type": "array", "items": { "$ref": "#/$defs/Node" } } } } }, "$ref": "#/$defs/Node" });
    for (schema, why) in [
        (recursive, "recursive"),
        (
            json!({ "$ref": "https://example.com/schema.json" }),
            "not local",
        ),
        (json!({ "$ref": "#/$defs/Missing" }), "points nowhere"),
        (
            json!({ "type": "array", "items": [{ "type": "string" }] }),
            "tuple",
        ),
        (json!({ "type": "date" }), "not a JSON Schema type"),
        (json!({ "properties": [] }), "must be an object"),
    ] {
        let e = reduce(&schema, "tools[2].function.parameters").unwrap_err();
        assert_eq!(e.status(), 400);
        assert_eq!(e.param(), Some("tools[2].function.parameters"));
        assert!(e.message().contains(why), "{}", e.message());
    }
    let mut deep = json!({ "type": "string" });
    for _ in 0..70 {
        deep = json!({ "type": "array", "items": deep });
    }
    assert!(reduce(&deep, "p").unwrap_err().message().contains("deeper"));
    // A ref used 4 times by each of 10 levels would expand to 4^10 nodes.
    let mut defs = serde_json::Map::new();
    defs.insert("L0".into(), json!({ "type": "string" }));
    for i in 1..10 {
        let r = json!({ "$ref": format!("#/$defs/L{}", i - 1) });
        defs.insert(
            format!("L{i}"),
            json!({ "type": "object", "properties": { "a": r, "b": r, "c": r, "d": r } }),
        );
    }
    let bomb = json!({ "$defs": defs, "$ref": "#/$defs/L9" });
    assert!(reduce(&bomb, "p").unwrap_err().message().contains("nodes"));
}
