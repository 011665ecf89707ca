//! `tokenrouter keys`: create, list, limit, show, restrict, disable, enable and remove the API keys
//! clients present.

use anyhow::anyhow;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{ApiKey, ApiKeyCreate, ApiKeyWrite, DeleteRequest, ListRequest};

use super::WriteOpts;
use super::client::{Client, call, write};
use super::credentials::secret_from_env;
use super::key_limits::{self, LimitArgs};
use super::key_show;
use super::output::{Action, Printer, Resource};

/// `keys` subcommands.
#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// List API keys (only their prefixes; keys themselves are never stored) and their limits.
    List,
    /// Create a key and print it once.
    Create {
        /// Unique name.
        name: String,
        /// Accept the key held in this environment variable instead of generating one.
        #[arg(long = "key-env", value_name = "VAR")]
        key_env: Option<String>,
        /// A model the key may use, as a glob over the requested name ("gpt-4o*", "openai:*",
        /// "auto:*"); repeat, or separate with commas. Without it the key may use every model.
        #[arg(long = "allow-model", value_name = "GLOB", value_delimiter = ',')]
        allowed_models: Vec<String>,
        #[command(flatten)]
        limits: LimitArgs,
        /// Keep the key's request and response bodies (masked, seven days; see `log-bodies`).
        #[arg(long = "log-bodies")]
        log_bodies: bool,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Change a key's limits; limits not named keep their value, `0` clears one.
    Update(UpdateArgs),
    /// Show each limit of a key with its current use, what remains and when it resets.
    Show {
        /// Name of the key.
        name: String,
    },
    /// Set the models a key may use (other models get 403), replacing the previous list.
    Allow(AllowArgs),
    /// Keep (`on`) or stop keeping (`off`) a key's request and response bodies for the
    /// dashboard's request detail: after the firewall's masking, cut at 64 KiB, kept seven days.
    LogBodies(LogBodiesArgs),
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

/// `keys update`: new limits for one key.
#[derive(Args, Debug, PartialEq)]
pub struct UpdateArgs {
    /// Name of the key.
    pub name: String,
    /// Remove every limit first (then apply any limit flags given with it).
    #[arg(long = "no-limits")]
    pub no_limits: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub write: WriteOpts,
}

/// `keys allow`: the new list of models for one key.
#[derive(Args, Debug, PartialEq, Eq)]
#[command(group(ArgGroup::new("allowed").required(true).multiple(false)))]
pub struct AllowArgs {
    /// Name of the key.
    pub name: String,
    /// A model the key may use, as a glob over the requested name ("gpt-4o*", "openai:*", "auto:*");
    /// repeat, or separate with commas or spaces.
    #[arg(
        long = "model",
        value_name = "GLOB",
        num_args = 1..,
        value_delimiter = ',',
        group = "allowed"
    )]
    pub models: Vec<String>,
    /// Allow every model again (clears the list).
    #[arg(long = "any-model", group = "allowed")]
    pub any_model: bool,
    #[command(flatten)]
    pub write: WriteOpts,
}

/// `keys log-bodies`: whether one key's bodies are kept.
#[derive(Args, Debug, PartialEq, Eq)]
pub struct LogBodiesArgs {
    /// Name of the key.
    pub name: String,
    /// `on` or `off`.
    #[arg(value_parser = ["on", "off"])]
    pub state: String,
    #[command(flatten)]
    pub write: WriteOpts,
}

