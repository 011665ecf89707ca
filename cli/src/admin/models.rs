//! `tokenrouter models`: catalog entries (prices, limits, capabilities, quality) that override a
//! built-in entry with the same kind and model, or add a model the built-in catalog lacks.

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use tokenrouter_proto::v1::{DeleteRequest, ListRequest, ModelEntry, ModelWrite};
use tokenrouter_proto::validate::CAPABILITIES;

use super::WriteOpts;
use super::client::{Client, call, write};
use super::output::{Action, Printer, Resource, or_dash};

/// `models` subcommands.
#[derive(Subcommand, Debug)]
pub enum ModelsCmd {
    /// List catalog entries (the built-in catalog is not included).
    List,
    /// Add a catalog entry.
    Add(ModelArgs),
    /// Replace a catalog entry with the given settings (flags left out take their defaults).
    Update(ModelArgs),
    /// Remove a catalog entry.
    Rm {
        /// Name of the entry.
        name: String,
        #[command(flatten)]
        write: WriteOpts,
    },
}

/// The full settings of one catalog entry.
#[derive(Args, Debug, PartialEq)]
pub struct ModelArgs {
    /// Unique name, e.g. openai-gpt-4o.
    pub name: String,
    /// The provider kind the entry applies to: openai, anthropic, gemini, mistral, deepseek or
    /// openai-compatible.
    #[arg(long)]
    pub kind: String,
    /// The model name as the provider knows it.
    #[arg(long, value_name = "M")]
    pub model: String,
    /// Input price in USD per million tokens (default 0).
    #[arg(long = "input-price", value_name = "USD")]
    pub input_per_mtok: Option<f64>,
    /// Output price in USD per million tokens (default 0).
    #[arg(long = "output-price", value_name = "USD")]
    pub output_per_mtok: Option<f64>,
    /// Cached input price in USD per million tokens (default 0).
    #[arg(long = "cached-input-price", value_name = "USD")]
    pub cached_input_per_mtok: Option<f64>,
    /// Most prompt plus output tokens the model accepts (default: unknown).
    #[arg(long = "context-window", value_name = "N")]
    pub context_window: Option<u32>,
    /// Most output tokens per answer (default: unknown).
    #[arg(long = "max-output", value_name = "N")]
    pub max_output: Option<u32>,
    /// Something the model supports (repeat, or separate with commas).
    #[arg(
        long = "capability",
        value_name = "C",
        value_delimiter = ',',
        value_parser = PossibleValuesParser::new(CAPABILITIES)
    )]
    pub capabilities: Vec<String>,
    /// Relative quality score, 0 to 100 (default 0).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100))]
    pub quality: Option<u32>,
    /// Where the quality score comes from, e.g. a benchmark and its date.
    #[arg(long = "quality-source", value_name = "TEXT")]
    pub quality_source: Option<String>,
    /// Time to first token for this model, overriding its provider's (ms; default: the provider's).
    #[arg(long = "first-token-timeout-ms", value_name = "N")]
    pub first_token_timeout_ms: Option<u32>,
    /// Longest silence inside a stream for this model (ms; default: the provider's).
    #[arg(long = "idle-timeout-ms", value_name = "N")]
    pub idle_timeout_ms: Option<u32>,
    /// Total time for one attempt with this model (ms; default: the provider's).
    #[arg(long = "timeout-ms", value_name = "N")]
    pub timeout_ms: Option<u32>,
    #[command(flatten)]
    pub write: WriteOpts,
}

