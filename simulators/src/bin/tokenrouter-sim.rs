//! `tokenrouter-sim`: runs one provider simulator until killed, for benchmarks and manual tests.
//!
//! Prints the base URL a gateway should use on the first line of stdout. Requests are not
//! recorded and nothing is logged per request above `debug`, so it stays fast under load.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use tokenrouter_simulators::{Protocol, SimConfig, Simulator};

/// Command-line options.
#[derive(Parser, Debug)]
#[command(
    name = "tokenrouter-sim",
    about = "Run a TokenRouter provider simulator"
)]
struct Args {
    /// Wire protocol: openai, mistral, deepseek, anthropic or gemini.
    #[arg(long, default_value = "openai")]
    protocol: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Required API key; empty accepts any.
    #[arg(long, default_value = "", env = "TOKENROUTER_SIM_KEY")]
    key: String,
    /// Name shown in answers; defaults to the protocol name.
    #[arg(long)]
    name: Option<String>,
    /// Latency added before the response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Pause between streamed chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    chunk_interval_ms: u64,
    /// Accept unknown request fields instead of rejecting them like the real provider.
    #[arg(long)]
    lenient: bool,
}

#[tokio::main]
async fn main() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    if let Err(message) = run(Args::parse()).await {
        eprintln!("tokenrouter-sim: {message}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let protocol = Protocol::from_name(&args.protocol)
        .ok_or_else(|| format!("unknown protocol {:?}", args.protocol))?;
    let name = args.name.unwrap_or_else(|| protocol.name().to_string());
    let mut config = SimConfig::new(protocol, &name, &args.key);
    config.fixed_latency = Duration::from_millis(args.latency_ms);
    config.chunk_interval = Duration::from_millis(args.chunk_interval_ms);
    config.record_requests = false;
    config.strict_fields = !args.lenient;
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|err| format!("cannot bind {}:{}: {err}", args.host, args.port))?;
    let simulator = Simulator::start_on(listener, config)
        .await
        .map_err(|err| format!("cannot start: {err}"))?;
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{}", simulator.base_url()).map_err(|err| err.to_string())?;
    stdout.flush().map_err(|err| err.to_string())?;
    tracing::info!(protocol = protocol.name(), url = %simulator.base_url(), "simulator running");
    wait_for_stop().await;
    simulator.shutdown();
    Ok(())
}

#[cfg(unix)]
async fn wait_for_stop() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_stop() {
    let _ = tokio::signal::ctrl_c().await;
}
