//! `tokenrouter dashboard-users`: the people who sign in to the dashboard with a name and a
//! password (the admin token still works too): add (or `--replace` a password and role), list and
//! remove. Passwords never come from arguments (argv shows in `ps` and shell history): from an
//! environment variable, standard input, or a prompt that does not echo.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{DashboardUser, DashboardUserDelete, DashboardUserWrite, ListRequest};

use super::client::{Client, call};
use super::credentials::secret_from_env;
use super::output::{Printer, Table};

/// `dashboard-users` subcommands.
#[derive(Subcommand, Debug)]
pub enum DashboardUsersCmd {
    /// Add a user (the password is hashed with argon2id; only the hash is stored).
    Add(AddArgs),
    /// List users and their roles.
    List,
    /// Remove a user; their sessions end at their next request.
    Rm {
        /// The user's name.
        name: String,
    },
}

/// `dashboard-users add`.
#[derive(Args, Debug)]
pub struct AddArgs {
    /// The user's name: letters, digits, '.', '_', '-' and '@', up to 64.
    pub name: String,
    /// `admin` may create, disable and limit keys; `viewer` only reads.
    #[arg(long, value_parser = ["admin", "viewer"])]
    pub role: String,
    /// Read the password from this environment variable.
    #[arg(
        long = "password-env",
        value_name = "VAR",
        conflicts_with = "password_stdin"
    )]
    pub password_env: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long = "password-stdin")]
    pub password_stdin: bool,
    /// Give an existing user this password and role instead of failing.
    #[arg(long)]
    pub replace: bool,
}

impl AddArgs {
    /// The password, from the environment, standard input or a prompt on the terminal.
    fn password(&self, stdin: impl BufRead) -> anyhow::Result<String> {
        if let Some(var) = &self.password_env {
            return secret_from_env(var);
        }
        if self.password_stdin {
            let line = stdin
                .lines()
                .next()
                .transpose()?
                .context("standard input is empty")?;
            return Ok(line.trim_end_matches(['\r', '\n']).to_string());
        }
        let first = rpassword::prompt_password(format!("Password for {}: ", self.name))
            .context("cannot prompt for a password (use --password-env or --password-stdin)")?;
        let again = rpassword::prompt_password("Again: ")?;
        if first != again {
            bail!("the passwords differ");
        }
        Ok(first)
    }
}

fn user_json(u: &DashboardUser) -> Value {
    json!({"name": u.name, "role": u.role, "created_unix_ms": u.created_unix_ms,
        "updated_unix_ms": u.updated_unix_ms})
}

