//! OTLP export: the tracer provider built from the standard `OTEL_*` variables, and the bounded
//! processor between the request path and the exporter. A span that ends is handed to a queue
//! without waiting; a full queue or a failed export drops spans and counts them, so a slow or dead
//! collector costs the traffic nothing but the counter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    SdkTracer, SdkTracerProvider, Span, SpanData, SpanExporter as _, SpanProcessor,
};
use tokio::sync::{Notify, mpsc, oneshot};

/// What became of the spans handed to the exporter, for `/metrics`.
#[derive(Debug, Default)]
pub struct ExportStats {
    pub exported: AtomicU64,
    /// The queue was full (the collector is slower than the traffic, or gone).
    pub dropped_queue_full: AtomicU64,
    /// The collector refused the batch or could not be reached in time.
    pub dropped_export_failed: AtomicU64,
}

impl ExportStats {
    /// Appends the Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP tokenrouter_otel_spans_exported_total Spans the OTLP collector accepted\n# TYPE tokenrouter_otel_spans_exported_total counter\ntokenrouter_otel_spans_exported_total {}",
            self.exported.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tokenrouter_otel_spans_dropped_total Spans dropped: queue full (collector slow or gone) or export failed\n# TYPE tokenrouter_otel_spans_dropped_total counter\ntokenrouter_otel_spans_dropped_total{{reason=\"queue_full\"}} {}\ntokenrouter_otel_spans_dropped_total{{reason=\"export_failed\"}} {}",
            self.dropped_queue_full.load(Ordering::Relaxed),
            self.dropped_export_failed.load(Ordering::Relaxed)
        );
    }
}

/// Where and how spans go: read from the environment by [`OtlpSettings::from_env`], or set
/// explicitly (tests).
#[derive(Debug, Clone)]
pub struct OtlpSettings {
    /// `None`: the exporter's own reading of `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`.
    pub endpoint: Option<String>,
    /// `None`: `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL`, else `http/protobuf`.
    pub protocol: Option<Protocol>,
    /// `OTEL_SERVICE_NAME` when set, else this.
    pub default_service: String,
    /// Spans waiting for export at most (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue: usize,
    /// Spans in one export at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub max_batch: usize,
    /// How long a span may wait for its batch (`OTEL_BSP_SCHEDULE_DELAY`, ms, default 1000).
    pub delay: Duration,
    /// How long one export may take (`OTEL_BSP_EXPORT_TIMEOUT`, ms, default 10000).
    pub export_timeout: Duration,
}

impl OtlpSettings {
    /// The settings the standard variables ask for, or `None` when export is off: no
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` nor `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
    /// `OTEL_TRACES_EXPORTER=none`, or `OTEL_SDK_DISABLED=true`.
    pub fn from_env(default_service: &str) -> Option<OtlpSettings> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint_set = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if !endpoint_set || disabled {
            return None;
        }
        let number = |name: &str, default: u64| {
            var(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n > 0)
                .unwrap_or(default)
        };
        Some(OtlpSettings {
            endpoint: None,
            protocol: None,
            default_service: default_service.to_string(),
            max_queue: number("OTEL_BSP_MAX_QUEUE_SIZE", 2048) as usize,
            max_batch: number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) as usize,
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 1000)),
            export_timeout: Duration::from_millis(number("OTEL_BSP_EXPORT_TIMEOUT", 10_000)),
        })
    }

    /// Settings for a collector at `endpoint` (for `http/protobuf`, the whole URL of the traces
    /// path), batching quickly.
    pub fn to(endpoint: &str, protocol: Protocol, default_service: &str) -> OtlpSettings {
        OtlpSettings {
            endpoint: Some(endpoint.to_string()),
            protocol: Some(protocol),
            default_service: default_service.to_string(),
            max_queue: 2048,
            max_batch: 512,
            delay: Duration::from_millis(100),
            export_timeout: Duration::from_secs(5),
        }
    }
}

/// Why export could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("OpenTelemetry export: {0}")]
pub struct ExportError(String);

/// A running export: the provider the planes take tracers from, and its counters.
#[derive(Debug, Clone)]
pub struct Pipeline {
    provider: SdkTracerProvider,
    pub stats: Arc<ExportStats>,
    flush: mpsc::Sender<Message>,
    full: Arc<BatchFull>,
}

impl Pipeline {
    /// Builds the exporter and starts the export task (call inside the Tokio runtime).
    pub fn start(settings: &OtlpSettings) -> Result<Pipeline, ExportError> {
        let mut exporter = build_exporter(settings)?;
        let resource = resource(&settings.default_service);
        exporter.set_resource(&resource);
        Ok(Pipeline::with_exporter(exporter, settings, resource))
    }

    /// The queue, the export task and the provider around `exporter`.
    fn with_exporter<E: opentelemetry_sdk::trace::SpanExporter + 'static>(
        exporter: E,
        settings: &OtlpSettings,
        resource: Resource,
    ) -> Pipeline {
        let stats = Arc::new(ExportStats::default());
        let (tx, rx) = mpsc::channel(settings.max_queue.max(1));
        let full = Arc::new(BatchFull {
            at: settings.max_batch.max(1),
            ..BatchFull::default()
        });
        tokio::spawn(export_loop(
            exporter,
            rx,
            stats.clone(),
            full.clone(),
            settings.delay,
            settings.export_timeout,
        ));
        let pipeline_full = full.clone();
        let processor = BoundedProcessor {
            queue: tx.clone(),
            stats: stats.clone(),
            full,
        };
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource)
            .build();
        Pipeline {
            provider,
            stats,
            flush: tx,
            full: pipeline_full,
        }
    }

    /// A tracer for one plane (its instrumentation scope).
    pub fn tracer(&self, scope: &'static str) -> SdkTracer {
        self.provider.tracer(scope)
    }

    /// Exports what is queued, waiting at most `timeout` (at shutdown).
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        if self.flush.send(Message::Flush(done)).await.is_ok() {
            // The task may be waiting for its batch to fill: it need not.
            self.full.flushing.store(true, Ordering::Release);
            self.full.notify.notify_one();
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }
}

