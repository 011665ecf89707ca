//! The `tokenrouter` binary: run the planes, or manage a running control plane over gRPC.

mod admin;
mod bootstrap;
mod dashboard_args;
#[cfg(test)]
mod demo_tests;
mod listener_args;
mod planes;

use clap::{Parser, Subcommand};

/// TokenRouter: a self-hosted LLM gateway speaking the OpenAI API.
#[derive(Parser, Debug)]
#[command(name = "tokenrouter", version, about)]
struct Cli {
    #[command(flatten)]
    connection: admin::Connection,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run both planes in one process with the embedded SQLite store.
    Serve(planes::ServeArgs),
    /// Run the control plane alone (gRPC admin and discovery).
    ControlPlane(planes::ControlPlaneArgs),
    /// Run one data plane fed by a control plane.
    DataPlane(planes::DataPlaneArgs),
    #[command(flatten)]
    Admin(admin::AdminCommand),
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`), as JSON lines when
/// `TOKENROUTER_LOG_FORMAT=json`. The access log (target `tokenrouter::access`, one line per
/// request) is off unless `TOKENROUTER_ACCESS_LOG` is `1`/`true`/`on` or `RUST_LOG` names it.
fn init_logging() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    let access_on = std::env::var("TOKENROUTER_ACCESS_LOG")
        .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes"));
    let spec = if spec.contains("tokenrouter::access") {
        spec
    } else if access_on {
        format!("{spec},tokenrouter::access=info")
    } else {
        format!("{spec},tokenrouter::access=off")
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&spec)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tokenrouter::access=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let json =
        std::env::var("TOKENROUTER_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// jemalloc: the hot path allocates a few hundred small objects per request, and glibc's malloc
/// spent ~20% of the gateway's instructions on them (callgrind; bench/README.md has the figures).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            init_logging();
            planes::serve(args).await
        }
        Command::ControlPlane(args) => {
            init_logging();
            planes::control_plane(args).await
        }
        Command::DataPlane(args) => {
            init_logging();
            planes::data_plane(args, &cli.connection).await
        }
        Command::Admin(cmd) => admin::run(&cli.connection, cmd).await,
    }
}