/// Runs one `dashboard-users` command; `stdin` is where `--password-stdin` reads.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: DashboardUsersCmd,
    stdin: impl BufRead,
) -> anyhow::Result<()> {
    match cmd {
        DashboardUsersCmd::Add(args) => {
            let password = args.password(stdin)?;
            let write = DashboardUserWrite {
                name: args.name.clone(),
                role: args.role.clone(),
                password,
                replace: args.replace,
            };
            let user = call(client.put_dashboard_user(write)).await?;
            if printer.json() {
                return printer.value(&user_json(&user));
            }
            let verb = if args.replace { "set" } else { "added" };
            printer.text(&format!(
                "{verb} dashboard user {} ({})\n",
                user.name, user.role
            ))
        }
        DashboardUsersCmd::List => {
            let users = call(client.list_dashboard_users(ListRequest {}))
                .await?
                .users;
            if printer.json() {
                return printer.value(&Value::Array(users.iter().map(user_json).collect()));
            }
            let mut table = Table::with_headers(&["NAME", "ROLE"]);
            for u in &users {
                table.row(vec![u.name.clone(), u.role.clone()]);
            }
            printer.text(&table.render())
        }
        DashboardUsersCmd::Rm { name } => {
            let user = call(client.delete_dashboard_user(DashboardUserDelete { name })).await?;
            if printer.json() {
                return printer.value(&user_json(&user));
            }
            printer.text(&format!("removed dashboard user {}\n", user.name))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::Connection;
    use crate::admin::client::connect;

    /// A real control plane (SQLite store, the gRPC services with an admin token) on a local port.
    async fn control_plane(token: &str) -> Connection {
        let dir = std::env::temp_dir().join(format!("tr-users-{}", uuid::Uuid::new_v4().simple()));
        let store =
            tokenrouter_control_plane::store::open(&format!("sqlite://{}/db", dir.display()))
                .await
                .unwrap();
        let cp = tokenrouter_control_plane::ControlPlane::open(
            store,
            tokenrouter_control_plane::MasterKey::from_bytes(&[5; 32]),
        )
        .await
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(tokenrouter_control_plane::serve(
            listener,
            cp,
            Some(token.into()),
            std::future::pending(),
        ));
        Connection {
            control_plane: format!("http://{addr}"),
            admin_token: Some(token.into()),
            json: false,
            tls_ca: None,
            tls_client_cert: None,
            tls_client_key: None,
        }
    }

    async fn cli(conn: &Connection, argv: &[&str], stdin: &str) -> anyhow::Result<String> {
        use clap::Parser;
        #[derive(Parser)]
        struct Args {
            #[command(subcommand)]
            cmd: DashboardUsersCmd,
        }
        let cmd =
            Args::try_parse_from(std::iter::once("dashboard-users").chain(argv.iter().copied()))?
                .cmd;
        let mut client = connect(conn).await?;
        let mut out = Vec::new();
        let mut printer = Printer::new(&mut out, conn.json);
        run(
            &mut client,
            &mut printer,
            cmd,
            std::io::Cursor::new(stdin.to_string()),
        )
        .await?;
        Ok(String::from_utf8(out)?)
    }

    #[tokio::test]
    async fn adds_lists_replaces_and_removes_users_on_a_real_control_plane() {
        let conn = control_plane("users-cli-token").await;
        let added = cli(
            &conn,
            &["add", "ana", "--role", "admin", "--password-stdin"],
            "ana's long password\n",
        )
        .await
        .unwrap();
        assert_eq!(added, "added dashboard user ana (admin)\n");
        let taken = cli(
            &conn,
            &["add", "ana", "--role", "viewer", "--password-stdin"],
            "another long one\n",
        )
        .await
        .unwrap_err();
        assert!(taken.to_string().contains("ALREADY_EXISTS"), "{taken:#}");
        let weak = cli(
            &conn,
            &["add", "bo", "--role", "viewer", "--password-stdin"],
            "short\n",
        )
        .await
        .unwrap_err();
        assert!(
            weak.to_string().contains("password: must be at least 12"),
            "{weak:#}"
        );
        assert!(
            cli(
                &conn,
                &["add", "bo", "--role", "owner", "--password-stdin"],
                "x\n"
            )
            .await
            .is_err()
        );
        let set = cli(
            &conn,
            &[
                "add",
                "ana",
                "--role",
                "viewer",
                "--password-stdin",
                "--replace",
            ],
            "a new long password\n",
        )
        .await
        .unwrap();
        assert_eq!(set, "set dashboard user ana (viewer)\n");
        let listed = cli(&conn, &["list"], "").await.unwrap();
        assert!(
            listed.contains("ana") && listed.contains("viewer"),
            "{listed}"
        );
        assert!(!listed.contains("argon2"), "{listed}");
        let removed = cli(&conn, &["rm", "ana"], "").await.unwrap();
        assert_eq!(removed, "removed dashboard user ana\n");
        let gone = cli(&conn, &["rm", "ana"], "").await.unwrap_err();
        assert!(gone.to_string().contains("NOT_FOUND"), "{gone:#}");
        let wrong = Connection {
            admin_token: Some("wrong".into()),
            ..conn.clone()
        };
        assert!(
            cli(&wrong, &["list"], "").await.is_err(),
            "the admin token is required"
        );
    }

    fn args(env: Option<&str>, stdin: bool) -> AddArgs {
        AddArgs {
            name: "ana".into(),
            role: "admin".into(),
            password_env: env.map(str::to_string),
            password_stdin: stdin,
            replace: false,
        }
    }

    #[test]
    fn reads_the_password_from_stdin_without_its_line_ending() {
        let input = std::io::Cursor::new("a long password\r\nrest\n");
        assert_eq!(args(None, true).password(input).unwrap(), "a long password");
        let empty = std::io::Cursor::new("");
        assert!(args(None, true).password(empty).is_err());
    }

    #[test]
    fn names_the_variable_never_the_value() {
        let e = args(Some("TR_TEST_UNSET_PASSWORD_VAR"), false)
            .password(std::io::Cursor::new(""))
            .unwrap_err();
        assert!(e.to_string().contains("TR_TEST_UNSET_PASSWORD_VAR"), "{e}");
    }
}
