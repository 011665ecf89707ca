//! Starting what a run measures: the release build, provider simulators, `tokenrouter serve` with
//! its production stack (key auth, routing, usage metrics, snapshot watch), the bare pass-through,
//! and a gRPC Admin client to configure TokenRouter the way an operator would.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokenrouter_proto::v1::admin_client::AdminClient;
use tokenrouter_proto::v1::{
    ApiKeyCreate, Credential, CredentialWrite, Limits, ListRequest, Provider, ProviderWrite,
};
use tonic::transport::Channel;

use crate::procs::{GATEWAY_CPU, LOAD_CPU, Proc, Spawn, free_port};

/// The client key TokenRouter accepts in a run.
pub const CLIENT_KEY: &str = "sk-bench-client-0123456789abcdef";
/// The upstream credential TokenRouter sends (the simulators accept any).
pub const UPSTREAM_KEY: &str = "sk-bench-upstream";

/// The binaries a run starts, from the same release build as this one.
pub struct Bins {
    pub tokenrouter: PathBuf,
    pub sim: PathBuf,
    pub bench: PathBuf,
}

impl Bins {
    /// Builds `tokenrouter` and `tokenrouter-sim` in release mode (unless `skip`) next to this binary.
    pub fn build(skip: bool) -> anyhow::Result<Bins> {
        let bench = std::env::current_exe()?;
        let dir = bench
            .parent()
            .context("binary has no directory")?
            .to_path_buf();
        if !skip {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            // The same package set as bench/run.sh, so cargo reuses one feature resolution.
            eprintln!("building tokenrouter and tokenrouter-sim (release)...");
            let status = Command::new(cargo)
                .args([
                    "build",
                    "--release",
                    "-p",
                    "tokenrouter",
                    "-p",
                    "tokenrouter-simulators",
                    "-p",
                    "tokenrouter-bench",
                ])
                .status()
                .context("running cargo build")?;
            if !status.success() {
                bail!("cargo build --release failed");
            }
        }
        let bins = Bins {
            tokenrouter: dir.join("tokenrouter"),
            sim: dir.join("tokenrouter-sim"),
            bench,
        };
        for b in [&bins.tokenrouter, &bins.sim] {
            if !b.exists() {
                bail!(
                    "{} is missing; build it with cargo build --release",
                    b.display()
                );
            }
        }
        Ok(bins)
    }
}

/// A simulator process.
pub struct Sim {
    pub proc: Proc,
    pub port: u16,
    pub base_url: String,
}

/// Starts `tokenrouter-sim` on the load CPU with no per-request latency.
pub fn start_sim(
    bins: &Bins,
    dir: &Path,
    name: &str,
    protocol: &str,
    interval_ms: u64,
) -> anyhow::Result<Sim> {
    let mut proc = Proc::spawn(Spawn {
        name,
        program: &bins.sim,
        args: vec![
            "--protocol".into(),
            protocol.into(),
            "--port".into(),
            "0".into(),
            "--name".into(),
            name.into(),
            "--chunk-interval-ms".into(),
            interval_ms.to_string(),
            "--lenient".into(),
        ],
        env: vec![("RUST_LOG", "warn".into())],
        cpu: Some(LOAD_CPU),
        log_dir: dir,
        capture_stdout: true,
    })?;
    let base_url = proc.first_line()?;
    let port = base_url
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("simulator printed {base_url:?}, not a 127.0.0.1 URL"))?;
    Ok(Sim {
        proc,
        port,
        base_url,
    })
}

/// `tokenrouter serve` pinned to the gateway CPU.
pub struct Gateway {
    pub proc: Proc,
    pub http_port: u16,
    pub grpc_port: u16,
    /// The admin listener (`/metrics`, `/status`).
    pub admin_port: u16,
}

/// Starts `tokenrouter serve` with `OPENAI_API_KEY`/`OPENAI_BASE_URL` pointing at `upstream`, so the
/// env bootstrap creates provider `openai` serving the catalog models (`gpt-4o-mini`, ...).
pub async fn start_tokenrouter(bins: &Bins, dir: &Path, upstream: &Sim) -> anyhow::Result<Gateway> {
    start_tokenrouter_with(bins, dir, upstream, "tokenrouter-serve", &[]).await
}

/// Like [`start_tokenrouter`], as process `name` (its log `<name>.log`, its data in
/// `<name>-data`, its own ports), with `extra` arguments after `serve` (e.g. `--redis-url ...`).
pub async fn start_tokenrouter_with(
    bins: &Bins,
    dir: &Path,
    upstream: &Sim,
    name: &str,
    extra: &[String],
) -> anyhow::Result<Gateway> {
    start_tokenrouter_env(bins, dir, upstream, name, extra, &[]).await
}

