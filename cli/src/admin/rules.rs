//! `tokenrouter rules`: routing rules that send matching requests to a provider, spread them over
//! weighted targets, hand them to an auto mode, or refuse them.

use clap::builder::PossibleValuesParser;
use clap::{ArgGroup, Args, Subcommand};
use tokenrouter_proto::v1::{
    DeleteRequest, KeyGlob, ListRequest, RoutingRule, RoutingRuleWrite, WeightedTarget,
};
use tokenrouter_proto::validate::AUTO_MODES;

use super::WriteOpts;
use super::client::{Client, call, write};
use super::output::{Action, Printer, Resource};
use super::rule_format::{parse_key_glob, parse_weighted_target};

/// `rules` subcommands. The rule settings are boxed: they are large, and every enum they would sit in
/// inline (up to the binary's top-level command) would grow to their size.
#[derive(Subcommand, Debug)]
pub enum RulesCmd {
    /// List routing rules in the order they are tried.
    List,
    /// Add a routing rule.
    Add(Box<RuleArgs>),
    /// Replace a routing rule with the given settings.
    Update(Box<RuleArgs>),
    /// Remove a routing rule.
    Rm {
        /// Name of the rule.
        name: String,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// The full settings of one routing rule. All the conditions that are set must hold; the rule then
/// does exactly one thing: `--provider`, `--target`, `--mode` or `--deny`.
#[derive(Args, Debug, PartialEq, Eq)]
#[command(group(ArgGroup::new("action").required(true).multiple(false)))]
pub struct RuleArgs {
    /// Unique name.
    pub name: String,
    /// Requested model to match: an exact name or a glob with '*' (e.g. "gpt-4*", "*").
    #[arg(long = "model", value_name = "GLOB")]
    pub match_model: String,
    /// Only for these API keys, by name (repeat, or separate with commas; default: any key).
    #[arg(long = "match-key", value_name = "NAME", value_delimiter = ',')]
    pub match_api_keys: Vec<String>,
    /// Only when this request header is present and matches the glob (repeat for several).
    #[arg(long = "match-header", value_name = "NAME=GLOB", value_parser = parse_key_glob)]
    pub match_headers: Vec<KeyGlob>,
    /// Only when this field of the metadata object sent in `user` matches the glob (repeat for
    /// several).
    #[arg(long = "match-metadata", value_name = "KEY=GLOB", value_parser = parse_key_glob)]
    pub match_metadata: Vec<KeyGlob>,
    /// Only for requests with (yes) or without (no) tools.
    #[arg(long = "has-tools", value_name = "YES|NO", value_parser = YES_NO)]
    pub match_has_tools: Option<String>,
    /// Only for requests that do (yes) or do not (no) ask for JSON output.
    #[arg(long = "wants-json", value_name = "YES|NO", value_parser = YES_NO)]
    pub match_wants_json: Option<String>,
    /// Only for streamed (yes) or non-streamed (no) requests.
    #[arg(long = "stream", value_name = "YES|NO", value_parser = YES_NO)]
    pub match_stream: Option<String>,
    /// Action: send matching requests to this provider (by name).
    #[arg(long = "provider", value_name = "P", group = "action")]
    pub target_provider: Option<String>,
    /// Model name sent upstream with --provider (default: the requested model).
    #[arg(
        long = "target-model",
        value_name = "M",
        conflicts_with_all = ["targets", "mode", "deny"]
    )]
    pub target_model: Option<String>,
    /// Action: spread matching requests over weighted targets (repeat, or separate with commas;
    /// weight 1 when left out, the last '=' separates it).
    #[arg(
        long = "target",
        value_name = "PROVIDER[:MODEL][=WEIGHT]",
        value_delimiter = ',',
        value_parser = parse_weighted_target,
        group = "action"
    )]
    pub targets: Vec<WeightedTarget>,
    /// Action: let an auto mode pick the provider and model.
    #[arg(
        long,
        value_name = "MODE",
        value_parser = PossibleValuesParser::new(AUTO_MODES),
        group = "action"
    )]
    pub mode: Option<String>,
    /// Action: refuse matching requests with 403.
    #[arg(long, group = "action")]
    pub deny: bool,
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

/// The values of the request-feature conditions.
const YES_NO: [&str; 2] = ["yes", "no"];

