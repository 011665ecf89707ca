//! Checks of an API key's spend-control limits: the key's own, per end user, and per model glob.

use std::collections::HashSet;

use super::{ValidationError, bad, check_model_name};
use crate::limits::BudgetPeriod;
use crate::v1::{ApiKey, Limits};

/// Most `model_limits` entries one key may hold.
pub const MAX_MODEL_LIMITS: usize = 100;

/// Checks `limits`, `user_limits` and every `model_limits` entry of `key`; `at` is the key's path,
/// e.g. `api_keys[team-a]`.
pub(super) fn check(at: &str, key: &ApiKey) -> Result<(), ValidationError> {
    if let Some(limits) = &key.limits {
        check_limits(&format!("{at}.limits"), limits)?;
    }
    if let Some(limits) = &key.user_limits {
        check_limits(&format!("{at}.user_limits"), limits)?;
    }
    if key.model_limits.len() > MAX_MODEL_LIMITS {
        return Err(bad(
            format!("{at}.model_limits"),
            format!("at most {MAX_MODEL_LIMITS} model limits per key"),
        ));
    }
    let mut globs = HashSet::new();
    for (i, entry) in key.model_limits.iter().enumerate() {
        let entry_at = format!("{at}.model_limits[{i}]");
        check_model_name(&format!("{entry_at}.model"), &entry.model)?;
        if !globs.insert(entry.model.as_str()) {
            return Err(bad(
                format!("{entry_at}.model"),
                format!(
                    "another model limit has the glob {:?}; put its limits in one entry",
                    entry.model
                ),
            ));
        }
        match &entry.limits {
            Some(limits) if !limits.is_unlimited() => {
                check_limits(&format!("{entry_at}.limits"), limits)?
            }
            _ => {
                return Err(bad(
                    format!("{entry_at}.limits"),
                    "sets no limit: give at least one of rpm, tpm, max_concurrent or budget_usd",
                ));
            }
        }
    }
    Ok(())
}