impl ModelArgs {
    /// The write request these flags describe.
    fn into_write(self) -> ModelWrite {
        ModelWrite {
            model: Some(ModelEntry {
                name: self.name,
                kind: self.kind,
                model: self.model,
                input_per_mtok: self.input_per_mtok.unwrap_or(0.0),
                output_per_mtok: self.output_per_mtok.unwrap_or(0.0),
                cached_input_per_mtok: self.cached_input_per_mtok.unwrap_or(0.0),
                context_window: self.context_window.unwrap_or(0),
                max_output: self.max_output.unwrap_or(0),
                capabilities: self.capabilities,
                quality: self.quality.unwrap_or(0),
                quality_source: self.quality_source.unwrap_or_default(),
                first_token_timeout_ms: self.first_token_timeout_ms.unwrap_or(0),
                idle_timeout_ms: self.idle_timeout_ms.unwrap_or(0),
                timeout_ms: self.timeout_ms.unwrap_or(0),
            }),
            expected_version: self.write.proto(),
        }
    }
}

/// A token count for a table cell, with 0 shown as `-` (unknown).
fn tokens(value: u32) -> String {
    if value == 0 {
        "-".to_string()
    } else {
        value.to_string()
    }
}

impl Resource for ModelEntry {
    const KIND: &'static str = "model";
    const FIELD: &'static str = "models";
    const HEADERS: &'static [&'static str] = &[
        "NAME",
        "KIND",
        "MODEL",
        "INPUT $/M",
        "OUTPUT $/M",
        "CACHED $/M",
        "CONTEXT",
        "MAX OUTPUT",
        "CAPABILITIES",
        "QUALITY",
    ];

    fn row(&self) -> Vec<String> {
        let quality = if self.quality_source.is_empty() {
            self.quality.to_string()
        } else {
            format!("{} ({})", self.quality, self.quality_source)
        };
        vec![
            self.name.clone(),
            self.kind.clone(),
            self.model.clone(),
            self.input_per_mtok.to_string(),
            self.output_per_mtok.to_string(),
            self.cached_input_per_mtok.to_string(),
            tokens(self.context_window),
            tokens(self.max_output),
            or_dash(&self.capabilities.join(",")),
            quality,
        ]
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "kind": self.kind,
            "model": self.model,
            "input_per_mtok": self.input_per_mtok,
            "output_per_mtok": self.output_per_mtok,
            "cached_input_per_mtok": self.cached_input_per_mtok,
            "context_window": self.context_window,
            "max_output": self.max_output,
            "capabilities": self.capabilities,
            "quality": self.quality,
            "quality_source": self.quality_source,
            "first_token_timeout_ms": self.first_token_timeout_ms,
            "idle_timeout_ms": self.idle_timeout_ms,
            "timeout_ms": self.timeout_ms,
        })
    }
}

