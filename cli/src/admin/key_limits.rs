//! The spend-control flags of `keys create|update` and how they change a key's limits, plus the
//! limits' short summary (for `keys list`) and JSON form.

use anyhow::{anyhow, bail};
use clap::Args;
use serde_json::{Value, json};
use tokenrouter_proto::v1::{ApiKey, Limits, ModelLimit};

/// The names `--budget-period` and `--user-budget-period` take.
const PERIODS: [&str; 4] = ["day", "week", "month", "total"];

/// Limits on a key, on each end user under it, and on models by glob. On `update`, a flag not
/// given keeps the current value and `0` clears one limit.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct LimitArgs {
    /// Requests per minute for the key (0: no limit).
    #[arg(long, value_name = "N")]
    pub rpm: Option<u32>,
    /// Burst for --rpm, in requests (0: the burst equals rpm).
    #[arg(long = "rpm-burst", value_name = "N")]
    pub rpm_burst: Option<u32>,
    /// Tokens per minute for the key, prompt + completion (0: no limit).
    #[arg(long, value_name = "N")]
    pub tpm: Option<u64>,
    /// Requests in flight at once for the key (0: no limit).
    #[arg(long = "max-concurrent", value_name = "N")]
    pub max_concurrent: Option<u32>,
    /// Budget in USD per --budget-period for the key (0: no budget).
    #[arg(long = "budget-usd", value_name = "USD")]
    pub budget_usd: Option<f64>,
    /// The key's budget period, calendar UTC (weeks start on Monday); per-model budgets use it,
    /// and users' budgets unless --user-budget-period is given.
    #[arg(long = "budget-period", value_name = "PERIOD", value_parser = PERIODS)]
    pub budget_period: Option<String>,
    /// Requests per minute for each end user of the key (the `user` of the request).
    #[arg(long = "user-rpm", value_name = "N")]
    pub user_rpm: Option<u32>,
    /// Tokens per minute for each end user.
    #[arg(long = "user-tpm", value_name = "N")]
    pub user_tpm: Option<u64>,
    /// Requests in flight at once for each end user.
    #[arg(long = "user-max-concurrent", value_name = "N")]
    pub user_max_concurrent: Option<u32>,
    /// Budget in USD per period for each end user.
    #[arg(long = "user-budget-usd", value_name = "USD")]
    pub user_budget_usd: Option<f64>,
    /// Period of the users' budget (default: the key's --budget-period).
    #[arg(long = "user-budget-period", value_name = "PERIOD", value_parser = PERIODS)]
    pub user_budget_period: Option<String>,
    /// Requests per minute for models matching GLOB ("gpt-4o*=20"); repeatable.
    #[arg(long = "model-rpm", value_name = "GLOB=N", value_parser = glob_value::<u32>)]
    pub model_rpm: Vec<(String, u32)>,
    /// Tokens per minute for models matching GLOB; repeatable.
    #[arg(long = "model-tpm", value_name = "GLOB=N", value_parser = glob_value::<u64>)]
    pub model_tpm: Vec<(String, u64)>,
    /// Requests in flight at once for models matching GLOB; repeatable.
    #[arg(long = "model-max-concurrent", value_name = "GLOB=N", value_parser = glob_value::<u32>)]
    pub model_max_concurrent: Vec<(String, u32)>,
    /// Budget in USD per the key's --budget-period for models matching GLOB; repeatable.
    #[arg(long = "model-budget-usd", value_name = "GLOB=USD", value_parser = glob_value::<f64>)]
    pub model_budget_usd: Vec<(String, f64)>,
}

/// Parses `GLOB=VALUE` (split at the last `=`, so the glob may hold one).
fn glob_value<T: std::str::FromStr>(text: &str) -> Result<(String, T), String>
where
    T::Err: std::fmt::Display,
{
    let (glob, value) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("{text:?} is not GLOB=VALUE"))?;
    if glob.is_empty() {
        return Err(format!("{text:?} has no model glob before '='"));
    }
    let value = value
        .parse()
        .map_err(|e| format!("{value:?} after '=' is not a number: {e}"))?;
    Ok((glob.to_string(), value))
}

