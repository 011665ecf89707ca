//! `tokenrouter providers`: list, add, replace and remove upstream providers.

use std::future::Future;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::normalize_base_url;
use tokenrouter_proto::v1::{DeleteRequest, ListRequest, Provider, ProviderWrite, WriteResponse};
use tokenrouter_proto::validate::SUPPORTED_KINDS;

use super::WriteOpts;
use super::client::{Client, call, write};
use super::output::{Action, Printer, Resource, or_dash};

/// `providers` subcommands.
#[derive(Subcommand, Debug)]
pub enum ProvidersCmd {
    /// List providers.
    List,
    /// Add a provider.
    Add(ProviderArgs),
    /// Replace a provider with the given settings (flags left out take their defaults).
    Update(ProviderArgs),
    /// Remove a provider.
    Rm {
        /// Name of the provider.
        name: String,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// The full settings of one provider.
#[derive(Args, Debug, PartialEq, Eq)]
pub struct ProviderArgs {
    /// Unique name: lowercase letters, digits, '-' and '_'. Clients pin it as `name:model`.
    pub name: String,
    /// Wire protocol the provider speaks.
    #[arg(long, value_parser = PossibleValuesParser::new(SUPPORTED_KINDS.iter().copied()))]
    pub kind: String,
    /// Base URL, in the provider SDK's form (https://api.anthropic.com) or with the version path
    /// (https://api.anthropic.com/v1). Stored with the version path (/v1; /v1beta for gemini);
    /// openai-compatible URLs are kept as given.
    #[arg(long = "base-url", value_name = "URL")]
    pub base_url: String,
    /// A model this provider serves (repeat, or separate with commas).
    #[arg(long = "model", value_name = "M", value_delimiter = ',')]
    pub models: Vec<String>,
    /// Time allowed for one upstream attempt in milliseconds (default 600000).
    #[arg(long = "timeout-ms", value_name = "N")]
    pub timeout_ms: Option<u32>,
    /// Time allowed to connect to the provider in milliseconds (default 10000).
    #[arg(long = "connect-timeout-ms", value_name = "N")]
    pub connect_timeout_ms: Option<u32>,
    /// Time allowed from sending a streamed request to its first content, in milliseconds; keep-alive
    /// comments do not count (default 180000).
    #[arg(long = "first-token-timeout-ms", value_name = "N")]
    pub first_token_timeout_ms: Option<u32>,
    /// Longest silence between two stream events in milliseconds; any bytes reset it (default 300000).
    #[arg(long = "idle-timeout-ms", value_name = "N")]
    pub idle_timeout_ms: Option<u32>,
    /// Egress for this provider: `direct` (never a proxy) or a proxy URL such as
    /// `http://proxy.internal:3128`; without it, the data plane's HTTPS_PROXY / NO_PROXY apply.
    #[arg(long, value_name = "URL|direct")]
    pub proxy: Option<String>,
    /// Keep the provider configured but do not route to it.
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub write: WriteOpts,
}

impl ProviderArgs {
    /// The write request these flags describe, with the base URL in the stored form. A URL that
    /// does not normalise is sent as typed, so the control plane's own error explains it.
    fn into_write(self) -> ProviderWrite {
        let base_url =
            normalize_base_url("--base-url", &self.kind, &self.base_url).unwrap_or(self.base_url);
        ProviderWrite {
            provider: Some(Provider {
                name: self.name,
                kind: self.kind,
                base_url,
                models: self.models,
                timeout_ms: self.timeout_ms.unwrap_or(0),
                connect_timeout_ms: self.connect_timeout_ms.unwrap_or(0),
                disabled: self.disabled,
                first_token_timeout_ms: self.first_token_timeout_ms.unwrap_or(0),
                idle_timeout_ms: self.idle_timeout_ms.unwrap_or(0),
                proxy: self.proxy.unwrap_or_default(),
            }),
            expected_version: self.write.proto(),
        }
    }
}

/// Milliseconds for a table cell, with 0 shown as the default it stands for.
fn millis(value: u32) -> String {
    if value == 0 {
        "default".to_string()
    } else {
        value.to_string()
    }
}

impl Resource for Provider {
    const KIND: &'static str = "provider";
    const FIELD: &'static str = "providers";
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "KIND",
        "BASE URL",
        "MODELS",
        "TIMEOUT MS",
        "CONNECT MS",
        "FIRST TOKEN MS",
        "IDLE MS",
        "STATUS",
    ];

    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.kind.clone(),
            self.base_url.clone(),
            or_dash(&self.models.join(",")),
            millis(self.timeout_ms),
            millis(self.connect_timeout_ms),
            millis(self.first_token_timeout_ms),
            millis(self.idle_timeout_ms),
            if self.disabled { "disabled" } else { "enabled" }.to_string(),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "proxy": self.proxy,
            "models": self.models,
            "timeout_ms": self.timeout_ms,
            "connect_timeout_ms": self.connect_timeout_ms,
            "first_token_timeout_ms": self.first_token_timeout_ms,
            "idle_timeout_ms": self.idle_timeout_ms,
            "disabled": self.disabled,
        })
    }
}

