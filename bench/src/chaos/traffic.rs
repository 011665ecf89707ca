//! The chaos run's traffic: workers sending a paced mix of plain and streamed chat requests to two
//! data planes in turn, the way a load balancer would (a refused connection is sent to the other
//! data plane), and keeping every failure with its time and data plane.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

/// Every fourth request streams.
const STREAM_EVERY: u64 = 4;

/// One failed request.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Seconds since the run started.
    pub at: f64,
    /// Which data plane it was sent to (0 or 1).
    pub data_plane: usize,
    pub error: String,
}

/// What the workers counted.
#[derive(Default)]
pub struct Tally {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    /// Sent to the other data plane because the first refused the connection.
    pub rerouted: AtomicU64,
    pub failures: Mutex<Vec<Failure>>,
}

/// Where the workers send requests.
pub struct Targets {
    /// `http://127.0.0.1:PORT/v1/chat/completions` of each data plane.
    pub urls: [String; 2],
    pub key: String,
    pub model: String,
}

/// Runs `workers` workers, together about `rate` requests a second, until `stop` turns true.
pub async fn run(
    targets: Arc<Targets>,
    workers: usize,
    rate: u32,
    started: Instant,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(20))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos: cannot build the HTTP client: {e}");
            return;
        }
    };
    let per_worker = Duration::from_secs_f64(workers as f64 / f64::from(rate.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (client, targets, stop, tally) =
            (client.clone(), targets.clone(), stop.clone(), tally.clone());
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(per_worker);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = w as u64;
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n += 1;
                let first = (n % 2) as usize;
                let stream = n.is_multiple_of(STREAM_EVERY);
                tally.sent.fetch_add(1, Ordering::Relaxed);
                let outcome = match one(&client, &targets, first, stream).await {
                    Err(Attempt::Refused) => {
                        tally.rerouted.fetch_add(1, Ordering::Relaxed);
                        one(&client, &targets, 1 - first, stream)
                            .await
                            .map_err(|e| (1 - first, e))
                    }
                    other => other.map_err(|e| (first, e)),
                };
                match outcome {
                    Ok(()) => {
                        tally.answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err((data_plane, e)) => tally.failures.lock().await.push(Failure {
                        at: started.elapsed().as_secs_f64(),
                        data_plane,
                        error: e.to_string(),
                    }),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Why one attempt failed.
#[derive(Debug)]
enum Attempt {
    /// Nothing was listening: a load balancer sends it elsewhere.
    Refused,
    Failed(String),
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Attempt::Refused => f.write_str("connection refused"),
            Attempt::Failed(e) => f.write_str(e),
        }
    }
}

/// One request to data plane `dp`; a stream counts only if it ends with `[DONE]`.
async fn one(
    client: &reqwest::Client,
    targets: &Targets,
    dp: usize,
    stream: bool,
) -> Result<(), Attempt> {
    let body = json!({
        "model": targets.model,
        "stream": stream,
        "messages": [{"role": "user", "content": "chaos"}],
    });
    let response = client
        .post(&targets.urls[dp])
        .bearer_auth(&targets.key)
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            if e.is_connect() {
                Attempt::Refused
            } else {
                Attempt::Failed(format!("send: {e}"))
            }
        })?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Attempt::Failed(format!("body: {e}")))?;
    if !status.is_success() {
        return Err(Attempt::Failed(format!(
            "{status}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    if stream && !text.trim_end().ends_with("data: [DONE]") {
        return Err(Attempt::Failed("stream ended without [DONE]".into()));
    }
    Ok(())
}