fn set<T: Copy>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Changes `key`'s limits as the flags say, keeping what they do not mention.
///
/// Budget periods are kept only where a budget uses them: per-model budgets take the key's
/// period, users' budgets their own or else the key's. An entry of `model_limits` left with no
/// limit is removed.
pub(super) fn apply(args: &LimitArgs, key: &mut ApiKey) -> anyhow::Result<()> {
    let mut own = key.limits.take().unwrap_or_default();
    set(&mut own.rpm, args.rpm);
    if own.rpm == 0 {
        own.rpm_burst = 0;
    }
    set(&mut own.rpm_burst, args.rpm_burst);
    set(&mut own.tpm, args.tpm);
    set(&mut own.max_concurrent, args.max_concurrent);
    set(&mut own.budget_usd, args.budget_usd);
    if let Some(period) = &args.budget_period {
        own.budget_period = period.clone();
    }
    if own.budget_usd != 0.0 && own.budget_period.is_empty() {
        bail!("--budget-usd needs --budget-period (day, week, month or total)");
    }

    let mut user = key.user_limits.take().unwrap_or_default();
    set(&mut user.rpm, args.user_rpm);
    set(&mut user.tpm, args.user_tpm);
    set(&mut user.max_concurrent, args.user_max_concurrent);
    set(&mut user.budget_usd, args.user_budget_usd);
    if let Some(period) = &args.user_budget_period {
        user.budget_period = period.clone();
    }
    if user.budget_usd == 0.0 {
        user.budget_period.clear();
    } else if user.budget_period.is_empty() {
        if own.budget_period.is_empty() {
            bail!("--user-budget-usd needs a period: give --user-budget-period or --budget-period");
        }
        user.budget_period = own.budget_period.clone();
    }

    let models = &mut key.model_limits;
    for (glob, n) in &args.model_rpm {
        entry(models, glob).rpm = *n;
    }
    for (glob, n) in &args.model_tpm {
        entry(models, glob).tpm = *n;
    }
    for (glob, n) in &args.model_max_concurrent {
        entry(models, glob).max_concurrent = *n;
    }
    for (glob, usd) in &args.model_budget_usd {
        entry(models, glob).budget_usd = *usd;
    }
    models.retain(|m| m.limits.as_ref().is_some_and(|l| !l.is_unlimited()));
    let model_budgets = models
        .iter()
        .filter_map(|m| m.limits.as_ref())
        .any(|l| l.budget_usd != 0.0);
    if own.budget_usd == 0.0 && !model_budgets {
        own.budget_period.clear();
    }
    if model_budgets && own.budget_period.is_empty() {
        bail!("--model-budget-usd needs --budget-period (model budgets use the key's period)");
    }
    for limits in models.iter_mut().filter_map(|m| m.limits.as_mut()) {
        limits.budget_period = if limits.budget_usd == 0.0 {
            String::new()
        } else {
            own.budget_period.clone()
        };
    }

    key.limits = kept(own);
    key.user_limits = kept(user);
    Ok(())
}

/// The limits of the entry for `glob`, added (empty) if there is none.
fn entry<'a>(models: &'a mut Vec<ModelLimit>, glob: &str) -> &'a mut Limits {
    let at = match models.iter().position(|m| m.model == glob) {
        Some(at) => at,
        None => {
            models.push(ModelLimit {
                model: glob.to_string(),
                limits: None,
            });
            models.len() - 1
        }
    };
    models[at].limits.get_or_insert_with(Limits::default)
}

fn kept(limits: Limits) -> Option<Limits> {
    (limits != Limits::default()).then_some(limits)
}

/// Removes every limit of the key (`update --no-limits`).
pub(super) fn clear(key: &mut ApiKey) {
    key.limits = None;
    key.user_limits = None;
    key.model_limits.clear();
}

/// An amount of USD without trailing zeros: `50`, `1.5`, `0.000125`.
pub(super) fn usd(amount: f64) -> String {
    let text = format!("{amount:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0" } else { text }.to_string()
}

/// The set fields of one `Limits`, e.g. `["rpm=60", "burst=10", "usd=50/month"]`.
fn parts(limits: &Limits) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |name: &str, value: u64| {
        if value > 0 {
            out.push(format!("{name}={value}"));
        }
    };
    add("rpm", limits.rpm.into());
    add("burst", limits.rpm_burst.into());
    add("tpm", limits.tpm);
    add("concurrent", limits.max_concurrent.into());
    if limits.budget_usd != 0.0 {
        out.push(format!(
            "usd={}/{}",
            usd(limits.budget_usd),
            limits.budget_period
        ));
    }
    out
}

/// The `LIMITS` cell of `keys list`: `rpm=60 usd=50/month user(rpm=10) models=2`, or `none`.
pub(super) fn summary(key: &ApiKey) -> String {
    let mut out = key.limits.as_ref().map(parts).unwrap_or_default();
    let user = key.user_limits.as_ref().map(parts).unwrap_or_default();
    if !user.is_empty() {
        out.push(format!("user({})", user.join(" ")));
    }
    if !key.model_limits.is_empty() {
        out.push(format!("models={}", key.model_limits.len()));
    }
    if out.is_empty() {
        "none".to_string()
    } else {
        out.join(" ")
    }
}

/// One `Limits` as JSON (`null` when unset).
pub(super) fn limits_json(limits: Option<&Limits>) -> Value {
    limits.map_or(Value::Null, |l| {
        json!({
            "rpm": l.rpm, "rpm_burst": l.rpm_burst, "tpm": l.tpm, "max_concurrent": l.max_concurrent,
            "budget_usd": l.budget_usd, "budget_period": l.budget_period,
        })
    })
}

/// `model_limits` as JSON.
pub(super) fn model_limits_json(models: &[ModelLimit]) -> Value {
    models
        .iter()
        .map(|m| json!({"model": m.model, "limits": limits_json(m.limits.as_ref())}))
        .collect()
}

/// Fails when `args` sets nothing, for `update` without any flag.
pub(super) fn require_some(args: &LimitArgs, no_limits: bool) -> anyhow::Result<()> {
    if no_limits || *args != LimitArgs::default() {
        return Ok(());
    }
    Err(anyhow!(
        "nothing to change: give a limit flag (--rpm, --budget-usd, --user-rpm, --model-rpm, ...) or --no-limits"
    ))
}

#[cfg(test)]
#[path = "key_limits_tests.rs"]
mod tests;