impl Resource for ApiKey {
    const KIND: &'static str = "api key";
    const FIELD: &'static str = "api_keys";
    const HEADERS: &'static [&'static str] = &["NAME", "PREFIX", "STATUS", "MODELS", "LIMITS"];

    fn row(&self) -> Vec<String> {
        let models = if self.allowed_models.is_empty() {
            "any".to_string()
        } else {
            self.allowed_models.join(",")
        };
        vec![
            self.name.clone(),
            format!("{}...", self.prefix),
            if self.disabled { "disabled" } else { "enabled" }.to_string(),
            models,
            key_limits::summary(self),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "prefix": self.prefix,
            "sha256": self.sha256,
            "disabled": self.disabled,
            "allowed_models": self.allowed_models,
            "limits": key_limits::limits_json(self.limits.as_ref()),
            "user_limits": key_limits::limits_json(self.user_limits.as_ref()),
            "model_limits": key_limits::model_limits_json(&self.model_limits),
            "log_bodies": self.log_bodies,
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
            allowed_models,
            limits,
            log_bodies,
            write: opts,
        } => {
            let mut limited = ApiKey::default();
            key_limits::apply(&limits, &mut limited)?;
            let key = key_env.as_deref().map(secret_from_env).transpose()?;
            let generated = key.is_none();
            let request = ApiKeyCreate {
                name: name.clone(),
                key: key.unwrap_or_default(),
                expected_version: opts.proto(),
                allowed_models,
                limits: limited.limits,
                user_limits: limited.user_limits,
                model_limits: limited.model_limits,
                log_bodies,
            };
            let created = call(client.create_api_key(request)).await?;
            print_created(printer, &name, generated, created)
        }
        KeysCmd::Update(args) => {
            key_limits::require_some(&args.limits, args.no_limits)?;
            let target = KeyTarget {
                name: args.name,
                write: args.write,
            };
            let (no_limits, limits) = (args.no_limits, args.limits);
            let change = move |key: &mut ApiKey| {
                if no_limits {
                    key_limits::clear(key);
                }
                key_limits::apply(&limits, key)
            };
            update_key(client, printer, target, Action::Updated, change).await
        }
        KeysCmd::Show { name } => key_show::run(client, printer, &name).await,
        KeysCmd::Allow(args) => {
            let target = KeyTarget {
                name: args.name,
                write: args.write,
            };
            let models = args.models;
            let change = move |key: &mut ApiKey| {
                key.allowed_models = models;
                Ok(())
            };
            update_key(client, printer, target, Action::Updated, change).await
        }
        KeysCmd::LogBodies(args) => {
            let target = KeyTarget {
                name: args.name,
                write: args.write,
            };
            let on = args.state == "on";
            let change = move |key: &mut ApiKey| {
                key.log_bodies = on;
                Ok(())
            };
            update_key(client, printer, target, Action::Updated, change).await
        }
        KeysCmd::Disable(target) => {
            let change = |key: &mut ApiKey| {
                key.disabled = true;
                Ok(())
            };
            update_key(client, printer, target, Action::Disabled, change).await
        }
        KeysCmd::Enable(target) => {
            let change = |key: &mut ApiKey| {
                key.disabled = false;
                Ok(())
            };
            update_key(client, printer, target, Action::Enabled, change).await
        }
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

/// Changes a key's mutable fields (`disabled`, `allowed_models`, the limits): finds the key, then
/// writes it back changed, so the fields the command does not touch keep their values.
async fn update_key(
    client: &mut Client,
    printer: &mut Printer<'_>,
    target: KeyTarget,
    action: Action,
    change: impl FnOnce(&mut ApiKey) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let keys = call(client.list_api_keys(ListRequest {})).await?;
    let mut api_key = keys
        .api_keys
        .into_iter()
        .find(|key| key.name == target.name)
        .ok_or_else(|| anyhow!("NOT_FOUND: no api key named {:?}", target.name))?;
    change(&mut api_key)?;
    let request = ApiKeyWrite {
        api_key: Some(api_key),
        expected_version: target.write.proto(),
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
        let AdminCommand::Keys(KeysCmd::Create {
            name,
            key_env,
            allowed_models,
            ..
        }) = cmd
        else {
            panic!("wrong command: {cmd:?}");
        };
        assert_eq!((name.as_str(), key_env.as_deref()), ("ci", Some("CI_KEY")));
        assert!(allowed_models.is_empty());
        assert!(parse(&["keys", "create", "ci", "--key", "sk-tr-x"]).is_err());
        assert!(parse(&["keys", "create", "ci", "sk-tr-x"]).is_err());
    }

    #[test]
    fn create_takes_allowed_model_globs() {
        let argv = [
            "keys",
            "create",
            "ci",
            "--allow-model",
            "gpt-4o*",
            "--allow-model",
            "openai:*,auto:*",
        ];
        let (_, cmd) = parse(&argv).unwrap();
        let AdminCommand::Keys(KeysCmd::Create { allowed_models, .. }) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        assert_eq!(allowed_models, ["gpt-4o*", "openai:*", "auto:*"]);
    }

    #[test]
    fn allow_takes_models_or_any_model_but_not_both() {
        let argv = [
            "keys", "allow", "ci", "--model", "a*", "b", "--model", "c,d",
        ];
        let (_, cmd) = parse(&argv).unwrap();
        let AdminCommand::Keys(KeysCmd::Allow(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        assert_eq!(args.name, "ci");
        assert_eq!(args.models, ["a*", "b", "c", "d"]);
        assert!(!args.any_model);

        let (_, cmd) = parse(&["keys", "allow", "ci", "--any-model"]).unwrap();
        let AdminCommand::Keys(KeysCmd::Allow(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        assert!(args.any_model && args.models.is_empty());

        assert!(parse(&["keys", "allow", "ci"]).is_err());
        assert!(parse(&["keys", "allow", "ci", "--model", "a", "--any-model"]).is_err());
    }

    #[test]
    fn row_and_json_show_the_allowed_models() {
        let mut key = ApiKey {
            name: "ci".into(),
            sha256: "ab".into(),
            prefix: "sk-tr-12".into(),
            disabled: true,
            ..Default::default()
        };
        assert_eq!(key.row(), ["ci", "sk-tr-12...", "disabled", "any", "none"]);
        key.allowed_models = vec!["gpt-4o*".into(), "auto:*".into()];
        assert_eq!(key.row()[3], "gpt-4o*,auto:*");
        assert_eq!(
            key.to_json(),
            json!({"name": "ci", "prefix": "sk-tr-12", "sha256": "ab", "disabled": true,
                   "allowed_models": ["gpt-4o*", "auto:*"], "limits": null, "user_limits": null,
                   "model_limits": [], "log_bodies": false})
        );
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