fn build_exporter(settings: &OtlpSettings) -> Result<SpanExporter, ExportError> {
    let built = match (&settings.endpoint, settings.protocol) {
        (Some(url), Some(Protocol::Grpc)) => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(url.clone())
            .with_timeout(settings.export_timeout)
            .build(),
        (Some(url), Some(protocol)) => SpanExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(url.clone())
            .with_timeout(settings.export_timeout)
            .build(),
        // The exporter reads OTEL_EXPORTER_OTLP_* itself (endpoint, protocol, headers, timeout).
        _ => SpanExporter::builder().build(),
    };
    built.map_err(|e| ExportError(e.to_string()))
}

/// `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` as the SDK reads them, with our default name
/// when neither names the service.
fn resource(default_service: &str) -> Resource {
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder
            .with_service_name(default_service.to_string())
            .build()
    }
}

enum Message {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// Tells the export task a batch is full, once per batch: spans are queued without waking it,
/// so a busy gateway pays one wake-up per batch, not one per span.
#[derive(Debug, Default)]
struct BatchFull {
    /// Spans queued since the export task last took the queue.
    queued: AtomicUsize,
    /// Spans in one batch.
    at: usize,
    /// A flush waits in the queue: take everything now.
    flushing: AtomicBool,
    notify: Notify,
}

/// Hands ended spans to the export task without waiting.
#[derive(Debug)]
struct BoundedProcessor {
    queue: mpsc::Sender<Message>,
    stats: Arc<ExportStats>,
    full: Arc<BatchFull>,
}

impl SpanProcessor for BoundedProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // Counted before it is queued, so the count never falls below what the queue holds.
        let before = self.full.queued.fetch_add(1, Ordering::AcqRel);
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            self.full.queued.fetch_sub(1, Ordering::AcqRel);
            self.stats
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        if before + 1 == self.full.at {
            self.full.notify.notify_one();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Collects spans into batches (full, or `delay` after the first) and exports one at a time. The
/// task waits for the first span, then for the batch to fill or the delay to pass, and only then
/// takes what is queued.
async fn export_loop<E: opentelemetry_sdk::trace::SpanExporter>(
    exporter: E,
    mut queue: mpsc::Receiver<Message>,
    stats: Arc<ExportStats>,
    full: Arc<BatchFull>,
    delay: Duration,
    timeout: Duration,
) {
    let max_batch = full.at;
    let mut batch: Vec<SpanData> = Vec::with_capacity(max_batch);
    while let Some(first) = queue.recv().await {
        let mut flushed = Vec::new();
        take(first, &mut batch, &mut flushed);
        if flushed.is_empty() {
            let deadline = tokio::time::Instant::now() + delay;
            // A wake-up is only a hint (one may be left from a batch already taken): the count,
            // a flush or the deadline decide.
            while full.queued.load(Ordering::Acquire) < max_batch
                && !full.flushing.swap(false, Ordering::AcqRel)
            {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    () = full.notify.notified() => {}
                }
            }
        }
        // Everything queued by now (a flush takes it all; otherwise up to a batch at a time).
        while let Ok(m) = queue.try_recv() {
            take(m, &mut batch, &mut flushed);
            if batch.len() >= max_batch && flushed.is_empty() {
                break;
            }
        }
        full.queued.fetch_sub(batch.len(), Ordering::AcqRel);
        while !batch.is_empty() {
            let rest = batch.split_off(batch.len().min(max_batch));
            let n = batch.len() as u64;
            let spans = std::mem::replace(&mut batch, rest);
            match tokio::time::timeout(timeout, exporter.export(spans)).await {
                Ok(Ok(())) => stats.exported.fetch_add(n, Ordering::Relaxed),
                _ => stats.dropped_export_failed.fetch_add(n, Ordering::Relaxed),
            };
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

fn take(m: Message, batch: &mut Vec<SpanData>, flushed: &mut Vec<oneshot::Sender<()>>) {
    match m {
        Message::Span(s) => batch.push(*s),
        Message::Flush(done) => flushed.push(done),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::{Span as _, Tracer as _};

    use super::*;

    /// Records the size of every batch it is given.
    #[derive(Debug, Clone, Default)]
    struct Batches(Arc<Mutex<Vec<usize>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Batches {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().push(batch.len());
            Ok(())
        }
    }

    /// A full batch goes out at once, without waiting for the delay; a flush takes the rest.
    #[tokio::test]
    async fn full_batches_leave_at_once_and_a_flush_takes_the_rest() {
        let batches = Batches::default();
        let mut settings = OtlpSettings::to("http://unused", Protocol::Grpc, "test");
        settings.max_batch = 4;
        settings.delay = Duration::from_secs(600);
        let pipeline =
            Pipeline::with_exporter(batches.clone(), &settings, Resource::builder().build());
        let tracer = pipeline.tracer("test");
        for _ in 0..9 {
            tracer.start("s").end();
        }
        for _ in 0..100 {
            if batches.0.lock().unwrap().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            *batches.0.lock().unwrap(),
            [4, 4],
            "two full batches, the ninth waits"
        );
        pipeline.flush(Duration::from_secs(5)).await;
        assert_eq!(*batches.0.lock().unwrap(), [4, 4, 1]);
        assert_eq!(pipeline.stats.exported.load(Ordering::Relaxed), 9);
    }
}
