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

/// Runs one `dashboard-users` command.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: DashboardUsersCmd,
) -> anyhow::Result<()> {
    match cmd {
        DashboardUsersCmd::Add(args) => {
            let password = args.password(std::io::stdin().lock())?;
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