fn stored_url(request: &ProviderWrite) -> String {
    request
        .provider
        .as_ref()
        .map(|p| p.base_url.clone())
        .unwrap_or_default()
}

/// Runs a provider write and confirms it with the base URL as stored: in the JSON always, for
/// people only when it differs from what they typed (`base URL stored as https://…/v1`).
async fn write_provider(
    printer: &mut Printer<'_>,
    action: Action,
    name: &str,
    typed: &str,
    stored: &str,
    rpc: impl Future<Output = Result<tonic::Response<WriteResponse>, tonic::Status>>,
) -> anyhow::Result<()> {
    let response = call(rpc).await?;
    let extra = json!({ "base_url": stored });
    printer.confirm(action, Provider::KIND, name, response.version, Some(extra))?;
    if !printer.json() && stored != typed {
        printer.text(&format!("base URL stored as {stored}\n"))?;
    }
    Ok(())
}

/// Runs one `providers` subcommand.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: ProvidersCmd,
) -> anyhow::Result<()> {
    match cmd {
        ProvidersCmd::List => {
            let response = call(client.list_providers(ListRequest {})).await?;
            printer.list(&response.providers, response.version)
        }
        ProvidersCmd::Add(args) => {
            let (name, typed) = (args.name.clone(), args.base_url.clone());
            let request = args.into_write();
            let stored = stored_url(&request);
            let rpc = client.create_provider(request);
            write_provider(printer, Action::Created, &name, &typed, &stored, rpc).await
        }
        ProvidersCmd::Update(args) => {
            let (name, typed) = (args.name.clone(), args.base_url.clone());
            let request = args.into_write();
            let stored = stored_url(&request);
            let rpc = client.update_provider(request);
            write_provider(printer, Action::Updated, &name, &typed, &stored, rpc).await
        }
        ProvidersCmd::Rm { name, write: opts } => {
            let request = DeleteRequest {
                name: name.clone(),
                expected_version: opts.proto(),
            };
            let rpc = client.delete_provider(request);
            write(printer, Action::Deleted, Provider::KIND, &name, rpc).await
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::admin::AdminCommand;
    use crate::admin::tests::parse;

    #[test]
    fn add_parses_every_flag() {
        let (conn, cmd) = parse(&[
            "providers",
            "add",
            "openai",
            "--kind",
            "openai",
            "--base-url",
            "https://api.openai.com/v1",
            "--model",
            "gpt-4o",
            "--model",
            "gpt-4o-mini,o3",
            "--timeout-ms",
            "30000",
            "--connect-timeout-ms",
            "2000",
            "--first-token-timeout-ms",
            "90000",
            "--idle-timeout-ms",
            "45000",
            "--proxy",
            "direct",
            "--disabled",
            "--expected-version",
            "7",
            "--json",
        ])
        .unwrap();
        assert!(conn.json);
        let AdminCommand::Providers(ProvidersCmd::Add(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        let write = args.into_write();
        assert_eq!(write.expected_version, 7);
        assert_eq!(
            write.provider.unwrap(),
            Provider {
                name: "openai".into(),
                kind: "openai".into(),
                base_url: "https://api.openai.com/v1".into(),
                models: vec!["gpt-4o".into(), "gpt-4o-mini".into(), "o3".into()],
                timeout_ms: 30000,
                connect_timeout_ms: 2000,
                disabled: true,
                first_token_timeout_ms: 90000,
                idle_timeout_ms: 45000,
                proxy: "direct".into(),
            }
        );
    }

    #[test]
    fn add_requires_kind_and_base_url_and_defaults_the_rest() {
        assert!(parse(&["providers", "add", "x", "--kind", "openai"]).is_err());
        let (_, cmd) = parse(&[
            "providers",
            "update",
            "x",
            "--kind",
            "openai",
            "--base-url",
            "http://h",
        ])
        .unwrap();
        let AdminCommand::Providers(ProvidersCmd::Update(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        let write = args.into_write();
        assert_eq!(write.expected_version, 0);
        let provider = write.provider.unwrap();
        assert!(provider.models.is_empty() && !provider.disabled);
        assert_eq!((provider.timeout_ms, provider.connect_timeout_ms), (0, 0));
        assert_eq!(
            (provider.first_token_timeout_ms, provider.idle_timeout_ms),
            (0, 0)
        );
    }

    /// The write `providers add` sends for `--kind kind --base-url url`.
    fn sent_url(kind: &str, url: &str) -> String {
        let (_, cmd) =
            parse(&["providers", "add", "p", "--kind", kind, "--base-url", url]).unwrap();
        let AdminCommand::Providers(ProvidersCmd::Add(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        args.into_write().provider.unwrap().base_url
    }

    #[test]
    fn base_urls_are_sent_in_the_stored_form() {
        let cases = [
            (
                "openai",
                "https://api.openai.com",
                "https://api.openai.com/v1",
            ),
            (
                "openai",
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1",
            ),
            (
                "anthropic",
                "https://api.anthropic.com",
                "https://api.anthropic.com/v1",
            ),
            (
                "anthropic",
                "https://api.anthropic.com/v1",
                "https://api.anthropic.com/v1",
            ),
            (
                "gemini",
                "https://generativelanguage.googleapis.com/",
                "https://generativelanguage.googleapis.com/v1beta",
            ),
            (
                "mistral",
                "https://api.mistral.ai",
                "https://api.mistral.ai/v1",
            ),
            (
                "deepseek",
                "https://api.deepseek.com",
                "https://api.deepseek.com/v1",
            ),
            (
                "openai-compatible",
                "http://127.0.0.1:11434/",
                "http://127.0.0.1:11434",
            ),
        ];
        for (kind, typed, sent) in cases {
            assert_eq!(sent_url(kind, typed), sent, "{kind} {typed}");
        }
        // Left for the control plane to refuse, in its own words.
        assert_eq!(sent_url("openai", "ftp://h"), "ftp://h");
    }

    #[test]
    fn kind_is_one_of_the_supported_kinds_and_help_lists_them_all() {
        for kind in SUPPORTED_KINDS {
            assert_eq!(sent_url(kind, "http://h/v1"), "http://h/v1");
        }
        let err = parse(&[
            "providers",
            "add",
            "p",
            "--kind",
            "smoke",
            "--base-url",
            "http://h",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        for command in ["add", "update"] {
            let help = parse(&["providers", command, "--help"]).unwrap_err();
            assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
            let help = help.render().to_string();
            let listed = format!("[possible values: {}]", SUPPORTED_KINDS.join(", "));
            assert!(help.contains(&listed), "{help}");
        }
    }

    #[test]
    fn expected_version_zero_is_refused() {
        assert!(parse(&["providers", "rm", "x", "--expected-version", "0"]).is_err());
    }

    #[test]
    fn row_and_json() {
        let provider = Provider {
            name: "local".into(),
            kind: "openai-compatible".into(),
            base_url: "http://127.0.0.1:8000/v1".into(),
            timeout_ms: 1500,
            idle_timeout_ms: 20000,
            ..Default::default()
        };
        assert_eq!(
            provider.row(),
            [
                "local",
                "openai-compatible",
                "http://127.0.0.1:8000/v1",
                "-",
                "1500",
                "default",
                "default",
                "20000",
                "enabled"
            ]
        );
        assert_eq!(
            provider.to_json(),
            json!({"name": "local", "kind": "openai-compatible", "base_url": "http://127.0.0.1:8000/v1",
                   "proxy": "", "models": [], "timeout_ms": 1500, "connect_timeout_ms": 0,
                   "first_token_timeout_ms": 0, "idle_timeout_ms": 20000, "disabled": false})
        );
    }
}