/// Runs one `models` subcommand.
pub(super) async fn run(
    client: &mut Client,
    printer: &mut Printer<'_>,
    cmd: ModelsCmd,
) -> anyhow::Result<()> {
    match cmd {
        ModelsCmd::List => {
            let response = call(client.list_models(ListRequest {})).await?;
            printer.list(&response.models, response.version)
        }
        ModelsCmd::Add(args) => {
            let name = args.name.clone();
            let rpc = client.create_model(args.into_write());
            write(printer, Action::Created, ModelEntry::KIND, &name, rpc).await
        }
        ModelsCmd::Update(args) => {
            let name = args.name.clone();
            let rpc = client.update_model(args.into_write());
            write(printer, Action::Updated, ModelEntry::KIND, &name, rpc).await
        }
        ModelsCmd::Rm { name, write: opts } => {
            let request = DeleteRequest {
                name: name.clone(),
                expected_version: opts.proto(),
            };
            let rpc = client.delete_model(request);
            write(printer, Action::Deleted, ModelEntry::KIND, &name, rpc).await
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::admin::AdminCommand;
    use crate::admin::tests::parse;

    fn model_write(argv: &[&str]) -> Result<ModelWrite, clap::Error> {
        match parse(argv)?.1 {
            AdminCommand::Models(ModelsCmd::Add(args))
            | AdminCommand::Models(ModelsCmd::Update(args)) => Ok(args.into_write()),
            other => panic!("wrong command: {other:?}"),
        }
    }

    #[test]
    fn add_parses_every_flag() {
        let write = model_write(&[
            "models",
            "add",
            "openai-gpt-4o",
            "--kind",
            "openai",
            "--model",
            "gpt-4o",
            "--input-price",
            "2.5",
            "--output-price",
            "10",
            "--cached-input-price",
            "1.25",
            "--context-window",
            "128000",
            "--max-output",
            "16384",
            "--capability",
            "tools",
            "--capability",
            "json_schema,vision",
            "--quality",
            "88",
            "--quality-source",
            "lmarena 2025-05",
            "--expected-version",
            "5",
        ])
        .unwrap();
        assert_eq!(write.expected_version, 5);
        assert_eq!(
            write.model.unwrap(),
            ModelEntry {
                name: "openai-gpt-4o".into(),
                kind: "openai".into(),
                model: "gpt-4o".into(),
                input_per_mtok: 2.5,
                output_per_mtok: 10.0,
                cached_input_per_mtok: 1.25,
                context_window: 128000,
                max_output: 16384,
                capabilities: vec!["tools".into(), "json_schema".into(), "vision".into()],
                quality: 88,
                quality_source: "lmarena 2025-05".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn kind_and_model_are_required_and_the_rest_defaults() {
        assert!(model_write(&["models", "add", "m", "--kind", "openai"]).is_err());
        assert!(model_write(&["models", "add", "m", "--model", "x"]).is_err());
        let write = model_write(&["models", "update", "m", "--kind", "mistral", "--model", "x"]);
        let entry = write.unwrap().model.unwrap();
        assert_eq!(entry.input_per_mtok, 0.0);
        assert_eq!(
            (entry.context_window, entry.max_output, entry.quality),
            (0, 0, 0)
        );
        assert!(entry.capabilities.is_empty() && entry.quality_source.is_empty());
    }

    #[test]
    fn capabilities_quality_and_prices_are_checked() {
        let base = ["models", "add", "m", "--kind", "openai", "--model", "x"];
        let with = |extra: &[&str]| model_write(&[&base[..], extra].concat());
        assert!(with(&["--capability", "telepathy"]).is_err());
        assert!(with(&["--quality", "101"]).is_err());
        assert!(with(&["--quality", "100"]).is_ok());
        assert!(with(&["--input-price", "cheap"]).is_err());
        assert!(with(&["--context-window", "-1"]).is_err());
        assert!(matches!(
            parse(&["models", "rm", "m", "--expected-version", "3"])
                .unwrap()
                .1,
            AdminCommand::Models(ModelsCmd::Rm { .. })
        ));
    }

    #[test]
    fn row_and_json() {
        let mut entry = ModelEntry {
            name: "local-llama".into(),
            kind: "openai-compatible".into(),
            model: "llama3:8b".into(),
            input_per_mtok: 0.15,
            output_per_mtok: 0.6,
            cached_input_per_mtok: 0.0,
            context_window: 8192,
            max_output: 0,
            capabilities: Vec::new(),
            quality: 40,
            quality_source: String::new(),
            ..Default::default()
        };
        assert_eq!(
            entry.row(),
            [
                "local-llama",
                "openai-compatible",
                "llama3:8b",
                "0.15",
                "0.6",
                "0",
                "8192",
                "-",
                "-",
                "40"
            ]
        );
        entry.capabilities = vec!["tools".into(), "seed".into()];
        entry.quality_source = "own eval".into();
        assert_eq!(entry.row()[8..], ["tools,seed", "40 (own eval)"]);
        assert_eq!(
            entry.to_json(),
            json!({"name": "local-llama", "kind": "openai-compatible", "model": "llama3:8b",
                   "input_per_mtok": 0.15, "output_per_mtok": 0.6, "cached_input_per_mtok": 0.0,
                   "context_window": 8192, "max_output": 0, "capabilities": ["tools", "seed"],
                   "quality": 40, "quality_source": "own eval", "first_token_timeout_ms": 0,
                   "idle_timeout_ms": 0, "timeout_ms": 0})
        );
    }
}
