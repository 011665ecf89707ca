//! OTLP traces received in-process: the span tree of one request with a fallback and a hedge
//! (over gRPC), the client's `traceparent` continued and passed to the provider, the control
//! plane's own spans, HTTP/protobuf export, a dead collector costing nothing but a counter, and
//! message content on spans only for an operator who opts in, after the firewall.

use std::time::Duration;

use serde_json::Value;
use serde_json::json;
use tokenrouter_data_plane::{OtlpPipeline, OtlpProtocol, OtlpSettings, Tracing};
use tokenrouter_proto::v1::*;
use tokenrouter_simulators::Fault;
use tokenrouter_tests::otlp::{OtlpReceiver, Received};
use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{KEY, add_mask_rule, add_simulated_provider, stack, user_message};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

fn named<'a>(spans: &'a [Received], name: &str) -> Vec<&'a Received> {
    spans.iter().filter(|s| s.span.name == name).collect()
}

/// A data plane exporting through `tracing`, serving the control plane's `version`.
async fn traced(
    name: &str,
    tracing: Tracing,
    stack: &crate::setup::Stack,
    version: u64,
) -> DataPlaneHandle {
    let mut config = data_plane_config(name);
    config.tracing = Some(tracing);
    let dp = DataPlaneHandle::start(config, &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    dp
}

/// SpanKind in OTLP: 2 server, 3 client.
const SERVER: i32 = 2;
const CLIENT: i32 = 3;

#[tokio::test]
async fn a_request_with_a_fallback_and_a_hedge_is_one_span_tree() {
    let collector = OtlpReceiver::start().await;
    let pipeline = OtlpPipeline::start(&OtlpSettings::to(
        &format!("http://{}", collector.grpc),
        OtlpProtocol::Grpc,
        "tokenrouter-test",
    ))
    .unwrap();
    let stack = stack(Backend::Sqlite).await.unwrap();
    stack
        .cp
        .cp
        .traces
        .set(pipeline.tracer("tokenrouter-control-plane"));
    // `t` goes to `bad` (answers 500), falls back to `slow` (silent for 5 s), which is hedged
    // with `quick` after 100 ms.
    let (bad, _) = add_simulated_provider(&stack.cp, "bad", &["m"]).await;
    let (slow, _) = add_simulated_provider(&stack.cp, "slow", &["x"]).await;
    let (quick, _) = add_simulated_provider(&stack.cp, "quick", &["y"]).await;
    let mut admin = stack.cp.admin().await;
    let target = |provider: &str, model: &str| FallbackTarget {
        provider: provider.into(),
        model: model.into(),
    };
    admin
        .create_fallback_policy(FallbackPolicyWrite {
            policy: Some(FallbackPolicy {
                name: "fb-hedge".into(),
                chain: vec![target("slow", "x"), target("quick", "y")],
                hedge_after_ms: 100,
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    let version = admin
        .create_routing_rule(RoutingRuleWrite {
            rule: Some(RoutingRule {
                name: "t".into(),
                match_model: "t".into(),
                target_provider: "bad".into(),
                target_model: "m".into(),
                fallback_policy: "fb-hedge".into(),
                ..Default::default()
            }),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    let dp = traced("traced", Tracing::from_pipeline(&pipeline), &stack, version).await;
    bad.set_fault(Some(Fault::Status {
        status: 500,
        retry_after_secs: None,
    }));
    slow.push_fault(Fault::DelayFirstByte(Duration::from_secs(5)));

    let response = reqwest::Client::new()
        .post(dp.url("/v1/chat/completions"))
        .bearer_auth(KEY)
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({"model": "t", "stream": true, "temperature": 0.5,
            "stream_options": {"include_usage": true},
            "messages": user_message("say something")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-tokenrouter-provider"], "quick");
    let text = response.text().await.unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    let spans = collector
        .wait_for("the request's spans", |s| {
            named(s, "POST /v1/chat/completions").len() == 1
                && s.iter().filter(|x| x.span.kind == CLIENT).count() == 3
        })
        .await;
    let server = named(&spans, "POST /v1/chat/completions")[0];
    assert_eq!(server.span.kind, SERVER);
    assert_eq!(server.service, "tokenrouter-test");
    // The client's trace continues: same trace id, its span is our parent.
    assert_eq!(server.trace_id(), CLIENT_TRACE);
    assert_eq!(server.parent_id(), CLIENT_SPAN);
    assert_eq!(server.str("http.request.method"), Some("POST"));
    assert_eq!(server.int("http.response.status_code"), Some(200));
    assert_eq!(server.str("gen_ai.request.model"), Some("t"));
    assert_eq!(server.str("tokenrouter.provider"), Some("quick"));
    assert_eq!(server.str("tokenrouter.candidate"), Some("quick/y"));
    assert_eq!(server.int("tokenrouter.attempts"), Some(3));
    assert!(server.int("gen_ai.usage.output_tokens").unwrap() > 0);
    assert!(server.str("tokenrouter.routing.mode").is_some());

    let attempts: Vec<&Received> = spans.iter().filter(|s| s.span.kind == CLIENT).collect();
    for a in &attempts {
        assert_eq!(a.trace_id(), CLIENT_TRACE);
        assert_eq!(a.parent_id(), server.span_id(), "{}", a.span.name);
        assert_eq!(a.str("gen_ai.operation.name"), Some("chat"));
        assert_eq!(a.str("gen_ai.provider.name"), Some("openai"));
        assert!(a.attr("gen_ai.request.temperature").is_some());
    }
    let attempt = |name: &str| {
        *named(&spans, name)
            .first()
            .unwrap_or_else(|| panic!("{name}"))
    };
    let failed = attempt("chat m");
    assert_eq!(failed.str("tokenrouter.attempt.outcome"), Some("failed"));
    assert_eq!(failed.str("error.type"), Some("500"));
    assert_eq!(failed.int("tokenrouter.attempt"), Some(1));
    let cancelled = attempt("chat x");
    assert_eq!(
        cancelled.str("tokenrouter.attempt.outcome"),
        Some("cancelled")
    );
    assert_eq!(cancelled.bool("tokenrouter.hedge"), Some(false));
    assert!(cancelled.span.events.iter().any(|e| e.name == "cancelled"));
    let won = attempt("chat y");
    assert_eq!(won.str("tokenrouter.attempt.outcome"), Some("answered"));
    assert_eq!(won.bool("tokenrouter.hedge"), Some(true));
    assert_eq!(won.int("tokenrouter.attempt"), Some(3));
    assert!(won.str("gen_ai.response.id").is_some());
    assert_eq!(won.str("gen_ai.response.model"), Some("y"));
    assert!(won.int("gen_ai.usage.input_tokens").is_some());
    assert_eq!(won.str("server.address"), Some("127.0.0.1"));

    // Each provider saw the trace with its own attempt's span as the parent.
    for (sim, span) in [(&bad, failed), (&quick, won)] {
        let seen = sim
            .requests()
            .last()
            .unwrap()
            .header("traceparent")
            .map(str::to_string);
        assert_eq!(
            seen,
            Some(format!("00-{CLIENT_TRACE}-{}-01", span.span_id())),
            "{}",
            span.span.name
        );
    }

    // The control plane's own spans: the Admin calls that built this configuration.
    let cp_spans = collector
        .wait_for("the control plane's spans", |s| {
            !named(s, "tokenrouter.v1.Admin/CreateRoutingRule").is_empty()
                && !named(s, "config commit").is_empty()
        })
        .await;
    let call = named(&cp_spans, "tokenrouter.v1.Admin/CreateRoutingRule")[0];
    assert_eq!(call.span.kind, SERVER);
    assert_eq!(call.str("rpc.system"), Some("grpc"));
    assert_eq!(call.str("rpc.method"), Some("CreateRoutingRule"));
    assert_eq!(call.int("rpc.grpc.status_code"), Some(0));
    assert!(
        named(&cp_spans, "config commit")
            .iter()
            .any(|c| c.parent_id() == call.span_id()
                && c.int("tokenrouter.snapshot.version") == Some(version as i64)),
        "the commit is a child of its Admin call"
    );
    assert!(
        named(&cp_spans, "snapshot push")
            .iter()
            .any(|p| p.int("tokenrouter.snapshot.version") == Some(version as i64)),
        "the snapshot was pushed to the data plane"
    );
    let metrics = dp.metrics().await;
    assert!(
        metrics.contains("tokenrouter_hedges_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn http_protobuf_export_and_a_dead_collector() {
    let collector = OtlpReceiver::start().await;
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (_sim, version) = add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    let http = reqwest::Client::new();
    let ask = |dp: &DataPlaneHandle| {
        http.post(dp.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&json!({"model": "gpt-4o-mini", "messages": user_message("hello")}))
            .send()
    };

    let pipeline = OtlpPipeline::start(&OtlpSettings::to(
        &format!("http://{}/v1/traces", collector.http),
        OtlpProtocol::HttpBinary,
        "tokenrouter-http",
    ))
    .unwrap();
    let dp = traced(
        "traced-http",
        Tracing::from_pipeline(&pipeline),
        &stack,
        version,
    )
    .await;
    let r = ask(&dp).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    let spans = collector
        .wait_for("spans over HTTP", |s| {
            s.iter().any(|x| x.span.name == "chat gpt-4o-mini")
                && s.iter().any(|x| x.span.name == "POST /v1/chat/completions")
        })
        .await;
    let attempt = named(&spans, "chat gpt-4o-mini")[0];
    assert_eq!(attempt.service, "tokenrouter-http");
    assert_eq!(attempt.str("gen_ai.response.id"), body["id"].as_str());
    assert_eq!(attempt.str("gen_ai.response.model"), body["model"].as_str());
    // No content, ever: the prompt's words are on no span.
    for s in &spans {
        for kv in &s.span.attributes {
            assert!(!format!("{:?}", kv.value).contains("hello"), "{kv:?}");
        }
    }

    // A collector that is not there: requests are served as ever, the spans are counted lost.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut settings = OtlpSettings::to(
        &format!("http://{dead}"),
        OtlpProtocol::Grpc,
        "tokenrouter-dead",
    );
    settings.export_timeout = Duration::from_millis(500);
    let dead_pipeline = OtlpPipeline::start(&settings).unwrap();
    let nowhere = Tracing::from_pipeline(&dead_pipeline);
    let dp = traced("traced-dead", nowhere, &stack, version).await;
    for _ in 0..5 {
        assert_eq!(ask(&dp).await.unwrap().status(), 200);
    }
    let mut lost = 0.0;
    for _ in 0..100 {
        let text = dp.metrics().await;
        lost = text
            .lines()
            .find(|l| {
                l.starts_with("tokenrouter_otel_spans_dropped_total{reason=\"export_failed\"}")
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if lost >= 10.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lost >= 10.0, "two spans a request, all lost: {lost}");
}

/// With `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (here the field it sets), attempt
/// spans carry `gen_ai.input.messages` and `gen_ai.output.messages` as the firewall left them: the
/// email the input rule masked never reaches a span, nor the card the output rule masked in the
/// simulator's echo, plain or streamed.
#[tokio::test]
async fn captured_content_is_what_the_firewall_let_through() {
    const CARD: &str = "4111 1111 1111 1111";
    let collector = OtlpReceiver::start().await;
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (_sim, _) = add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    let mut version = 0;
    for (name, detector, direction) in [
        ("emails", "email", "input"),
        ("cards-out", "credit_card", "output"),
    ] {
        version = add_mask_rule(&stack.cp, name, detector, direction).await;
    }
    let pipeline = OtlpPipeline::start(&OtlpSettings::to(
        &format!("http://{}", collector.grpc),
        OtlpProtocol::Grpc,
        "tokenrouter-content",
    ))
    .unwrap();
    let mut tracing = Tracing::from_pipeline(&pipeline);
    tracing.capture_content = true;
    let dp = traced("traced-content", tracing, &stack, version).await;
    let http = reqwest::Client::new();
    let prompt = format!("mail jane@example.com card {CARD} ok");
    for stream in [false, true] {
        let r = http
            .post(dp.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(
                &json!({"model": "gpt-4o-mini", "stream": stream, "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": prompt}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let _ = r.text().await.unwrap();
    }
    let spans = collector
        .wait_for("two attempts with content", |s| {
            s.iter()
                .filter(|x| x.str("gen_ai.output.messages").is_some())
                .count()
                == 2
        })
        .await;
    for attempt in named(&spans, "chat gpt-4o-mini") {
        let input: Value =
            serde_json::from_str(attempt.str("gen_ai.input.messages").unwrap()).unwrap();
        assert_eq!(
            input[0],
            json!({"role": "system", "parts": [{"type": "text", "content": "be brief"}]})
        );
        assert_eq!(input[1]["role"], "user");
        let sent = input[1]["parts"][0]["content"].as_str().unwrap();
        assert!(
            sent.contains("[EMAIL_1]") && !sent.contains("jane@"),
            "{sent}"
        );
        let output: Value =
            serde_json::from_str(attempt.str("gen_ai.output.messages").unwrap()).unwrap();
        assert_eq!(output[0]["role"], "assistant");
        assert_eq!(output[0]["finish_reason"], "stop");
        let answered = output[0]["parts"][0]["content"].as_str().unwrap();
        assert!(
            answered.contains("[EMAIL_1]"),
            "the echo, masked: {answered}"
        );
        assert!(
            !answered.contains("4111") && !answered.contains("jane@"),
            "{answered}"
        );
    }
    // The request's own span carries no content.
    for server in named(&spans, "POST /v1/chat/completions") {
        for kv in &server.span.attributes {
            assert!(!format!("{:?}", kv.value).contains("EMAIL"), "{kv:?}");
        }
    }
}
