//! A key's limits compiled from its snapshot entry: one [`LimitSet`] for the key, a template for
//! each end user under it, and one per model glob, each with the counter scope it is kept under.

use tokenrouter_proto::limits::BudgetPeriod;
use tokenrouter_proto::v1::{ApiKey, Limits};

/// What one set of limits allows; zero means no limit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rule {
    pub rpm: u64,
    /// GCRA burst for `rpm` (0: none beyond the per-minute window).
    pub rpm_burst: u64,
    pub tpm: u64,
    pub max_concurrent: u64,
    /// Budget in micro-USD, with its period.
    pub budget: Option<(i64, BudgetPeriod)>,
}

impl Rule {
    fn from_proto(l: Option<&Limits>) -> Option<Rule> {
        let l = l?;
        let budget = (l.budget_usd > 0.0 && l.budget_usd.is_finite()).then(|| {
            let period = BudgetPeriod::parse(&l.budget_period).unwrap_or(BudgetPeriod::Month);
            ((l.budget_usd * 1e6).round() as i64, period)
        });
        let rule = Rule {
            rpm: u64::from(l.rpm),
            rpm_burst: if l.rpm > 0 { u64::from(l.rpm_burst) } else { 0 },
            tpm: l.tpm,
            max_concurrent: u64::from(l.max_concurrent),
            budget,
        };
        (rule != Rule::default()).then_some(rule)
    }
}

/// A key's limits.
#[derive(Debug, Clone, Default)]
pub struct KeyLimits {
    pub key: Option<Rule>,
    pub user: Option<Rule>,
    pub models: Vec<(String, Rule)>,
}

impl KeyLimits {
    /// `None` when the key has no limit at all (the common case costs nothing per request).
    pub fn compile(k: &ApiKey) -> Option<KeyLimits> {
        let limits = KeyLimits {
            key: Rule::from_proto(k.limits.as_ref()),
            user: Rule::from_proto(k.user_limits.as_ref()),
            models: k
                .model_limits
                .iter()
                .filter_map(|m| Some((m.model.clone(), Rule::from_proto(m.limits.as_ref())?)))
                .collect(),
        };
        (limits.key.is_some() || limits.user.is_some() || !limits.models.is_empty())
            .then_some(limits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenrouter_proto::v1::ModelLimit;

    #[test]
    fn keys_without_limits_compile_to_nothing() {
        assert!(KeyLimits::compile(&ApiKey::default()).is_none());
        let zero = ApiKey {
            limits: Some(Limits::default()),
            ..Default::default()
        };
        assert!(KeyLimits::compile(&zero).is_none());
    }

    #[test]
    fn every_scope_compiles() {
        let k = ApiKey {
            limits: Some(Limits {
                rpm: 60,
                budget_usd: 1.5,
                budget_period: "day".into(),
                ..Default::default()
            }),
            user_limits: Some(Limits {
                tpm: 1000,
                ..Default::default()
            }),
            model_limits: vec![ModelLimit {
                model: "gpt-4o*".into(),
                limits: Some(Limits {
                    rpm: 20,
                    ..Default::default()
                }),
            }],
            ..Default::default()
        };
        let l = KeyLimits::compile(&k).unwrap();
        assert_eq!(
            l.key.as_ref().unwrap().budget,
            Some((1_500_000, BudgetPeriod::Day))
        );
        assert_eq!(l.user.as_ref().unwrap().tpm, 1000);
        assert_eq!(l.models[0].0, "gpt-4o*");
        assert_eq!(l.models[0].1.rpm, 20);
    }
}
