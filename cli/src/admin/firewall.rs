//! `tokenrouter firewall`: list, add, replace and remove content-filter rules, and dry-run them on
//! a text (`test`: which rules apply to a key, what they find, what the text becomes).

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_data_plane::firewall::{self, Audit, Direction, Firewall};
use tokenrouter_proto::v1::{DeleteRequest, FirewallRule, FirewallRuleWrite, ListRequest};
use tokenrouter_proto::validate::{FIREWALL_ACTIONS, FIREWALL_DETECTORS, FIREWALL_DIRECTIONS};

use super::WriteOpts;
use super::client::{Client, call, write};
use super::output::{Action, Printer, Resource, or_dash};

/// `firewall` subcommands.
#[derive(Subcommand, Debug)]
pub enum FirewallCmd {
    /// List the rules; with --key, only those that apply to that key, most specific first.
    List {
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
    },
    /// Add a rule.
    Add(RuleArgs),
    /// Replace a rule with the given settings.
    Update(RuleArgs),
    /// Remove a rule.
    Rm {
        name: String,
        #[command(flatten)]
        write: WriteOpts,
    },
    /// Dry run: what the rules that apply to a key (and model) do to a text, without sending it
    /// anywhere.
    Test {
        #[arg(long, value_name = "KEY")]
        key: String,
        #[arg(long, value_name = "MODEL", default_value = "")]
        model: String,
        /// Check the rules for answers rather than for requests.
        #[arg(long)]
        output: bool,
        #[arg(long)]
        text: String,
    },
}

/// One rule's settings.
#[derive(Args, Debug)]
pub struct RuleArgs {
    pub name: String,
    /// Built-in detectors, comma-separated.
    #[arg(long = "detector", value_delimiter = ',', value_parser = PossibleValuesParser::new(FIREWALL_DETECTORS.iter().copied()))]
    pub detectors: Vec<String>,
    /// A custom regular expression (repeatable).
    #[arg(long = "regex", value_name = "PATTERN")]
    pub regexes: Vec<String>,
    /// A word or phrase, matched case-insensitively on word boundaries (repeatable).
    #[arg(long = "keyword", value_name = "WORD")]
    pub keywords: Vec<String>,
    /// What to do with a match (default `flag`: record it and let it pass).
    #[arg(long, default_value = "flag", value_parser = PossibleValuesParser::new(FIREWALL_ACTIONS.iter().copied()))]
    pub action: String,
    #[arg(long, default_value = "both", value_parser = PossibleValuesParser::new(FIREWALL_DIRECTIONS.iter().copied()))]
    pub direction: String,
    /// Only for this API key (repeatable; default every key).
    #[arg(long = "match-key", value_name = "KEY")]
    pub match_keys: Vec<String>,
    /// Only for requested models matching this glob (repeatable; default every model).
    #[arg(long = "model", value_name = "GLOB")]
    pub models: Vec<String>,
    #[arg(long)]
    pub disabled: bool,
    #[command(flatten)]
    pub write: WriteOpts,
}

impl RuleArgs {
    fn into_write(self) -> FirewallRuleWrite {
        FirewallRuleWrite {
            rule: Some(FirewallRule {
                name: self.name,
                detectors: self.detectors,
                regexes: self.regexes,
                keywords: self.keywords,
                action: self.action,
                direction: self.direction,
                match_api_keys: self.match_keys,
                match_models: self.models,
                disabled: self.disabled,
            }),
            expected_version: self.write.proto(),
        }
    }
}

