//! Embeddings: OpenAI's and Mistral's `/v1/embeddings` (inputs, order, base64, dimensions, the
//! errors for what a model cannot do) and Gemini's `embedContent` / `batchEmbedContents`; DeepSeek
//! has none.

use base64::Engine as _;
use serde_json::{Value, json};

use super::*;

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[tokio::test]
async fn openai_embeds_inputs_in_order_as_floats_or_base64() {
    let sim = start(Protocol::OpenAi).await;
    let ask = |body: Value| {
        let sim = &sim;
        async move {
            let r = post(sim, "/embeddings", &body).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = ask(json!({"model": "text-embedding-3-small",
        "input": ["one two", "three", "one two"]}))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 5, "total_tokens": 5})
    );
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, d) in data.iter().enumerate() {
        assert_eq!(
            (d["object"].as_str(), d["index"].as_u64()),
            (Some("embedding"), Some(i as u64))
        );
    }
    let first = floats(&data[0]["embedding"]);
    assert_eq!(first.len(), 1536);
    assert!((norm(&first) - 1.0).abs() < 1e-3);
    assert_eq!(
        first,
        floats(&data[2]["embedding"]),
        "the same text, the same vector"
    );
    assert_ne!(first, floats(&data[1]["embedding"]));

    // base64: the same vector as little-endian float32.
    let (_, b64) = ask(
        json!({"model": "text-embedding-3-small", "input": "one two",
        "encoding_format": "base64"}),
    )
    .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded.len(), first.len());
    // (JSON carries the shortest decimal of each float; read back through f64 it may differ in
    // the last bit.)
    assert!(
        decoded
            .iter()
            .zip(&first)
            .all(|(a, b)| (a - b).abs() < 1e-6)
    );

    // `dimensions` shortens (and renormalises) on text-embedding-3; ada-002 refuses it.
    let (_, short) = ask(json!({"model": "text-embedding-3-large", "input": "x",
        "dimensions": 256}))
    .await;
    let v = floats(&short["data"][0]["embedding"]);
    assert_eq!(v.len(), 256);
    assert!((norm(&v) - 1.0).abs() < 1e-3);
    let (status, err) = ask(json!({"model": "text-embedding-ada-002", "input": "x",
        "dimensions": 256}))
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "dimensions");

    // Token arrays count their tokens; empty input and unknown fields are refused.
    let (status, tokens) = ask(json!({"model": "text-embedding-3-small",
        "input": [[1, 2, 3], [4]]}))
    .await;
    assert_eq!(status, 200);
    assert_eq!(tokens["usage"]["prompt_tokens"], 4);
    for bad in [
        json!({"model": "text-embedding-3-small", "input": ""}),
        json!({"model": "text-embedding-3-small", "input": []}),
        json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}),
        json!({"model": "text-embedding-3-small", "input": "x", "task": "query"}),
    ] {
        let (status, err) = ask(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert_eq!(err["error"]["type"], "invalid_request_error");
    }
}

#[tokio::test]
async fn mistral_embeds_with_its_own_fields() {
    let sim = start(Protocol::Mistral).await;
    let r = post(
        &sim,
        "/embeddings",
        &json!({"model": "mistral-embed", "input": ["a b"]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(floats(&body["data"][0]["embedding"]).len(), 1024);
    assert!(body["id"].is_string());
    assert_eq!(body["usage"]["completion_tokens"], 0);
    // OpenAI's `dimensions` is not a Mistral field; mistral-embed has one size.
    let r = post(
        &sim,
        "/embeddings",
        &json!({"model": "mistral-embed", "input": "a",
        "dimensions": 8}),
    )
    .await;
    assert_eq!(r.status(), 422);
    let r = post(
        &sim,
        "/embeddings",
        &json!({"model": "mistral-embed", "input": "a",
        "output_dimension": 8}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        &sim,
        "/embeddings",
        &json!({"model": "codestral-embed", "input": "a",
        "output_dimension": 256}),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(floats(&body["data"][0]["embedding"]).len(), 256);
}

#[tokio::test]
async fn gemini_embeds_one_or_a_batch_of_at_most_100() {
    let sim = start(Protocol::Gemini).await;
    let content = |t: &str| json!({"parts": [{"text": t}]});
    let r = post(
        &sim,
        "/models/gemini-embedding-001:embedContent",
        &json!({"content": content("hello")}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let one: Value = r.json().await.unwrap();
    let full = floats(&one["embedding"]["values"]);
    assert_eq!(full.len(), 3072);

    let request = |t: &str| {
        json!({"model": "models/gemini-embedding-001", "content": content(t),
        "outputDimensionality": 768})
    };
    let r = post(
        &sim,
        "/models/gemini-embedding-001:batchEmbedContents",
        &json!({"requests": [request("hello"), request("world")]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let batch: Value = r.json().await.unwrap();
    let first = floats(&batch["embeddings"][0]["values"]);
    assert_eq!(first.len(), 768);
    assert_eq!(
        first,
        full[..768],
        "a shortened vector is the full one, cut"
    );
    assert_ne!(first, floats(&batch["embeddings"][1]["values"]));

    let many: Vec<Value> = (0..101).map(|i| request(&i.to_string())).collect();
    let r = post(
        &sim,
        "/models/gemini-embedding-001:batchEmbedContents",
        &json!({"requests": many}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100")
    );
}

#[tokio::test]
async fn deepseek_has_no_embeddings() {
    let sim = start(Protocol::DeepSeek).await;
    let r = post(
        &sim,
        "/embeddings",
        &json!({"model": "deepseek-chat", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 404);
}

/// Every field of a recorded OpenAI embeddings body is in ours, with the same JSON types.
#[tokio::test]
async fn openai_body_has_the_recorded_fields() {
    let recorded: Value = serde_json::from_str(include_str!(
        "../../../fixtures/openai/vercel-ai__openai-embedding.json"
    ))
    .unwrap();
    let sim = start(Protocol::OpenAi).await;
    let request = json!({"model": "text-embedding-3-small", "input": ["sunny day", "rain"]});
    let ours: Value = post(&sim, "/embeddings", &request)
        .await
        .json()
        .await
        .unwrap();
    fn same_fields(recorded: &Value, ours: &Value, at: &str) {
        match (recorded, ours) {
            (Value::Object(want), Value::Object(have)) => {
                for (key, value) in want {
                    let here = format!("{at}.{key}");
                    let Some(mine) = have.get(key) else {
                        panic!("{here} is missing");
                    };
                    same_fields(value, mine, &here);
                }
            }
            (Value::Array(want), Value::Array(have)) => {
                assert!(have.len() >= want.len().min(2), "{at} is too short");
                for (value, mine) in want.iter().zip(have) {
                    same_fields(value, mine, &format!("{at}[]"));
                }
            }
            (want, have) => assert_eq!(
                std::mem::discriminant(want),
                std::mem::discriminant(have),
                "{at}: {want} vs {have}"
            ),
        }
    }
    same_fields(&recorded, &ours, "");
}
