//! The admin subcommands: manage a running control plane over gRPC (`tokenrouter.v1.Admin`).
//!
//! `main` flattens [`Connection`] into its top-level parser, adds [`AdminCommand`] as subcommands and
//! hands both to [`run`]. Each resource lives in its own file; the shared plumbing (connecting with the
//! admin token, calling, confirming writes, printing tables and JSON) lives in `client` and `output`.

mod client;
mod credentials;
mod dashboard_users;
#[cfg(test)]
mod fake_admin;
mod firewall;
mod key_limits;
mod key_show;
#[cfg(test)]
mod key_tests;
mod keys;
mod models;
mod output;
mod policies;
mod providers;
mod rule_format;
mod rules;
mod status;
#[cfg(test)]
mod tests;
mod usage;

use std::io::Write;

use clap::{Args, Subcommand};

pub use credentials::CredentialsCmd;
pub use dashboard_users::DashboardUsersCmd;
pub use firewall::FirewallCmd;
pub use keys::KeysCmd;
pub use models::ModelsCmd;
pub use policies::PoliciesCmd;
pub use providers::ProvidersCmd;
pub use rules::RulesCmd;

use output::Printer;

/// Lists the global connection flags after each command's own flags in `--help`. (A help heading
/// would be neater, but on a flattened struct clap carries it over to the parent's later flags.)
const CONNECTION_ORDER: usize = 900;

/// How to reach the control plane; flatten into the top-level clap parser.
#[derive(Args, Debug, Clone)]
pub struct Connection {
    /// gRPC address of the control plane (`https://` for TLS); a comma-separated list is tried
    /// in turn (data planes follow the list: they move to the next when one fails).
    #[arg(
        long = "control-plane",
        env = "TOKENROUTER_CONTROL_PLANE",
        default_value = "http://127.0.0.1:50051",
        global = true,
        display_order = CONNECTION_ORDER
    )]
    pub control_plane: String,
    /// Admin token, sent as `authorization: Bearer <token>` metadata when set.
    #[arg(
        long = "admin-token",
        env = "TOKENROUTER_ADMIN_TOKEN",
        global = true,
        hide_env_values = true,
        display_order = CONNECTION_ORDER + 1
    )]
    pub admin_token: Option<String>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true, display_order = CONNECTION_ORDER + 2)]
    pub json: bool,
    /// CA certificate (PEM) that the control plane's TLS certificate must chain to (for
    /// `https://` control planes; without it, the web's public roots).
    #[arg(long, env = "TOKENROUTER_TLS_CA", global = true, display_order = CONNECTION_ORDER + 3)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for a control plane that requires mutual TLS.
    #[arg(long, env = "TOKENROUTER_TLS_CLIENT_CERT", global = true, display_order = CONNECTION_ORDER + 4)]
    pub tls_client_cert: Option<std::path::PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, env = "TOKENROUTER_TLS_CLIENT_KEY", global = true, display_order = CONNECTION_ORDER + 5)]
    pub tls_client_key: Option<std::path::PathBuf>,
}

impl Connection {
    /// The TLS files, read.
    pub fn client_tls(&self) -> anyhow::Result<tokenrouter_data_plane::ClientTls> {
        Ok(tokenrouter_data_plane::ClientTls::from_files(
            self.tls_ca.as_deref(),
            self.tls_client_cert.as_deref(),
            self.tls_client_key.as_deref(),
        )?)
    }
}

/// The admin resource subcommands.
#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Upstream providers (OpenAI, Mistral, any OpenAI-compatible server, ...).
    #[command(subcommand)]
    Providers(ProvidersCmd),
    /// Secrets that authenticate TokenRouter to providers.
    #[command(subcommand)]
    Credentials(CredentialsCmd),
    /// API keys that clients present to the data plane.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Routing rules: send matching requests to a provider, weighted targets or an auto mode, or
    /// refuse them.
    #[command(subcommand)]
    Rules(RulesCmd),
    /// Fallback policies: chains of providers tried when an attempt fails, backoff and hedging.
    #[command(subcommand)]
    Policies(PoliciesCmd),
    /// Firewall rules: detectors, regexes and keywords that block, mask or flag what goes to a
    /// provider or comes back; `firewall test` dry-runs them on a text.
    #[command(subcommand)]
    Firewall(FirewallCmd),
    /// Model catalog entries: prices, limits, capabilities and quality, overriding or extending the
    /// built-in catalog.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Show the current snapshot: version, epoch, content hash and counts.
    Snapshot,
    /// Show the data planes the control plane knows and the version each one serves.
    DataPlanes,
    /// Show usage and cost reported by the data planes, grouped, and recent requests.
    Usage(usage::UsageArgs),
    /// People who sign in to the dashboard with a name and password, as `admin` or `viewer`.
    #[command(subcommand, name = "dashboard-users")]
    DashboardUsers(DashboardUsersCmd),
}

/// Options every write accepts.
#[derive(Args, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOpts {
    /// Only write if the store is at exactly this version (compare-and-swap).
    #[arg(long = "expected-version", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub expected_version: Option<u64>,
}

impl WriteOpts {
    /// The proto encoding: 0 means "no check".
    fn proto(self) -> u64 {
        self.expected_version.unwrap_or(0)
    }
}

/// Runs one admin command against the control plane, printing to stdout.
///
/// Errors are one line (`INVALID_ARGUMENT: providers[x].base_url: ...`, `cannot reach the control plane
/// at URL: ...`); the caller prints them as `error: {err:#}` and exits non-zero.
pub async fn run(conn: &Connection, cmd: AdminCommand) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    execute(conn, cmd, &mut out).await?;
    out.flush()?;
    Ok(())
}

/// [`run`] with the output going to `out`, so tests can read it.
async fn execute(conn: &Connection, cmd: AdminCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut client = client::connect(conn).await?;
    let mut printer = Printer::new(out, conn.json);
    let p = &mut printer;
    match cmd {
        AdminCommand::Providers(cmd) => providers::run(&mut client, p, cmd).await,
        AdminCommand::Credentials(cmd) => credentials::run(&mut client, p, cmd).await,
        AdminCommand::Keys(cmd) => keys::run(&mut client, p, cmd).await,
        AdminCommand::Rules(cmd) => rules::run(&mut client, p, cmd).await,
        AdminCommand::Firewall(cmd) => firewall::run(&mut client, p, cmd).await,
        AdminCommand::Policies(cmd) => policies::run(&mut client, p, cmd).await,
        AdminCommand::Models(cmd) => models::run(&mut client, p, cmd).await,
        AdminCommand::Snapshot => status::snapshot(&mut client, p).await,
        AdminCommand::DataPlanes => status::data_planes(&mut client, p).await,
        AdminCommand::Usage(args) => usage::run(&mut client, p, args).await,
        AdminCommand::DashboardUsers(cmd) => {
            dashboard_users::run(&mut client, p, cmd, std::io::stdin().lock()).await
        }
    }
}
