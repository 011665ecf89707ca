//! The `tokenrouter` binary: run the planes, or manage a running control plane over gRPC.

mod admin;
mod bootstrap;
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
