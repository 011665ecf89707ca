//! `tokenrouter policies`: fallback chains of `provider[:model]` tried when an attempt fails.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{
    DeleteRequest, FallbackPolicy, FallbackPolicyWrite, FallbackTarget, ListRequest,
};

use super::WriteOpts;
use super::client::{Client, call, write};
use super::output::{Action, Printer, Resource};

/// `policies` subcommands.
#[derive(Subcommand, Debug)]
pub enum PoliciesCmd {
    /// List fallback policies.
    List,
    /// Add a fallback policy.
    Add(PolicyArgs),
    /// Replace a fallback policy with the given settings.
    Update(PolicyArgs),
    /// Remove a fallback policy.
    Rm {
        /// Name of the policy.
        name: String,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// The full settings of one fallback policy.
#[derive(Args, Debug, PartialEq)]
pub struct PolicyArgs {
    /// Unique name.
    pub name: String,
    /// Targets in the order they are tried, as PROVIDER or PROVIDER:MODEL (repeat, or separate with
    /// commas or spaces). Without a model the requested model is kept.
    #[arg(
        long,
        value_name = "PROVIDER[:MODEL]",
        required = true,
        num_args = 1..,
        value_delimiter = ',',
        value_parser = parse_target
    )]
    pub chain: Vec<FallbackTarget>,
    /// Most attempts for one request, the first included (default: one per target, plus one).
    #[arg(long = "max-attempts", value_name = "N")]
    pub max_attempts: Option<u32>,
    #[command(flatten)]
    pub write: WriteOpts,
}

/// Parses one chain step, `provider` or `provider:model`. Only the first ':' separates, because model
/// names may contain colons themselves (`ollama:llama3:8b` is model `llama3:8b`).
pub(super) fn parse_target(text: &str) -> Result<FallbackTarget, String> {
    let text = text.trim();
    let (provider, model) = match text.split_once(':') {
        Some((provider, model)) => (provider, Some(model)),
        None => (text, None),
    };
    if provider.is_empty() {
        return Err(format!("{text:?}: the provider name is empty"));
    }
    if model == Some("") {
        return Err(format!(
            "{text:?}: the model after ':' is empty (leave out ':' to keep the requested model)"
        ));
    }
    Ok(FallbackTarget {
        provider: provider.to_string(),
        model: model.unwrap_or_default().to_string(),
    })
}

/// A chain step as people write it: `provider` or `provider:model`.
fn format_target(target: &FallbackTarget) -> String {
    if target.model.is_empty() {
        target.provider.clone()
    } else {
        format!("{}:{}", target.provider, target.model)
    }
}

impl PolicyArgs {
    /// The write request these flags describe.
    fn into_write(self) -> FallbackPolicyWrite {
        FallbackPolicyWrite {
            policy: Some(FallbackPolicy {
                name: self.name,
                chain: self.chain,
                max_attempts: self.max_attempts.unwrap_or(0),
                ..Default::default()
            }),
            expected_version: self.write.proto(),
        }
    }
}

impl Resource for FallbackPolicy {
    const KIND: &'static str = "fallback policy";
    const FIELD: &'static str = "fallback_policies";
    const HEADERS: &'static [&'static str] = &["NAME", "CHAIN", "MAX ATTEMPTS"];

    fn row(&self) -> Vec<String> {
        let chain: Vec<String> = self.chain.iter().map(format_target).collect();
        let max_attempts = if self.max_attempts == 0 {
            format!("{} (default)", self.chain.len() + 1)
        } else {
            self.max_attempts.to_string()
        };
        vec![self.name.clone(), chain.join(" -> "), max_attempts]
    }

    fn to_json(&self) -> Value {
        let chain: Vec<Value> = self
            .chain
            .iter()
            .map(|t| json!({ "provider": t.provider, "model": t.model }))
            .collect();
        json!({ "name": self.name, "chain": chain, "max_attempts": self.max_attempts })
    }
}

/// Runs one `policies` subcommand.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: PoliciesCmd,
) -> anyhow::Result<()> {
    match cmd {
        PoliciesCmd::List => {
            let response = call(client.list_fallback_policies(ListRequest {})).await?;
            printer.list(&response.policies, response.version)
        }
        PoliciesCmd::Add(args) => {
            let name = args.name.clone();
            let rpc = client.create_fallback_policy(args.into_write());
            write(printer, Action::Created, FallbackPolicy::KIND, &name, rpc).await
        }
        PoliciesCmd::Update(args) => {
            let name = args.name.clone();
            let rpc = client.update_fallback_policy(args.into_write());
            write(printer, Action::Updated, FallbackPolicy::KIND, &name, rpc).await
        }
        PoliciesCmd::Rm { name, write: opts } => {
            let request = DeleteRequest {
                name: name.clone(),
                expected_version: opts.proto(),
            };
            let rpc = client.delete_fallback_policy(request);
            write(printer, Action::Deleted, FallbackPolicy::KIND, &name, rpc).await
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::admin::AdminCommand;
    use crate::admin::tests::parse;

    fn target(provider: &str, model: &str) -> FallbackTarget {
        FallbackTarget {
            provider: provider.into(),
            model: model.into(),
        }
    }

    #[test]
    fn chain_steps_split_at_the_first_colon() {
        assert_eq!(parse_target("openai"), Ok(target("openai", "")));
        assert_eq!(
            parse_target("openai:gpt-4o"),
            Ok(target("openai", "gpt-4o"))
        );
        assert_eq!(
            parse_target("ollama:llama3:8b"),
            Ok(target("ollama", "llama3:8b"))
        );
        assert_eq!(parse_target(" mistral "), Ok(target("mistral", "")));
        assert!(parse_target("").is_err());
        assert!(parse_target(":gpt-4o").is_err());
        assert!(
            parse_target("openai:")
                .unwrap_err()
                .contains("model after ':' is empty")
        );
    }

    #[test]
    fn chain_accepts_repeats_spaces_and_commas_in_order() {
        let (_, cmd) = parse(&[
            "policies",
            "add",
            "cheap",
            "--chain",
            "a:m1",
            "b",
            "--chain",
            "c:m3,d",
            "--max-attempts",
            "3",
        ])
        .unwrap();
        let AdminCommand::Policies(PoliciesCmd::Add(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        let policy = args.into_write().policy.unwrap();
        assert_eq!(
            policy.chain,
            [
                target("a", "m1"),
                target("b", ""),
                target("c", "m3"),
                target("d", "")
            ]
        );
        assert_eq!(policy.max_attempts, 3);
    }

    #[test]
    fn chain_is_required_and_checked() {
        assert!(parse(&["policies", "add", "p"]).is_err());
        assert!(parse(&["policies", "update", "p", "--chain", "openai:"]).is_err());
    }

    #[test]
    fn row_and_json() {
        let policy = FallbackPolicy {
            name: "cheap".into(),
            chain: vec![target("a", "m1"), target("b", "")],
            max_attempts: 0,
            ..Default::default()
        };
        assert_eq!(policy.row(), ["cheap", "a:m1 -> b", "3 (default)"]);
        assert_eq!(
            policy.to_json(),
            json!({"name": "cheap", "max_attempts": 0,
                   "chain": [{"provider": "a", "model": "m1"}, {"provider": "b", "model": ""}]})
        );
    }
}
