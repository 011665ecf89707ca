//! Child processes of a benchmark run: started pinned to one CPU with `taskset`, stopped by their own
//! PID when dropped, and observed through `/proc` (CPU time, resident memory).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The CPU the load generator, the simulators and the direct baseline run on.
pub const LOAD_CPU: usize = 0;
/// The CPU the gateway under test (TokenRouter or the pass-through) runs on alone.
pub const GATEWAY_CPU: usize = 1;

/// A running child process, killed (by PID) and reaped when dropped.
pub struct Proc {
    /// Short name used in logs and errors.
    pub name: String,
    child: Child,
}

/// How to start one child.
pub struct Spawn<'a> {
    pub name: &'a str,
    pub program: &'a Path,
    pub args: Vec<String>,
    pub env: Vec<(&'a str, String)>,
    /// Pin to this CPU with `taskset -c`.
    pub cpu: Option<usize>,
    /// Directory for `<name>.log` (stderr, and stdout unless `capture_stdout`).
    pub log_dir: &'a Path,
    /// Keep stdout as a pipe so the caller can read the first line (a simulator's base URL).
    pub capture_stdout: bool,
}

impl Proc {
    /// Starts the child; its stderr goes to `<log_dir>/<name>.log`.
    pub fn spawn(spec: Spawn<'_>) -> anyhow::Result<Proc> {
        let log_path = spec.log_dir.join(format!("{}.log", spec.name));
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = match spec.cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(spec.program);
                c
            }
            None => Command::new(spec.program),
        };
        cmd.args(&spec.args)
            .stdin(Stdio::null())
            .stderr(log.try_clone()?);
        if spec.capture_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(log);
        }
        for (k, v) in spec.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", spec.program.display()))?;
        Ok(Proc {
            name: spec.name.to_string(),
            child,
        })
    }

    /// The child's PID (`taskset` execs the program, so it is the program's own PID).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads the first line the child prints on stdout (needs `capture_stdout`).
    pub fn first_line(&mut self) -> anyhow::Result<String> {
        let out = self
            .child
            .stdout
            .take()
            .context("stdout was not captured")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        if line.trim().is_empty() {
            bail!("{} exited without printing its address", self.name);
        }
        Ok(line.trim().to_string())
    }

    /// Fails if the child has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited early ({status}); see its log", self.name);
        }
        Ok(())
    }

    /// Sends SIGTERM and waits up to `timeout` for the child to exit (then kills it); true when it
    /// exited by itself.
    pub async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Ok(false)
    }

    /// User + system CPU time the process has used so far (all its threads).
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time_of(self.pid())
    }

    /// Resident set size in bytes (`VmRSS`).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS")?;
        let kib: u64 = line
            .split_whitespace()
            .nth(1)
            .context("malformed VmRSS")?
            .parse()?;
        Ok(kib * 1024)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// User + system CPU time process `pid` (any process this user can see, e.g. a Redis server not
/// started by the run) has used so far, all its threads.
pub fn cpu_time_of(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the `(comm)`: state is field 3, utime 14 and stime 15.
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_secs_f64(total as f64 / clock_ticks() as f64))
}

/// Kernel clock ticks per second (for `/proc/<pid>/stat` times).
fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// CPU time a process used over a measured window.
pub struct CpuWindow<'a> {
    proc: &'a Proc,
    cpu: Duration,
    wall: Instant,
}

impl<'a> CpuWindow<'a> {
    /// Starts the window now.
    pub fn start(proc: &'a Proc) -> anyhow::Result<Self> {
        Ok(CpuWindow {
            proc,
            cpu: proc.cpu_time()?,
            wall: Instant::now(),
        })
    }

    /// CPU seconds used and wall seconds elapsed since `start`.
    pub fn finish(self) -> anyhow::Result<(f64, f64)> {
        let cpu = self.proc.cpu_time()?.saturating_sub(self.cpu);
        Ok((cpu.as_secs_f64(), self.wall.elapsed().as_secs_f64()))
    }
}

/// Pins every thread of this process to `cpu` (threads started later inherit it).
pub fn pin_self(cpu: usize) -> anyhow::Result<()> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux) to pin the load generator")?;
    if !status.success() {
        bail!("taskset could not pin the load generator to CPU {cpu}");
    }
    Ok(())
}

/// A free TCP port on 127.0.0.1 (bound then released; the OS does not hand it out again at once).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A fresh directory under `base` for one run's logs, data and results.
pub fn run_dir(base: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let dir = base.unwrap_or_else(|| {
        std::env::temp_dir()
            .join("tokenrouter-bench")
            .join(stamp.to_string())
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