impl RuleArgs {
    /// The write request these flags describe.
    fn into_write(self) -> RoutingRuleWrite {
        RoutingRuleWrite {
            rule: Some(RoutingRule {
                name: self.name,
                priority: self.priority,
                match_model: self.match_model,
                target_provider: self.target_provider.unwrap_or_default(),
                target_model: self.target_model.unwrap_or_default(),
                fallback_policy: self.fallback_policy.unwrap_or_default(),
                match_api_keys: self.match_api_keys,
                match_headers: self.match_headers,
                match_metadata: self.match_metadata,
                match_has_tools: self.match_has_tools.unwrap_or_default(),
                match_wants_json: self.match_wants_json.unwrap_or_default(),
                match_stream: self.match_stream.unwrap_or_default(),
                targets: self.targets,
                mode: self.mode.unwrap_or_default(),
                deny: self.deny,
            }),
            expected_version: self.write.proto(),
        }
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

    /// `rules add r --model *` followed by `extra`.
    fn parse_rule(extra: &[&str]) -> Result<RoutingRule, clap::Error> {
        let argv: Vec<&str> = ["rules", "add", "r", "--model", "*"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let (_, cmd) = parse(&argv)?;
        let AdminCommand::Rules(RulesCmd::Add(args)) = cmd else {
            panic!("wrong command: {cmd:?}");
        };
        Ok(args.into_write().rule.unwrap_or_default())
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
            "--match-key",
            "ci",
            "--match-key",
            "ops,dev",
            "--match-header",
            "x-team=ml*",
            "--match-header",
            "x-env=prod",
            "--match-metadata",
            "tier=gold",
            "--has-tools",
            "yes",
            "--wants-json",
            "no",
            "--stream",
            "yes",
            "--expected-version",
            "2",
        ]);
        assert_eq!(write.expected_version, 2);
        let glob = |key: &str, glob: &str| KeyGlob {
            key: key.into(),
            glob: glob.into(),
        };
        assert_eq!(
            write.rule.unwrap(),
            RoutingRule {
                name: "gpt4".into(),
                priority: -5,
                match_model: "gpt-4*".into(),
                target_provider: "openai".into(),
                target_model: "gpt-4o".into(),
                fallback_policy: "cheap".into(),
                match_api_keys: vec!["ci".into(), "ops".into(), "dev".into()],
                match_headers: vec![glob("x-team", "ml*"), glob("x-env", "prod")],
                match_metadata: vec![glob("tier", "gold")],
                match_has_tools: "yes".into(),
                match_wants_json: "no".into(),
                match_stream: "yes".into(),
                targets: Vec::new(),
                mode: String::new(),
                deny: false,
            }
        );
    }

    #[test]
    fn model_and_exactly_one_action_are_required() {
        assert!(parse(&["rules", "update", "r", "--provider", "p"]).is_err());
        let none = parse_rule(&[]).unwrap_err().to_string();
        assert!(
            none.contains("--provider") && none.contains("--deny"),
            "{none}"
        );
        let several = parse_rule(&["--provider", "p", "--mode", "auto:fast"])
            .unwrap_err()
            .to_string();
        assert!(several.contains("cannot be used with"), "{several}");
        assert!(parse_rule(&["--deny", "--target", "a"]).is_err());

        let rule = rule_write(&["rules", "update", "r", "--model", "*", "--provider", "p"])
            .rule
            .unwrap();
        assert_eq!(
            (
                rule.priority,
                rule.target_model.as_str(),
                rule.fallback_policy.as_str(),
                rule.match_has_tools.as_str(),
            ),
            (0, "", "", "")
        );
        assert!(rule.match_api_keys.is_empty() && rule.match_headers.is_empty());
    }

    #[test]
    fn weighted_targets_repeat_and_split_on_commas() {
        let rule = parse_rule(&["--target", "a:m1=3,b", "--target", "c=2"]).unwrap();
        let weighted = |provider: &str, model: &str, weight| WeightedTarget {
            provider: provider.into(),
            model: model.into(),
            weight,
        };
        assert_eq!(
            rule.targets,
            [
                weighted("a", "m1", 3),
                weighted("b", "", 1),
                weighted("c", "", 2)
            ]
        );
        assert!(rule.target_provider.is_empty() && rule.mode.is_empty() && !rule.deny);
        assert!(parse_rule(&["--target", "a=0"]).is_err());
        // --target-model only goes with --provider.
        assert!(parse_rule(&["--target", "a", "--target-model", "m"]).is_err());
        assert!(parse_rule(&["--deny", "--target-model", "m"]).is_err());
        assert!(parse_rule(&["--target-model", "m"]).is_err());
    }

    #[test]
    fn mode_deny_and_feature_conditions_are_checked() {
        assert_eq!(
            parse_rule(&["--mode", "auto:cost"]).unwrap().mode,
            "auto:cost"
        );
        assert!(parse_rule(&["--mode", "auto:cheap"]).is_err());
        assert!(parse_rule(&["--deny"]).unwrap().deny);
        assert!(parse_rule(&["--deny", "--has-tools", "maybe"]).is_err());
        assert!(parse_rule(&["--deny", "--stream"]).is_err());
        assert!(parse_rule(&["--deny", "--match-header", "x-team"]).is_err());
        assert!(parse_rule(&["--deny", "--match-metadata", "tier="]).is_err());
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
        assert_eq!(rules[0].row(), ["-1", "z", "*", "-", "provider p", "-"]);
        assert_eq!(rules[0].to_json()["priority"], -1);
    }
}
