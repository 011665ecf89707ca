//! `tokenrouter policies`: fallback chains of `provider[:model]` tried when an attempt fails, with
//! which failures move on, the backoff between attempts and hedging.

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{
    DeleteRequest, FallbackPolicy, FallbackPolicyWrite, FallbackTarget, ListRequest,
};
use tokenrouter_proto::validate::RETRY_CLASSES;

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
    /// A failure class that moves on to the next target (repeat, or separate with commas; default:
    /// all of them). 400-class errors never move on.
    #[arg(
        long = "retry-on",
        value_name = "CLASS",
        value_delimiter = ',',
        value_parser = PossibleValuesParser::new(RETRY_CLASSES)
    )]
    pub retry_on: Vec<String>,
    /// Base of the exponential backoff (full jitter) between attempts, in milliseconds (default 25).
    #[arg(long = "backoff-base-ms", value_name = "N")]
    pub backoff_base_ms: Option<u32>,
    /// Longest backoff between attempts, in milliseconds (default 1000).
    #[arg(long = "backoff-cap-ms", value_name = "N")]
    pub backoff_cap_ms: Option<u32>,
    /// Hedge: when the first token is later than this many milliseconds, start the next target too
    /// and keep whichever answers first (default: no hedging).
    #[arg(long = "hedge-after-ms", value_name = "N")]
    pub hedge_after_ms: Option<u32>,
    /// Hedge after the target's learned p90 time to first token instead, with --hedge-after-ms as
    /// the floor.
    #[arg(long = "hedge-learned", requires = "hedge_after_ms")]
    pub hedge_learned: bool,
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
                retry_on: self.retry_on,
                backoff_base_ms: self.backoff_base_ms.unwrap_or(0),
                backoff_cap_ms: self.backoff_cap_ms.unwrap_or(0),
                hedge_after_ms: self.hedge_after_ms.unwrap_or(0),
                hedge_learned: self.hedge_learned,
            }),
            expected_version: self.write.proto(),
        }
    }
}

impl Resource for FallbackPolicy {
    const KIND: &'static str = "fallback policy";
    const FIELD: &'static str = "fallback_policies";
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "CHAIN",
        "MAX ATTEMPTS",
        "RETRY ON",
        "BACKOFF MS",
        "HEDGE",
    ];

    fn row(&self) -> Vec<String> {
        let chain: Vec<String> = self.chain.iter().map(format_target).collect();
        let max_attempts = if self.max_attempts == 0 {
            format!("{} (default)", self.chain.len() + 1)
        } else {
            self.max_attempts.to_string()
        };
        let retry_on = if self.retry_on.is_empty() {
            "all".to_string()
        } else {
            self.retry_on.join(",")
        };
        vec![
            self.name.clone(),
            chain.join(" -> "),
            max_attempts,
            retry_on,
            backoff(self.backoff_base_ms, self.backoff_cap_ms),
            hedge(self.hedge_after_ms, self.hedge_learned),
        ]
    }

    fn to_json(&self) -> Value {
        let chain: Vec<Value> = self
            .chain
            .iter()
            .map(|t| json!({ "provider": t.provider, "model": t.model }))
            .collect();
        json!({
            "name": self.name,
            "chain": chain,
            "max_attempts": self.max_attempts,
            "retry_on": self.retry_on,
            "backoff_base_ms": self.backoff_base_ms,
            "backoff_cap_ms": self.backoff_cap_ms,
            "hedge_after_ms": self.hedge_after_ms,
            "hedge_learned": self.hedge_learned,
        })
    }
}

/// The backoff range for a table cell, `BASE..CAP`, with 0 shown as the default it stands for.
fn backoff(base_ms: u32, cap_ms: u32) -> String {
    let ms = |value: u32| {
        if value == 0 {
            "default".to_string()
        } else {
            value.to_string()
        }
    };
    if base_ms == 0 && cap_ms == 0 {
        "default".to_string()
    } else {
        format!("{}..{}", ms(base_ms), ms(cap_ms))
    }
}

/// When the policy hedges, for a table cell: `off`, `after 800ms` or `learned p90, >= 800ms`.
fn hedge(after_ms: u32, learned: bool) -> String {
    match (after_ms, learned) {
        (0, _) => "off".to_string(),
        (ms, false) => format!("after {ms}ms"),
        (ms, true) => format!("learned p90, >= {ms}ms"),
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
    fn retry_backoff_and_hedge_flags() {
        let (_, cmd) = parse(&[
            "policies",
            "update",
            "p",
            "--chain",
            "a",
            "--retry-on",
            "connect",
            "--retry-on",
            "429,5xx",
            "--backoff-base-ms",
            "50",
            "--backoff-cap-ms",
            "2000",
            "--hedge-after-ms",
            "800",
            "--hedge-learned",
            "--expected-version",
            "4",
        ])
        .unwrap();
        let AdminCommand::Policies(PoliciesCmd::Update(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        let write = args.into_write();
        assert_eq!(write.expected_version, 4);
        assert_eq!(
            write.policy.unwrap(),
            FallbackPolicy {
                name: "p".into(),
                chain: vec![target("a", "")],
                max_attempts: 0,
                retry_on: vec!["connect".into(), "429".into(), "5xx".into()],
                backoff_base_ms: 50,
                backoff_cap_ms: 2000,
                hedge_after_ms: 800,
                hedge_learned: true,
            }
        );

        let base = ["policies", "add", "p", "--chain", "a"];
        let with = |extra: &[&str]| parse(&[&base[..], extra].concat());
        assert!(with(&["--retry-on", "4xx"]).is_err());
        assert!(with(&["--retry-on", "timeout,529,malformed"]).is_ok());
        // Learned hedging needs a floor; without one hedging is off.
        assert!(with(&["--hedge-learned"]).is_err());
        assert!(with(&["--backoff-cap-ms", "-1"]).is_err());
    }

    #[test]
    fn chain_is_required_and_checked() {
        assert!(parse(&["policies", "add", "p"]).is_err());
        assert!(parse(&["policies", "update", "p", "--chain", "openai:"]).is_err());
    }

    #[test]
    fn row_and_json() {
        let mut policy = FallbackPolicy {
            name: "cheap".into(),
            chain: vec![target("a", "m1"), target("b", "")],
            max_attempts: 0,
            ..Default::default()
        };
        assert_eq!(
            policy.row(),
            ["cheap", "a:m1 -> b", "3 (default)", "all", "default", "off"]
        );
        assert_eq!(
            policy.to_json(),
            json!({"name": "cheap", "max_attempts": 0,
                   "chain": [{"provider": "a", "model": "m1"}, {"provider": "b", "model": ""}],
                   "retry_on": [], "backoff_base_ms": 0, "backoff_cap_ms": 0,
                   "hedge_after_ms": 0, "hedge_learned": false})
        );

        policy.retry_on = vec!["429".into(), "5xx".into()];
        policy.backoff_cap_ms = 3000;
        policy.hedge_after_ms = 800;
        assert_eq!(
            policy.row()[3..],
            ["429,5xx", "default..3000", "after 800ms"]
        );
        policy.hedge_learned = true;
        assert_eq!(policy.row()[5], "learned p90, >= 800ms");
        assert_eq!(backoff(50, 0), "50..default");
        assert_eq!(policy.to_json()["retry_on"], json!(["429", "5xx"]));
    }
}
