//! `tokenrouter keys`: create, list, disable, enable and remove the API keys clients present.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{ApiKey, ApiKeyCreate, ApiKeyWrite, DeleteRequest, ListRequest};

use super::WriteOpts;
use super::client::{Client, call, write};
use super::credentials::secret_from_env;
use super::output::{Action, Printer, Resource};

/// `keys` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// List API keys (only their prefixes; keys themselves are never stored).
    List,
    /// Create a key and print it once.
    Create {
        /// Unique name.
        name: String,
        /// Accept the key held in this environment variable instead of generating one.
        #[arg(long = "key-env", value_name = "VAR")]
        key_env: Option<String>,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Refuse a key without deleting it.
    Disable(KeyTarget),
    /// Accept a disabled key again.
    Enable(KeyTarget),
    /// Remove a key.
    Rm(KeyTarget),
}

/// A key named on the command line.
#[derive(Args, Debug, PartialEq, Eq)]
pub struct KeyTarget {
    /// Name of the key.
    pub name: String,
    #[command(flatten)]
    pub write: WriteOpts,
}

impl Resource for ApiKey {
    const KIND: &'static str = "api key";
    const FIELD: &'static str = "api_keys";
    const HEADERS: &'static [&'static str] = &["NAME", "PREFIX", "STATUS"];

    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            format!("{}...", self.prefix),
            if self.disabled { "disabled" } else { "enabled" }.to_string(),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "prefix": self.prefix,
            "sha256": self.sha256,
            "disabled": self.disabled,
        })
    }
}

/// Runs one `keys` subcommand.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: KeysCmd,
) -> anyhow::Result<()> {
    match cmd {
        KeysCmd::List => {
            let response = call(client.list_api_keys(ListRequest {})).await?;
            printer.list(&response.api_keys, response.version)
        }
        KeysCmd::Create {
            name,
            key_env,
            write: opts,
        } => {
            let key = key_env.as_deref().map(secret_from_env).transpose()?;
            let generated = key.is_none();
            let request = ApiKeyCreate {
                name: name.clone(),
                key: key.unwrap_or_default(),
                expected_version: opts.proto(),
                ..Default::default()
            };
            let created = call(client.create_api_key(request)).await?;
            print_created(printer, &name, generated, created)
        }
        KeysCmd::Disable(target) => set_disabled(client, printer, target, true).await,
        KeysCmd::Enable(target) => set_disabled(client, printer, target, false).await,
        KeysCmd::Rm(KeyTarget { name, write: opts }) => {
            let request = DeleteRequest {
                name: name.clone(),
                expected_version: opts.proto(),
            };
            let rpc = client.delete_api_key(request);
            write(printer, Action::Deleted, ApiKey::KIND, &name, rpc).await
        }
    }
}

/// Confirms a created key. A generated key is printed once, with a warning on stderr; a key the
/// caller supplied is not echoed back, since they already have it.
fn print_created(
    printer: &mut Printer<'_>,
    name: &str,
    generated: bool,
    created: tokenrouter_proto::v1::ApiKeyCreated,
) -> anyhow::Result<()> {
    let mut extra = json!({});
    if let Some(api_key) = &created.api_key {
        extra["api_key"] = api_key.to_json();
    }
    let show_key = generated && !created.key.is_empty();
    if show_key {
        extra["key"] = json!(created.key);
    }
    printer.confirm(
        Action::Created,
        ApiKey::KIND,
        name,
        created.version,
        Some(extra),
    )?;
    if show_key {
        if !printer.json() {
            printer.text(&format!("{}\n", created.key))?;
        }
        eprintln!("warning: this key is shown only once and cannot be recovered; store it now.");
    }
    Ok(())
}

/// Flips a key's `disabled` flag: finds the key, then writes it back changed.
async fn set_disabled(
    client: &mut Client,
    printer: &mut Printer<'_>,
    target: KeyTarget,
    disabled: bool,
) -> anyhow::Result<()> {
    let keys = call(client.list_api_keys(ListRequest {})).await?;
    let mut api_key = keys
        .api_keys
        .into_iter()
        .find(|key| key.name == target.name)
        .ok_or_else(|| anyhow!("NOT_FOUND: no api key named {:?}", target.name))?;
    api_key.disabled = disabled;
    let request = ApiKeyWrite {
        api_key: Some(api_key),
        expected_version: target.write.proto(),
    };
    let action = if disabled {
        Action::Disabled
    } else {
        Action::Enabled
    };
    let rpc = client.update_api_key(request);
    write(printer, action, ApiKey::KIND, &target.name, rpc).await
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::admin::AdminCommand;
    use crate::admin::tests::parse;

    #[test]
    fn create_takes_an_optional_key_env_and_no_plain_key() {
        let (_, cmd) = parse(&["keys", "create", "ci", "--key-env", "CI_KEY"]).unwrap();
        let AdminCommand::Keys(KeysCmd::Create { name, key_env, .. }) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        assert_eq!((name.as_str(), key_env.as_deref()), ("ci", Some("CI_KEY")));
        assert!(parse(&["keys", "create", "ci", "--key", "sk-tr-x"]).is_err());
        assert!(parse(&["keys", "create", "ci", "sk-tr-x"]).is_err());
    }

    #[test]
    fn disable_enable_rm_take_a_name_and_expected_version() {
        let (_, cmd) = parse(&["keys", "disable", "ci", "--expected-version", "3"]).unwrap();
        let AdminCommand::Keys(KeysCmd::Disable(target)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        assert_eq!(target.name, "ci");
        assert_eq!(target.write.expected_version, Some(3));
        assert!(matches!(
            parse(&["keys", "enable", "ci"]).unwrap().1,
            AdminCommand::Keys(KeysCmd::Enable(_))
        ));
        assert!(matches!(
            parse(&["keys", "rm", "ci"]).unwrap().1,
            AdminCommand::Keys(KeysCmd::Rm(_))
        ));
        assert!(parse(&["keys", "disable"]).is_err());
    }

    #[test]
    fn created_key_is_printed_once_for_people_and_in_json() {
        let created = tokenrouter_proto::v1::ApiKeyCreated {
            api_key: Some(ApiKey {
                name: "ci".into(),
                sha256: "ab".into(),
                prefix: "sk-tr-12".into(),
                disabled: false,
                ..Default::default()
            }),
            key: "sk-tr-12345".into(),
            version: 9,
        };
        let mut buf = Vec::new();
        print_created(
            &mut Printer::new(&mut buf, false),
            "ci",
            true,
            created.clone(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "created api key ci (version 9)\nsk-tr-12345\n"
        );

        let mut buf = Vec::new();
        print_created(
            &mut Printer::new(&mut buf, true),
            "ci",
            true,
            created.clone(),
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(value["key"], "sk-tr-12345");
        assert_eq!(value["api_key"]["prefix"], "sk-tr-12");

        // A key the caller supplied is not echoed.
        let mut buf = Vec::new();
        print_created(&mut Printer::new(&mut buf, false), "ci", false, created).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "created api key ci (version 9)\n"
        );
    }
}