impl Resource for FirewallRule {
    const KIND: &'static str = "firewall rule";
    const FIELD: &'static str = "firewall_rules";
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "FINDS",
        "ACTION",
        "DIRECTION",
        "KEYS",
        "MODELS",
        "STATUS",
    ];

    fn row(&self) -> Vec<String> {
        let mut finds = self.detectors.clone();
        finds.extend(self.regexes.iter().map(|_| "regex".to_string()));
        finds.extend(self.keywords.iter().map(|_| "keyword".to_string()));
        finds.dedup();
        vec![
            self.name.clone(),
            finds.join(","),
            self.action.clone(),
            self.direction.clone(),
            or_dash(&self.match_api_keys.join(",")),
            or_dash(&self.match_models.join(",")),
            if self.disabled { "disabled" } else { "enabled" }.to_string(),
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "detectors": self.detectors,
            "regexes": self.regexes,
            "keywords": self.keywords,
            "action": self.action,
            "direction": self.direction,
            "match_api_keys": self.match_api_keys,
            "match_models": self.match_models,
            "disabled": self.disabled,
        })
    }
}

/// The rules that apply to `key` (any model), in the order the data plane applies them.
fn applying(rules: &[FirewallRule], key: &str) -> Vec<FirewallRule> {
    let Ok(fw) = Firewall::compile(rules) else {
        return Vec::new();
    };
    fw.rules
        .iter()
        .filter(|r| r.applies_to_key(key))
        .filter_map(|r| rules.iter().find(|x| x.name == r.name).cloned())
        .collect()
}

/// Runs one `firewall` subcommand.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: FirewallCmd,
) -> anyhow::Result<()> {
    match cmd {
        FirewallCmd::List { key } => {
            let response = call(client.list_firewall_rules(ListRequest {})).await?;
            let rules = match key {
                Some(k) => applying(&response.rules, &k),
                None => response.rules,
            };
            printer.list(&rules, response.version)
        }
        FirewallCmd::Add(args) => {
            let name = args.name.clone();
            let rpc = client.create_firewall_rule(args.into_write());
            write(printer, Action::Created, FirewallRule::KIND, &name, rpc).await
        }
        FirewallCmd::Update(args) => {
            let name = args.name.clone();
            let rpc = client.update_firewall_rule(args.into_write());
            write(printer, Action::Updated, FirewallRule::KIND, &name, rpc).await
        }
        FirewallCmd::Rm { name, write: opts } => {
            let rpc = client.delete_firewall_rule(DeleteRequest {
                name: name.clone(),
                expected_version: opts.proto(),
            });
            write(printer, Action::Deleted, FirewallRule::KIND, &name, rpc).await
        }
        FirewallCmd::Test {
            key,
            model,
            output,
            text,
        } => {
            let response = call(client.list_firewall_rules(ListRequest {})).await?;
            let fw = Firewall::compile(&response.rules)?;
            let direction = if output {
                Direction::Output
            } else {
                Direction::Input
            };
            let mut audit = Audit::default();
            let mut result = text;
            let outcome = match firewall::active(&fw, direction, &key, &model) {
                None => Ok(()),
                Some(active) => {
                    firewall::filter_text(&fw, &active, direction, &mut result, &mut audit)
                }
            };
            let (verdict, blocked) = match &outcome {
                Ok(()) if audit.events.is_empty() => ("passes".to_string(), Value::Null),
                Ok(()) => ("passes, changed as shown".to_string(), Value::Null),
                Err(b) => (
                    format!("blocked by {} ({})", b.rule, b.detector),
                    json!({"rule": b.rule, "detector": b.detector}),
                ),
            };
            let events: Vec<Value> = audit
                .events
                .iter()
                .map(|e| json!({"rule": e.rule, "detector": e.detector, "action": e.action.as_str(), "count": e.count}))
                .collect();
            if printer.json() {
                let text = if outcome.is_ok() {
                    json!(result)
                } else {
                    Value::Null
                };
                return printer
                    .value(&json!({"blocked": blocked, "matches": events, "text": text}));
            }
            let mut out = String::new();
            for e in &audit.events {
                out.push_str(&format!(
                    "{}: {} x{} ({})\n",
                    e.rule,
                    e.detector,
                    e.count,
                    e.action.as_str()
                ));
            }
            out.push_str(&format!("{verdict}\n"));
            if outcome.is_ok() {
                out.push_str(&format!("text: {result}\n"));
            }
            printer.text(&out)
        }
    }
}