/// Checks one `Limits` message; `at` is its path.
fn check_limits(at: &str, limits: &Limits) -> Result<(), ValidationError> {
    if !limits.budget_usd.is_finite() || limits.budget_usd < 0.0 {
        return Err(bad(
            format!("{at}.budget_usd"),
            "must be a finite amount of USD, 0 or more",
        ));
    }
    let names = BudgetPeriod::ALL.map(BudgetPeriod::as_str).join(", ");
    if limits.budget_period.is_empty() {
        if limits.budget_usd > 0.0 {
            return Err(bad(
                format!("{at}.budget_period"),
                format!("is required with budget_usd (one of {names})"),
            ));
        }
    } else if limits.period().is_none() {
        return Err(bad(
            format!("{at}.budget_period"),
            format!("{:?} is not one of {names}", limits.budget_period),
        ));
    }
    if limits.rpm_burst > 0 && limits.rpm == 0 {
        return Err(bad(format!("{at}.rpm_burst"), "is only allowed with rpm"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{ModelLimit, Snapshot};
    use crate::validate_snapshot;

    fn key(edit: impl FnOnce(&mut ApiKey)) -> Snapshot {
        let mut k = ApiKey {
            name: "team-a".into(),
            sha256: "a".repeat(64),
            ..Default::default()
        };
        edit(&mut k);
        Snapshot {
            api_keys: vec![k],
            ..Default::default()
        }
    }

    fn field(s: &Snapshot) -> String {
        validate_snapshot(s).unwrap_err().field
    }

    fn model(glob: &str, limits: Option<Limits>) -> ModelLimit {
        ModelLimit {
            model: glob.into(),
            limits,
        }
    }

    #[test]
    fn accepts_complete_limits() {
        let s = key(|k| {
            k.limits = Some(Limits {
                rpm: 60,
                rpm_burst: 10,
                tpm: 100_000,
                max_concurrent: 4,
                budget_usd: 50.0,
                budget_period: "month".into(),
            });
            k.user_limits = Some(Limits {
                rpm: 10,
                budget_usd: 1.5,
                budget_period: "day".into(),
                ..Default::default()
            });
            k.model_limits = vec![
                model(
                    "gpt-4o*",
                    Some(Limits {
                        rpm: 20,
                        ..Default::default()
                    }),
                ),
                model(
                    "claude-*",
                    Some(Limits {
                        budget_usd: 5.0,
                        budget_period: "week".into(),
                        ..Default::default()
                    }),
                ),
            ];
        });
        assert_eq!(validate_snapshot(&s), Ok(()));
        // Empty limit messages and a period without a budget are fine.
        let s = key(|k| {
            k.limits = Some(Limits {
                budget_period: "total".into(),
                ..Default::default()
            });
            k.user_limits = Some(Limits::default());
        });
        assert_eq!(validate_snapshot(&s), Ok(()));
    }

    #[test]
    fn budgets_need_a_valid_period_and_amount() {
        let with = |limits: Limits| key(|k| k.limits = Some(limits));
        let s = with(Limits {
            budget_usd: 5.0,
            ..Default::default()
        });
        assert_eq!(field(&s), "api_keys[team-a].limits.budget_period");
        assert!(
            validate_snapshot(&s)
                .unwrap_err()
                .message
                .contains("day, week, month, total")
        );
        let s = with(Limits {
            budget_usd: 5.0,
            budget_period: "monthly".into(),
            ..Default::default()
        });
        assert_eq!(field(&s), "api_keys[team-a].limits.budget_period");
        // A bad period is refused even without a budget.
        let s = with(Limits {
            budget_period: "year".into(),
            ..Default::default()
        });
        assert_eq!(field(&s), "api_keys[team-a].limits.budget_period");
        for amount in [-1.0, f64::NAN, f64::INFINITY] {
            let s = with(Limits {
                budget_usd: amount,
                budget_period: "day".into(),
                ..Default::default()
            });
            assert_eq!(field(&s), "api_keys[team-a].limits.budget_usd", "{amount}");
        }
        let s = key(|k| {
            k.user_limits = Some(Limits {
                budget_usd: 1.0,
                ..Default::default()
            })
        });
        assert_eq!(field(&s), "api_keys[team-a].user_limits.budget_period");
    }

    #[test]
    fn burst_needs_rpm() {
        let s = key(|k| {
            k.user_limits = Some(Limits {
                rpm_burst: 5,
                tpm: 10,
                ..Default::default()
            })
        });
        assert_eq!(field(&s), "api_keys[team-a].user_limits.rpm_burst");
    }

    #[test]
    fn model_limits_name_a_glob_and_set_a_limit() {
        let rpm = Some(Limits {
            rpm: 1,
            ..Default::default()
        });
        let s = key(|k| k.model_limits = vec![model("a*", rpm.clone()), model("", rpm.clone())]);
        assert_eq!(field(&s), "api_keys[team-a].model_limits[1].model");
        let s = key(|k| k.model_limits = vec![model("gpt 4o", rpm.clone())]);
        assert_eq!(field(&s), "api_keys[team-a].model_limits[0].model");
        let long = "x".repeat(257);
        let s = key(|k| k.model_limits = vec![model(&long, rpm.clone())]);
        assert_eq!(field(&s), "api_keys[team-a].model_limits[0].model");
        let s = key(|k| k.model_limits = vec![model("a*", rpm.clone()), model("a*", rpm.clone())]);
        assert_eq!(field(&s), "api_keys[team-a].model_limits[1].model");

        let only_period = Limits {
            budget_period: "day".into(),
            rpm_burst: 3,
            ..Default::default()
        };
        for limits in [None, Some(Limits::default()), Some(only_period)] {
            let s = key(|k| k.model_limits = vec![model("a*", limits)]);
            assert_eq!(field(&s), "api_keys[team-a].model_limits[0].limits");
        }
        let s = key(|k| {
            k.model_limits = vec![model(
                "a*",
                Some(Limits {
                    budget_usd: 2.0,
                    ..Default::default()
                }),
            )]
        });
        assert_eq!(
            field(&s),
            "api_keys[team-a].model_limits[0].limits.budget_period"
        );

        let s = key(|k| {
            k.model_limits = (0..=MAX_MODEL_LIMITS)
                .map(|i| model(&format!("m{i}*"), rpm.clone()))
                .collect()
        });
        assert_eq!(field(&s), "api_keys[team-a].model_limits");
        let s = key(|k| {
            k.model_limits = (0..MAX_MODEL_LIMITS)
                .map(|i| model(&format!("m{i}*"), rpm.clone()))
                .collect()
        });
        assert_eq!(validate_snapshot(&s), Ok(()));
    }
}
