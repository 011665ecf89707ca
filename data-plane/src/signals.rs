//! Live signals per (provider, model, credential): EWMAs of latency, time to first token, output
//! speed and errors, rate-limit headroom, a circuit breaker, and 429 cool-downs. They outlive
//! snapshots (they describe the providers, not the config) and feed `auto:*` routing and hedging.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Consecutive failures that open a breaker.
pub const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses traffic before one trial request may pass (half-open).
pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(30);
/// Weight of the newest sample in every moving average.
const ALPHA: f64 = 0.2;
/// How many recent TTFT samples are kept for percentiles.
const TTFT_WINDOW: usize = 64;

/// A breaker's state as shown in `/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// Its name, as `/status` and the control plane's reports spell it.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Whether a request may go to a candidate now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// The breaker is half-open and this request is its trial.
    Trial,
    /// Open breaker or cooling credential: skip it.
    Refused,
}

/// The measured behaviour of one candidate.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    pub tokens_per_sec: Option<f64>,
    pub error_rate: f64,
    pub samples: u64,
    /// Fraction of the upstream request limit still available (from `x-ratelimit-*` headers).
    pub headroom: Option<f64>,
    #[serde(skip)]
    pub last_update: Option<Instant>,
    #[serde(skip)]
    ttfts: Vec<f64>,
    #[serde(skip)]
    failures: u32,
    #[serde(skip)]
    open_until: Option<Instant>,
    #[serde(skip)]
    trial_in_flight: bool,
    #[serde(skip)]
    cool_until: Option<Instant>,
}

fn ewma(old: Option<f64>, sample: f64) -> Option<f64> {
    Some(old.map_or(sample, |o| o + ALPHA * (sample - o)))
}

impl Stats {
    fn breaker(&self, now: Instant) -> BreakerState {
        match self.open_until {
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
            None => BreakerState::Closed,
        }
    }

    /// The p-th percentile (0–100) of recent TTFTs.
    pub fn ttft_percentile(&self, p: f64) -> Option<f64> {
        if self.ttfts.is_empty() {
            return None;
        }
        let mut sorted = self.ttfts.clone();
        sorted.sort_by(f64::total_cmp);
        let at = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted.get(at).copied()
    }
}

/// One finished attempt as measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    pub latency: Duration,
    pub ttft: Option<Duration>,
    pub output_tokens: u64,
}

/// All candidates' signals.
#[derive(Debug, Default)]
pub struct Signals {
    stats: Mutex<HashMap<String, Stats>>,
}

/// Signals read under one lock; keys are built in one reused buffer.
pub struct SignalsView<'a> {
    map: std::sync::MutexGuard<'a, HashMap<String, Stats>>,
    key: String,
    now: Instant,
}

impl SignalsView<'_> {
    fn lookup(&mut self, provider: &str, model: &str, credential: &str) -> Option<&Stats> {
        self.key.clear();
        push_key(&mut self.key, provider, model, credential);
        self.map.get(self.key.as_str())
    }

    /// Whether the candidate could be tried now (breaker not open, not cooling), without taking
    /// a trial.
    pub fn available(&mut self, provider: &str, model: &str, credential: &str) -> bool {
        let now = self.now;
        self.lookup(provider, model, credential).is_none_or(|s| {
            s.cool_until.is_none_or(|u| now >= u) && s.breaker(now) != BreakerState::Open
        })
    }

    /// The candidate's stats, if it has any.
    pub fn stats(&mut self, provider: &str, model: &str, credential: &str) -> Option<&Stats> {
        self.lookup(provider, model, credential)
    }
}

/// The key of a candidate.
pub fn key(provider: &str, model: &str, credential: &str) -> String {
    let mut key = String::with_capacity(provider.len() + model.len() + credential.len() + 2);
    push_key(&mut key, provider, model, credential);
    key
}

/// Appends the key of a candidate to `out`.
fn push_key(out: &mut String, provider: &str, model: &str, credential: &str) {
    for (i, part) in [provider, model, credential].into_iter().enumerate() {
        if i > 0 {
            out.push('\u{1f}');
        }
        out.push_str(part);
    }
}

impl Signals {
    fn with<T>(&self, key: &str, f: impl FnOnce(&mut Stats) -> T) -> Option<T> {
        let mut map = self.stats.lock().ok()?;
        // Looked up first: the owned key is only built for a candidate seen for the first time.
        if let Some(stats) = map.get_mut(key) {
            return Some(f(stats));
        }
        Some(f(map.entry(key.to_string()).or_default()))
    }

    /// A copy of a candidate's stats.
    pub fn get(&self, key: &str) -> Stats {
        self.stats
            .lock()
            .ok()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    }

