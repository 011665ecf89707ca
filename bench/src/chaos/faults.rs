//! The chaos run's faults: one at a time, at random gaps, each lasting a few seconds, drawn from a
//! seeded generator so a run can be repeated. Kills are SIGKILL (a crash); the data plane is also
//! restarted with SIGTERM (a rolling deploy, which drains).

use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokenrouter_tests::tcp_cut::TcpCut;

use super::cast::Cast;

/// When and how long.
pub struct Schedule {
    pub seed: u64,
    pub duration: Duration,
    /// Seconds between one fault's end and the next one's start.
    pub gap: (u64, u64),
}

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    KillControlPlane(usize),
    CutPostgres,
    KillRedis,
    /// SIGKILL of the first data plane: what was in flight on it fails.
    CrashDataPlane,
    /// SIGTERM of the first data plane and a start once it exited: nothing should fail.
    RestartDataPlane,
}

/// One fault as it happened, in seconds since the load started.
#[derive(Debug, Clone)]
pub struct Event {
    pub fault: Fault,
    pub start: f64,
    pub end: f64,
    pub note: String,
}

impl Event {
    pub fn describe(&self) -> String {
        let what = match self.fault {
            Fault::KillControlPlane(i) => format!("SIGKILL control plane cp{}", i + 1),
            Fault::CutPostgres => "cut the PostgreSQL link".into(),
            Fault::KillRedis => "SIGKILL Redis".into(),
            Fault::CrashDataPlane => "SIGKILL data plane dp1".into(),
            Fault::RestartDataPlane => "SIGTERM (drain) and restart data plane dp1".into(),
        };
        format!(
            "{:7.1}s-{:7.1}s {what}{}",
            self.start,
            self.end,
            if self.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.note)
            }
        )
    }
}

/// How long after a crash a failure still counts as "in flight on the killed data plane": the
/// requests on its connections fail as the kernel resets them.
const CRASH_WINDOW: f64 = 2.0;

/// Whether a failure at `at` on data plane `dp` happened to a request in flight on (or sent on
/// a pooled connection to) a data plane being killed.
pub fn in_flight_on_a_killed_data_plane(events: &[Event], dp: usize, at: f64) -> bool {
    dp == 0
        && events.iter().any(|e| match e.fault {
            Fault::CrashDataPlane => at >= e.start && at <= e.start + CRASH_WINDOW,
            _ => false,
        })
}

/// Plays faults until `schedule.duration` has passed since `started`; every member is up again
/// when it returns.
pub async fn play(
    schedule: &Schedule,
    cast: &mut Cast,
    link: &TcpCut,
    dir: &Path,
    started: Instant,
) -> anyhow::Result<Vec<Event>> {
    let mut rng = StdRng::seed_from_u64(schedule.seed);
    let mut events = Vec::new();
    loop {
        let gap = Duration::from_secs(rng.random_range(schedule.gap.0..=schedule.gap.1));
        let lasting = Duration::from_millis(rng.random_range(3_000..=10_000));
        if started.elapsed() + gap + lasting > schedule.duration {
            break;
        }
        tokio::time::sleep(gap).await;
        let fault = match rng.random_range(0..6) {
            0 => Fault::KillControlPlane(0),
            1 => Fault::KillControlPlane(1),
            2 => Fault::CutPostgres,
            3 => Fault::KillRedis,
            4 => Fault::CrashDataPlane,
            _ => Fault::RestartDataPlane,
        };
        let start = started.elapsed().as_secs_f64();
        eprintln!("chaos: {start:.1}s {fault:?} for {lasting:?}");
        let note = apply(fault, lasting, cast, link, dir).await?;
        events.push(Event {
            fault,
            start,
            end: started.elapsed().as_secs_f64(),
            note,
        });
    }
    if let Some(left) = schedule.duration.checked_sub(started.elapsed()) {
        tokio::time::sleep(left).await;
    }
    Ok(events)
}

/// Does one fault and undoes it; returns a note for the report.
async fn apply(
    fault: Fault,
    lasting: Duration,
    cast: &mut Cast,
    link: &TcpCut,
    dir: &Path,
) -> anyhow::Result<String> {
    match fault {
        Fault::KillControlPlane(i) => {
            cast.control_planes[i].kill();
            tokio::time::sleep(lasting).await;
            cast.control_planes[i].start(dir).await?;
        }
        Fault::CutPostgres => {
            link.cut();
            tokio::time::sleep(lasting).await;
            link.restore();
        }
        Fault::KillRedis => {
            cast.redis.kill();
            tokio::time::sleep(lasting).await;
            cast.redis.start(dir).await?;
        }
        Fault::CrashDataPlane => {
            cast.data_planes[0].kill();
            tokio::time::sleep(lasting).await;
            cast.data_planes[0].start(dir).await?;
        }
        Fault::RestartDataPlane => {
            let drained = Instant::now();
            let clean = cast.data_planes[0].stop(Duration::from_secs(30)).await?;
            let took = drained.elapsed();
            cast.data_planes[0].start(dir).await?;
            return Ok(format!(
                "drained in {:.1} s{}",
                took.as_secs_f64(),
                if clean { "" } else { ", then killed" }
            ));
        }
    }
    Ok(String::new())
}
