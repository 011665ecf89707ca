//! `tokenrouter rules`: routing rules that send requests for matching models to a provider.

use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{DeleteRequest, ListRequest, RoutingRule, RoutingRuleWrite};

use super::WriteOpts;
use super::client::{Client, call, write};
use super::output::{Action, Printer, Resource, or_dash};

/// `rules` subcommands.
#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// List routing rules in the order they are tried.
    List,
    /// Add a routing rule.
    Add(RuleArgs),
    /// Replace a routing rule with the given settings.
    Update(RuleArgs),
    /// Remove a routing rule.
    Rm {
        /// Name of the rule.
        name: String,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// The full settings of one routing rule.
#[derive(Args, Debug, PartialEq, Eq)]
pub struct RuleArgs {
    /// Unique name.
    pub name: String,
    /// Requested model to match: an exact name or a glob with '*' (e.g. "gpt-4*", "*").
    #[arg(long = "model", value_name = "GLOB")]
    pub match_model: String,
    /// Provider (by name) that serves matching requests.
    #[arg(long = "provider", value_name = "P")]
    pub target_provider: String,
    /// Model name sent upstream (default: the requested model).
    #[arg(long = "target-model", value_name = "M")]
    pub target_model: Option<String>,
    /// Lower values are tried first; ties are broken by name.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub priority: i32,
    /// Fallback policy (by name) tried after the target fails with a retryable error.
    #[arg(long = "fallback", value_name = "POLICY")]
    pub fallback_policy: Option<String>,
    #[command(flatten)]
    pub write: WriteOpts,
}

impl RuleArgs {
    /// The write request these flags describe.
    fn into_write(self) -> RoutingRuleWrite {
        RoutingRuleWrite {
            rule: Some(RoutingRule {
                name: self.name,
                priority: self.priority,
                match_model: self.match_model,
                target_provider: self.target_provider,
                target_model: self.target_model.unwrap_or_default(),
                fallback_policy: self.fallback_policy.unwrap_or_default(),
                ..Default::default()
            }),
            expected_version: self.write.proto(),
        }
    }
}

impl Resource for RoutingRule {
    const KIND: &'static str = "routing rule";
    const FIELD: &'static str = "routing_rules";
    const HEADERS: &'static [&'static str] = &[
        "PRIORITY",
        "NAME",
        "MODEL",
        "PROVIDER",
        "TARGET MODEL",
        "FALLBACK",
    ];

    fn row(&self) -> Vec<String> {
        vec![
            self.priority.to_string(),
            self.name.clone(),
            self.match_model.clone(),
            self.target_provider.clone(),
            or_dash(&self.target_model),
            or_dash(&self.fallback_policy),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "priority": self.priority,
            "match_model": self.match_model,
            "target_provider": self.target_provider,
            "target_model": self.target_model,
            "fallback_policy": self.fallback_policy,
        })
    }
}

/// Sorts rules into evaluation order: priority, then name.
fn evaluation_order(rules: &mut [RoutingRule]) {
    rules.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
}

/// Runs one `rules` subcommand.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: RulesCmd,
) -> anyhow::Result<()> {
    match cmd {
        RulesCmd::List => {
            let mut response = call(client.list_routing_rules(ListRequest {})).await?;
            evaluation_order(&mut response.rules);
            printer.list(&response.rules, response.version)
        }
        RulesCmd::Add(args) => {
            let name = args.name.clone();
            let rpc = client.create_routing_rule(args.into_write());
            write(printer, Action::Created, RoutingRule::KIND, &name, rpc).await
        }
        RulesCmd::Update(args) => {
            let name = args.name.clone();
            let rpc = client.update_routing_rule(args.into_write());
            write(printer, Action::Updated, RoutingRule::KIND, &name, rpc).await
        }
        RulesCmd::Rm { name, write: opts } => {
            let request = DeleteRequest {
                name: name.clone(),
                expected_version: opts.proto(),
            };
            let rpc = client.delete_routing_rule(request);
            write(printer, Action::Deleted, RoutingRule::KIND, &name, rpc).await
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::admin::AdminCommand;
    use crate::admin::tests::parse;

    fn rule_write(argv: &[&str]) -> RoutingRuleWrite {
        match parse(argv).unwrap().1 {
            AdminCommand::Rules(RulesCmd::Add(args))
            | AdminCommand::Rules(RulesCmd::Update(args)) => args.into_write(),
            other => panic!("wrong command: {other:?}"),
        }
    }

    #[test]
    fn add_parses_every_flag_including_a_negative_priority() {
        let write = rule_write(&[
            "rules",
            "add",
            "gpt4",
            "--model",
            "gpt-4*",
            "--provider",
            "openai",
            "--target-model",
            "gpt-4o",
            "--priority",
            "-5",
            "--fallback",
            "cheap",
            "--expected-version",
            "2",
        ]);
        assert_eq!(write.expected_version, 2);
        assert_eq!(
            write.rule.unwrap(),
            RoutingRule {
                name: "gpt4".into(),
                priority: -5,
                match_model: "gpt-4*".into(),
                target_provider: "openai".into(),
                target_model: "gpt-4o".into(),
                fallback_policy: "cheap".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn model_and_provider_are_required() {
        assert!(parse(&["rules", "add", "r", "--model", "*"]).is_err());
        assert!(parse(&["rules", "update", "r", "--provider", "p"]).is_err());
        let rule = rule_write(&["rules", "update", "r", "--model", "*", "--provider", "p"])
            .rule
            .unwrap();
        assert_eq!(
            (
                rule.priority,
                rule.target_model.as_str(),
                rule.fallback_policy.as_str()
            ),
            (0, "", "")
        );
    }

    #[test]
    fn list_is_in_evaluation_order_with_dashes_for_blanks() {
        let rule = |name: &str, priority| RoutingRule {
            name: name.into(),
            priority,
            match_model: "*".into(),
            target_provider: "p".into(),
            ..Default::default()
        };
        let mut rules = vec![rule("b", 1), rule("z", -1), rule("a", 1)];
        evaluation_order(&mut rules);
        let names: Vec<_> = rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["z", "a", "b"]);
        assert_eq!(rules[0].row(), ["-1", "z", "*", "p", "-", "-"]);
        assert_eq!(rules[0].to_json()["priority"], -1);
    }
}