/// Like [`start_tokenrouter_with`], with `env` added to the process's environment.
pub async fn start_tokenrouter_env(
    bins: &Bins,
    dir: &Path,
    upstream: &Sim,
    name: &str,
    extra: &[String],
    env: &[(&'static str, String)],
) -> anyhow::Result<Gateway> {
    let (http_port, grpc_port, admin_port) = (free_port()?, free_port()?, free_port()?);
    // The first gateway keeps the data directory name earlier runs used.
    let data = if name == "tokenrouter-serve" {
        dir.join("serve-data")
    } else {
        dir.join(format!("{name}-data"))
    };
    std::fs::create_dir_all(&data)?;
    let mut args = vec![
        "serve".into(),
        "--data-dir".into(),
        data.display().to_string(),
        "--http-addr".into(),
        format!("127.0.0.1:{http_port}"),
        "--grpc-addr".into(),
        format!("127.0.0.1:{grpc_port}"),
        "--admin-addr".into(),
        format!("127.0.0.1:{admin_port}"),
        // Several gateways run at once; the dashboard is not what a run measures.
        "--no-dashboard".into(),
    ];
    args.extend(extra.iter().cloned());
    let mut vars = vec![
        ("OPENAI_API_KEY", UPSTREAM_KEY.into()),
        ("OPENAI_BASE_URL", upstream.base_url.clone()),
        ("TOKENROUTER_API_KEY", CLIENT_KEY.into()),
        ("RUST_LOG", "info".into()),
    ];
    vars.extend(env.iter().cloned());
    let proc = Proc::spawn(Spawn {
        name,
        program: &bins.tokenrouter,
        args,
        env: vars,
        cpu: Some(GATEWAY_CPU),
        log_dir: dir,
        capture_stdout: false,
    })?;
    let mut gw = Gateway {
        proc,
        http_port,
        grpc_port,
        admin_port,
    };
    wait_http(&mut gw.proc, http_port, "/readyz", Duration::from_secs(60)).await?;
    Ok(gw)
}

/// Starts the bare pass-through (this binary's `passthrough` subcommand) on the gateway CPU.
pub async fn start_passthrough(
    bins: &Bins,
    dir: &Path,
    upstream: &Sim,
) -> anyhow::Result<(Proc, u16)> {
    let port = free_port()?;
    let mut proc = Proc::spawn(Spawn {
        name: "passthrough",
        program: &bins.bench,
        args: vec![
            "passthrough".into(),
            "--port".into(),
            port.to_string(),
            "--upstream".into(),
            upstream.base_url.clone(),
        ],
        env: Vec::new(),
        cpu: Some(GATEWAY_CPU),
        log_dir: dir,
        capture_stdout: false,
    })?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        proc.check_alive()?;
        if Instant::now() > deadline {
            bail!("the pass-through did not start listening");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((proc, port))
}

/// Polls `GET 127.0.0.1:port/path` until it answers 200.
pub async fn wait_http(
    proc: &mut Proc,
    port: u16,
    path: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}{path}");
    let deadline = Instant::now() + timeout;
    loop {
        proc.check_alive()?;
        if let Ok(r) = http.get(&url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} did not answer 200 on {path} within {timeout:?}",
                proc.name
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The sum of every series whose line starts with `prefix` on the `/metrics` of the admin
/// listener on `127.0.0.1:port`.
pub async fn metric_sum(port: u16, prefix: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// A gRPC Admin client for the control plane on `127.0.0.1:port`.
pub async fn admin(port: u16) -> anyhow::Result<AdminClient<Channel>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match AdminClient::connect(format!("http://127.0.0.1:{port}")).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                return Err(e).context("connecting to the Admin API");
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Creates (or replaces) a provider with a credential; returns the committed version.
pub async fn add_provider(
    admin: &mut AdminClient<Channel>,
    name: &str,
    kind: &str,
    base_url: &str,
    models: &[&str],
) -> Result<u64, tonic::Status> {
    let provider = Provider {
        name: name.into(),
        kind: kind.into(),
        base_url: base_url.into(),
        models: models.iter().map(|m| m.to_string()).collect(),
        ..Default::default()
    };
    let write = ProviderWrite {
        provider: Some(provider),
        expected_version: 0,
    };
    if let Err(e) = admin.create_provider(write.clone()).await {
        if e.code() != tonic::Code::AlreadyExists {
            return Err(e);
        }
        admin.update_provider(write).await?;
    }
    let credential = CredentialWrite {
        credential: Some(Credential {
            name: format!("{name}-key"),
            provider: name.into(),
            secret: UPSTREAM_KEY.into(),
        }),
        expected_version: 0,
    };
    Ok(admin
        .create_credential(credential)
        .await?
        .into_inner()
        .version)
}

/// The provider called `name` as the control plane has it.
pub async fn get_provider(
    admin: &mut AdminClient<Channel>,
    name: &str,
) -> anyhow::Result<Provider> {
    let list = admin.list_providers(ListRequest {}).await?.into_inner();
    list.providers
        .into_iter()
        .find(|p| p.name == name)
        .with_context(|| format!("provider {name} does not exist"))
}

/// Rewrites `provider` with a different timeout (a real config change: a new snapshot version);
/// returns the committed version.
pub async fn touch_provider(
    admin: &mut AdminClient<Channel>,
    provider: &Provider,
    n: u64,
) -> anyhow::Result<u64> {
    let mut p = provider.clone();
    p.timeout_ms = 600_000 + (n % 1000) as u32;
    let version = admin
        .update_provider(ProviderWrite {
            provider: Some(p),
            expected_version: 0,
        })
        .await?
        .into_inner()
        .version;
    Ok(version)
}

/// Creates API key `name` accepting `key` with `limits` (spend control); returns the committed
/// version.
pub async fn create_limited_key(
    admin: &mut AdminClient<Channel>,
    name: &str,
    key: &str,
    limits: Limits,
) -> anyhow::Result<u64> {
    let created = admin
        .create_api_key(ApiKeyCreate {
            name: name.into(),
            key: key.into(),
            limits: Some(limits),
            ..Default::default()
        })
        .await
        .with_context(|| format!("creating API key {name} over gRPC"))?
        .into_inner();
    Ok(created.version)
}