    /// A read view of every candidate's signals under one lock, for scoring many at once.
    pub fn view(&self) -> Option<SignalsView<'_>> {
        Some(SignalsView {
            map: self.stats.lock().ok()?,
            key: String::new(),
            now: Instant::now(),
        })
    }

    /// Asks the breaker and the cool-down whether `key` may be tried now.
    pub fn admit(&self, key: &str) -> Admission {
        let now = Instant::now();
        self.with(key, |s| {
            if s.cool_until.is_some_and(|u| now < u) {
                return Admission::Refused;
            }
            match s.breaker(now) {
                BreakerState::Closed => Admission::Allowed,
                BreakerState::Open => Admission::Refused,
                BreakerState::HalfOpen if s.trial_in_flight => Admission::Refused,
                BreakerState::HalfOpen => {
                    s.trial_in_flight = true;
                    Admission::Trial
                }
            }
        })
        .unwrap_or(Admission::Allowed)
    }

    /// How long `key` still cools down after a 429, if it does.
    pub fn cooling_for(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let map = self.stats.lock().ok()?;
        map.get(key)?
            .cool_until
            .filter(|u| now < *u)
            .map(|u| u - now)
    }

    /// Records a success: closes the breaker and updates the averages.
    pub fn success(&self, key: &str, outcome: Outcome) {
        let now = Instant::now();
        self.with(key, |s| {
            s.failures = 0;
            s.open_until = None;
            s.trial_in_flight = false;
            s.samples += 1;
            s.last_update = Some(now);
            s.error_rate *= 1.0 - ALPHA;
            s.latency_ms = ewma(s.latency_ms, outcome.latency.as_secs_f64() * 1000.0);
            if let Some(t) = outcome.ttft {
                let ms = t.as_secs_f64() * 1000.0;
                s.ttft_ms = ewma(s.ttft_ms, ms);
                if s.ttfts.len() == TTFT_WINDOW {
                    s.ttfts.remove(0);
                }
                s.ttfts.push(ms);
            }
            let generating = outcome
                .latency
                .saturating_sub(outcome.ttft.unwrap_or_default())
                .as_secs_f64();
            if outcome.output_tokens > 0 && generating > 0.0 {
                s.tokens_per_sec =
                    ewma(s.tokens_per_sec, outcome.output_tokens as f64 / generating);
            }
        });
    }

    /// Records a failure that counts against the breaker (not 429s: see [`Signals::cool_down`]).
    pub fn failure(&self, key: &str) {
        let now = Instant::now();
        self.with(key, |s| {
            s.failures += 1;
            s.samples += 1;
            s.last_update = Some(now);
            s.error_rate = s.error_rate * (1.0 - ALPHA) + ALPHA;
            let was_trial = std::mem::take(&mut s.trial_in_flight);
            if was_trial || s.failures >= BREAKER_THRESHOLD {
                s.open_until = Some(now + BREAKER_OPEN_FOR);
            }
        });
    }

    /// Records a failure in the averages only (for aggregate keys, which have no breaker).
    pub fn error(&self, key: &str) {
        let now = Instant::now();
        self.with(key, |s| {
            s.samples += 1;
            s.last_update = Some(now);
            s.error_rate = s.error_rate * (1.0 - ALPHA) + ALPHA;
        });
    }

    /// A 429: the credential rests for `for_` instead of counting as a breakdown.
    pub fn cool_down(&self, key: &str, for_: Duration) {
        let until = Instant::now() + for_;
        self.with(key, |s| {
            s.trial_in_flight = false;
            s.cool_until = Some(s.cool_until.map_or(until, |u| u.max(until)));
        });
    }

    /// Rate-limit headroom read from upstream headers.
    pub fn headroom(&self, key: &str, fraction: f64) {
        self.with(key, |s| s.headroom = Some(fraction.clamp(0.0, 1.0)));
    }

    /// Every candidate (not the per-provider entries) with its breaker, whether it is cooling
    /// down, and a copy of its signals, by key, read under one lock.
    fn measured(&self) -> Vec<(String, BreakerState, bool, Stats)> {
        let now = Instant::now();
        let Ok(map) = self.stats.lock() else {
            return Vec::new();
        };
        let mut out: Vec<_> = map
            .iter()
            .filter(|(k, _)| !k.ends_with("\u{1f}*"))
            .map(|(k, s)| {
                let cooling = s.cool_until.is_some_and(|u| now < u);
                (k.clone(), s.breaker(now), cooling, s.clone())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Every candidate's breaker state, for `/status`.
    pub fn breakers(&self) -> Vec<(String, BreakerState, Stats)> {
        self.measured()
            .into_iter()
            .map(|(k, breaker, _, s)| (k.replace('\u{1f}', "/"), breaker, s))
            .collect()
    }

    /// Every candidate's signals as the control plane is told them (provider, model and
    /// credential apart), sorted.
    pub fn report(&self) -> Vec<tokenrouter_proto::v1::CandidateSignals> {
        self.measured()
            .into_iter()
            .map(|(k, breaker, cooling, s)| {
                let mut parts = k.splitn(3, '\u{1f}').map(str::to_string);
                tokenrouter_proto::v1::CandidateSignals {
                    provider: parts.next().unwrap_or_default(),
                    model: parts.next().unwrap_or_default(),
                    credential: parts.next().unwrap_or_default(),
                    breaker: breaker.name().into(),
                    latency_ms: s.latency_ms,
                    ttft_ms: s.ttft_ms,
                    ttft_p95_ms: s.ttft_percentile(95.0),
                    tokens_per_sec: s.tokens_per_sec,
                    error_rate: s.error_rate,
                    headroom: s.headroom,
                    samples: s.samples,
                    cooling,
                }
            })
            .collect()
    }
}

/// Remaining/limit from `x-ratelimit-remaining-requests` and `x-ratelimit-limit-requests`.
pub fn headroom_from(headers: &http::HeaderMap) -> Option<f64> {
    let num = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<f64>().ok();
    let remaining = num("x-ratelimit-remaining-requests")
        .or_else(|| num("anthropic-ratelimit-requests-remaining"))?;
    let limit =
        num("x-ratelimit-limit-requests").or_else(|| num("anthropic-ratelimit-requests-limit"))?;
    (limit > 0.0).then(|| remaining / limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_half_opens_and_closes() {
        let s = Signals::default();
        let k = key("p", "m", "c");
        for _ in 0..BREAKER_THRESHOLD - 1 {
            s.failure(&k);
            assert_eq!(s.admit(&k), Admission::Allowed);
        }
        s.failure(&k);
        assert_eq!(
            s.admit(&k),
            Admission::Refused,
            "open after {BREAKER_THRESHOLD} failures"
        );
        tokio::time::advance(BREAKER_OPEN_FOR + Duration::from_millis(1)).await;
        assert_eq!(
            s.admit(&k),
            Admission::Trial,
            "half-open lets one trial through"
        );
        assert_eq!(s.admit(&k), Admission::Refused, "only one trial at a time");
        s.failure(&k);
        assert_eq!(
            s.admit(&k),
            Admission::Refused,
            "a failed trial opens it again"
        );
        tokio::time::advance(BREAKER_OPEN_FOR + Duration::from_millis(1)).await;
        assert_eq!(s.admit(&k), Admission::Trial);
        s.success(
            &k,
            Outcome {
                latency: Duration::from_millis(100),
                ..Default::default()
            },
        );
        assert_eq!(
            s.admit(&k),
            Admission::Allowed,
            "a successful trial closes it"
        );
        assert_eq!(s.breakers()[0].1, BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_cools_down_without_opening_the_breaker() {
        let s = Signals::default();
        let k = key("p", "m", "c");
        s.cool_down(&k, Duration::from_secs(2));
        assert_eq!(s.admit(&k), Admission::Refused);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(s.admit(&k), Admission::Allowed);
        assert_eq!(s.breakers()[0].1, BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_keeps_provider_model_and_credential_apart() {
        let s = Signals::default();
        let k = key("openai", "org/model:v1", "main");
        for _ in 0..BREAKER_THRESHOLD {
            s.failure(&k);
        }
        s.headroom(&k, 0.4);
        s.cool_down(&key("anthropic", "claude", "spare"), Duration::from_secs(5));
        let report = s.report();
        assert_eq!(report.len(), 2);
        let (a, o) = (&report[0], &report[1]);
        assert_eq!(
            (a.provider.as_str(), a.credential.as_str(), a.cooling),
            ("anthropic", "spare", true)
        );
        assert_eq!(
            (o.model.as_str(), o.breaker.as_str()),
            ("org/model:v1", "open")
        );
        assert_eq!(
            (o.headroom, o.samples),
            (Some(0.4), u64::from(BREAKER_THRESHOLD))
        );
        assert!(o.error_rate > 0.5 && o.latency_ms.is_none());
    }

    #[test]
    fn averages_follow_samples() {
        let s = Signals::default();
        let k = key("p", "m", "c");
        for ms in [100, 200] {
            s.success(
                &k,
                Outcome {
                    latency: Duration::from_millis(ms),
                    ttft: Some(Duration::from_millis(ms / 2)),
                    output_tokens: 10,
                },
            );
        }
        let st = s.get(&k);
        assert!((st.latency_ms.unwrap() - 120.0).abs() < 1e-6);
        assert_eq!(st.ttft_percentile(100.0), Some(100.0));
        assert!(st.tokens_per_sec.unwrap() > 0.0);
    }
}
