//! The Redis server the `limits` scenario's second gateway counts in, observed with `redis-cli`
//! and `/proc`, and a key prefix of the run's own.

use std::time::Duration;

use anyhow::{Context, bail};

use crate::procs::cpu_time_of;

/// A Redis prefix no other run uses.
pub(super) fn unique_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench:{:x}-{nanos:x}:", std::process::id())
}

/// The Redis server the second gateway uses, observed with `redis-cli` and `/proc`.
pub(super) struct RedisServer {
    pub(super) url: String,
    /// Its PID when this machine's `/proc` shows it (a local `redis-server`).
    pub(super) pid: Option<u32>,
}

/// Redis's CPU time and script calls at one moment.
#[derive(Clone, Copy)]
pub(super) struct RedisSample {
    pub(super) cpu: Option<Duration>,
    pub(super) scripts: Option<u64>,
}

impl RedisServer {
    /// Checks that `url` answers PING, and finds the server's PID.
    pub(super) fn probe(url: &str) -> anyhow::Result<RedisServer> {
        let mut redis = RedisServer {
            url: url.to_string(),
            pid: None,
        };
        let pong = redis.cli(&["ping"])?;
        if pong.trim() != "PONG" {
            bail!("redis-cli ping answered {:?}", pong.trim());
        }
        redis.pid = redis
            .cli(&["info", "server"])
            .ok()
            .and_then(|info| field(&info, "process_id")?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.contains("redis"))
            });
        Ok(redis)
    }

    pub(super) fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = std::process::Command::new("redis-cli")
            .arg("-u")
            .arg(&self.url)
            .args(args)
            .output()
            .context("running redis-cli")?;
        if !out.status.success() {
            bail!(
                "redis-cli {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub(super) fn sample(&self) -> RedisSample {
        let scripts = self.cli(&["info", "commandstats"]).ok().map(|info| {
            ["cmdstat_evalsha", "cmdstat_eval"]
                .iter()
                .filter_map(|name| field(&info, name))
                .filter_map(|v| {
                    v.split(',')
                        .find_map(|kv| kv.strip_prefix("calls="))?
                        .parse::<u64>()
                        .ok()
                })
                .sum()
        });
        RedisSample {
            cpu: self.pid.and_then(|pid| cpu_time_of(pid).ok()),
            scripts,
        }
    }

    /// Deletes the run's keys (they would expire by themselves within a day).
    pub(super) fn forget(&self, prefix: &str) {
        let pattern = format!("{prefix}*");
        let Ok(keys) = self.cli(&["--scan", "--pattern", &pattern]) else {
            return;
        };
        let keys: Vec<&str> = keys.lines().filter(|k| k.starts_with(prefix)).collect();
        for chunk in keys.chunks(500) {
            let mut args = vec!["del"];
            args.extend_from_slice(chunk);
            let _ = self.cli(&args);
        }
    }
}

/// The value of `name:value` in `INFO` output.
pub(super) fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_info_fields() {
        let info = "# Server\r\nprocess_id:2238\r\ncmdstat_evalsha:calls=915,usec=14322\r\ncmdstat_eval:calls=3,usec=1\r\n";
        assert_eq!(field(info, "process_id"), Some("2238"));
        assert_eq!(field(info, "cmdstat_eval"), Some("calls=3,usec=1"));
        assert_eq!(field(info, "cmdstat_evalsha"), Some("calls=915,usec=14322"));
        assert_eq!(field(info, "missing"), None);
    }
}
