//! The processes a chaos run starts, stops and restarts: two control planes on one PostgreSQL
//! (reached through a TCP proxy the run can cut), a Redis server of the run's own, and two data
//! planes following both control planes. Each is started again with the same ports and data.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::procs::{Proc, Spawn, free_port};
use crate::stack::{Bins, wait_http};

/// How to start one member again, and the running process if it is up.
pub struct Member {
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// `/readyz` (data planes) or a TCP port (the rest) that says it is up.
    ready: Ready,
    pub proc: Option<Proc>,
}

enum Ready {
    Http(u16),
    Tcp(u16),
}

impl Member {
    /// Starts it and waits until it is up.
    pub async fn start(&mut self, dir: &Path) -> anyhow::Result<()> {
        let mut proc = Proc::spawn(Spawn {
            name: &self.name,
            program: &self.program,
            args: self.args.clone(),
            env: self.env.clone(),
            cpu: None,
            log_dir: dir,
            capture_stdout: false,
        })?;
        match self.ready {
            Ready::Http(port) => wait_http(&mut proc, port, "/readyz", Duration::from_secs(60))
                .await
                .with_context(|| format!("{} never turned ready", self.name))?,
            Ready::Tcp(port) => wait_tcp(&mut proc, port).await?,
        }
        self.proc = Some(proc);
        Ok(())
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        self.proc = None;
    }

    /// SIGTERM, waiting for the drain: a rolling restart. True when it exited by itself in time.
    pub async fn stop(&mut self, timeout: Duration) -> anyhow::Result<bool> {
        match self.proc.take() {
            Some(mut p) => p.terminate(timeout).await,
            None => Ok(true),
        }
    }

    /// Resident memory now, if it is up.
    pub fn rss(&self) -> Option<u64> {
        self.proc.as_ref().and_then(|p| p.rss_bytes().ok())
    }
}

async fn wait_tcp(proc: &mut Proc, port: u16) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        proc.check_alive()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "{} never listened on {port}",
            proc.name
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Everyone in the run.
pub struct Cast {
    pub control_planes: [Member; 2],
    pub grpc_ports: [u16; 2],
    pub redis: Member,
    pub data_planes: [Member; 2],
    pub http_ports: [u16; 2],
    pub admin_ports: [u16; 2],
}

impl Cast {
    /// Lays out every member (nothing started): control planes on `store_url`, data planes on
    /// both of them and on the run's Redis.
    pub fn new(bins: &Bins, dir: &Path, store_url: &str, master_key: &str) -> anyhow::Result<Cast> {
        let grpc_ports = [free_port()?, free_port()?];
        let http_ports = [free_port()?, free_port()?];
        let admin_ports = [free_port()?, free_port()?];
        let redis_port = free_port()?;
        let log = (
            "RUST_LOG",
            "info,tokenrouter_control_plane=info".to_string(),
        );
        let control_planes = [0, 1].map(|i| Member {
            name: format!("cp{}", i + 1),
            program: bins.tokenrouter.clone(),
            args: vec![
                "control-plane".into(),
                "--store".into(),
                store_url.into(),
                "--grpc-addr".into(),
                format!("127.0.0.1:{}", grpc_ports[i]),
                "--data-dir".into(),
                dir.join(format!("cp{}-data", i + 1)).display().to_string(),
                // Two copies on one machine; the run does not look at the dashboard.
                "--no-dashboard".into(),
            ],
            env: vec![("TOKENROUTER_MASTER_KEY", master_key.into()), log.clone()],
            ready: Ready::Tcp(grpc_ports[i]),
            proc: None,
        });
        let redis = Member {
            name: "redis".into(),
            program: PathBuf::from("redis-server"),
            args: [
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]
            .map(String::from)
            .to_vec(),
            env: vec![],
            ready: Ready::Tcp(redis_port),
            proc: None,
        };
        let control = format!(
            "http://127.0.0.1:{},http://127.0.0.1:{}",
            grpc_ports[0], grpc_ports[1]
        );
        let data_planes = [0, 1].map(|i| {
            let name = format!("dp{}", i + 1);
            Member {
                args: vec![
                    "data-plane".into(),
                    "--control-plane".into(),
                    control.clone(),
                    "--http-addr".into(),
                    format!("127.0.0.1:{}", http_ports[i]),
                    "--admin-addr".into(),
                    format!("127.0.0.1:{}", admin_ports[i]),
                    "--redis-url".into(),
                    format!("redis://127.0.0.1:{redis_port}/0"),
                    "--node-id".into(),
                    name.clone(),
                    "--snapshot-file".into(),
                    dir.join(format!("{name}.snapshot")).display().to_string(),
                    "--usage-spool-dir".into(),
                    dir.join(format!("{name}-spool")).display().to_string(),
                    "--drain-timeout".into(),
                    "20s".into(),
                ],
                name,
                program: bins.tokenrouter.clone(),
                env: vec![log.clone()],
                ready: Ready::Http(http_ports[i]),
                proc: None,
            }
        });
        Ok(Cast {
            control_planes,
            grpc_ports,
            redis,
            data_planes,
            http_ports,
            admin_ports,
        })
    }
}
