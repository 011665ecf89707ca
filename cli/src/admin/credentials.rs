//! `tokenrouter credentials`: manage provider secrets, read from an env var or stdin, never from argv.

use std::io::BufRead;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{Credential, CredentialWrite, DeleteRequest, ListRequest};

use super::WriteOpts;
use super::client::{Client, call, write};
use super::output::{Action, Printer, Resource};

/// `credentials` subcommands.
#[derive(Subcommand, Debug)]
pub enum CredentialsCmd {
    /// List credentials (secrets are never shown).
    List,
    /// Add a credential.
    Add(CredentialArgs),
    /// Replace a credential, secret included.
    Update(CredentialArgs),
    /// Remove a credential.
    Rm {
        /// Name of the credential.
        name: String,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// The full settings of one credential.
#[derive(Args, Debug, PartialEq, Eq)]
pub struct CredentialArgs {
    /// Unique name.
    pub name: String,
    /// The provider (by name) this credential is for.
    #[arg(long, value_name = "P")]
    pub provider: String,
    #[command(flatten)]
    pub secret: SecretSource,
    #[command(flatten)]
    pub write: WriteOpts,
}

/// Where the secret comes from. There is deliberately no way to pass it as an argument: argv ends up
/// in shell history and is visible to every user through `ps`.
#[derive(Args, Debug, PartialEq, Eq)]
#[group(required = true, multiple = false)]
pub struct SecretSource {
    /// Read the secret from this environment variable.
    #[arg(long = "secret-env", value_name = "VAR")]
    pub secret_env: Option<String>,
    /// Read the secret from the first line of standard input.
    #[arg(long = "secret-stdin")]
    pub secret_stdin: bool,
}

impl SecretSource {
    /// Reads the secret from the environment or from `stdin`.
    fn read(&self, stdin: impl BufRead) -> anyhow::Result<String> {
        let secret = match &self.secret_env {
            Some(var) => secret_from_env(var)?,
            None => first_line(stdin)?,
        };
        if secret.trim().is_empty() {
            bail!("the secret is empty");
        }
        Ok(secret)
    }
}

/// Reads a secret from the environment variable `var`, naming the variable (never the value) on error.
pub(super) fn secret_from_env(var: &str) -> anyhow::Result<String> {
    match std::env::var(var) {
        Ok(value) if value.trim().is_empty() => bail!("environment variable {var} is empty"),
        Ok(value) => Ok(value),
        Err(std::env::VarError::NotPresent) => bail!("environment variable {var} is not set"),
        Err(std::env::VarError::NotUnicode(_)) => {
            bail!("environment variable {var} is not valid UTF-8")
        }
    }
}

/// The first line of `input` without its line ending, as `echo "$KEY" | ...` produces it.
fn first_line(mut input: impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("cannot read the secret from standard input")?;
    let trimmed = line.trim_end_matches(['\n', '\r']);
    Ok(trimmed.to_string())
}

impl CredentialArgs {
    /// The write request these flags describe, with the secret read from its source.
    fn into_write(self, stdin: impl BufRead) -> anyhow::Result<CredentialWrite> {
        let secret = self.secret.read(stdin)?;
        Ok(CredentialWrite {
            credential: Some(Credential {
                name: self.name,
                provider: self.provider,
                secret,
            }),
            expected_version: self.write.proto(),
        })
    }
}

impl Resource for Credential {
    const KIND: &'static str = "credential";
    const FIELD: &'static str = "credentials";
    const HEADERS: &'static [&'static str] = &["NAME", "PROVIDER"];

    fn row(&self) -> Vec<String> {
        vec![self.name.clone(), self.provider.clone()]
    }

    /// Leaves the secret out entirely, even though reads return it blank.
    fn to_json(&self) -> Value {
        json!({ "name": self.name, "provider": self.provider })
    }
}

/// Runs one `credentials` subcommand.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: CredentialsCmd,
) -> anyhow::Result<()> {
    match cmd {
        CredentialsCmd::List => {
            let response = call(client.list_credentials(ListRequest {})).await?;
            printer.list(&response.credentials, response.version)
        }
        CredentialsCmd::Add(args) => {
            let name = args.name.clone();
            let request = args.into_write(std::io::stdin().lock())?;
            let rpc = client.create_credential(request);
            write(printer, Action::Created, Credential::KIND, &name, rpc).await
        }
        CredentialsCmd::Update(args) => {
            let name = args.name.clone();
            let request = args.into_write(std::io::stdin().lock())?;
            let rpc = client.update_credential(request);
            write(printer, Action::Updated, Credential::KIND, &name, rpc).await
        }
        CredentialsCmd::Rm { name, write: opts } => {
            let request = DeleteRequest {
                name: name.clone(),
                expected_version: opts.proto(),
            };
            let rpc = client.delete_credential(request);
            write(printer, Action::Deleted, Credential::KIND, &name, rpc).await
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::admin::AdminCommand;
    use crate::admin::tests::parse;

    fn add_args(argv: &[&str]) -> CredentialArgs {
        let (_, cmd) = parse(argv).unwrap();
        match cmd {
            AdminCommand::Credentials(CredentialsCmd::Add(args))
            | AdminCommand::Credentials(CredentialsCmd::Update(args)) => args,
            other => panic!("wrong command: {other:?}"),
        }
    }

    #[test]
    fn exactly_one_secret_source_is_required() {
        let base = ["credentials", "add", "c", "--provider", "openai"];
        assert!(parse(&base).is_err());
        let both = [&base[..], &["--secret-env", "K", "--secret-stdin"]].concat();
        assert!(parse(&both).is_err());
        // There is no flag that takes the secret itself.
        let plain = [&base[..], &["--secret", "sk-live"]].concat();
        assert!(parse(&plain).is_err());
    }

    #[test]
    fn secret_comes_from_stdin_first_line() {
        let args = add_args(&[
            "credentials",
            "update",
            "c",
            "--provider",
            "openai",
            "--secret-stdin",
        ]);
        let write = args.into_write(&b"sk-123\r\nignored\n"[..]).unwrap();
        assert_eq!(write.credential.unwrap().secret, "sk-123");
    }

    #[test]
    fn secret_comes_from_the_named_env_var() {
        // PATH is always set; its value stands in for a secret here.
        let args = add_args(&[
            "credentials",
            "add",
            "c",
            "--provider",
            "p",
            "--secret-env",
            "PATH",
        ]);
        let write = args.into_write(&b""[..]).unwrap();
        assert_eq!(
            write.credential.unwrap().secret,
            std::env::var("PATH").unwrap()
        );

        let var = "TOKENROUTER_TEST_SURELY_UNSET_VAR";
        let args = add_args(&[
            "credentials",
            "add",
            "c",
            "--provider",
            "p",
            "--secret-env",
            var,
        ]);
        let err = args.into_write(&b""[..]).unwrap_err().to_string();
        assert_eq!(err, format!("environment variable {var} is not set"));
    }

    #[test]
    fn empty_secret_is_refused() {
        let args = add_args(&[
            "credentials",
            "add",
            "c",
            "--provider",
            "p",
            "--secret-stdin",
        ]);
        let err = args.into_write(&b"\n"[..]).unwrap_err().to_string();
        assert_eq!(err, "the secret is empty");
    }

    #[test]
    fn json_never_has_a_secret_field() {
        let credential = Credential {
            name: "c".into(),
            provider: "openai".into(),
            secret: "canary".into(),
        };
        assert_eq!(
            credential.to_json(),
            json!({"name": "c", "provider": "openai"})
        );
        assert!(!credential.row().iter().any(|cell| cell.contains("canary")));
    }
}
