//! How the limit flags change a key: merging, keeping, clearing, and the budget periods.

use super::*;

fn limits(rpm: u32, budget_usd: f64, period: &str) -> Limits {
    Limits {
        rpm,
        budget_usd,
        budget_period: period.into(),
        ..Default::default()
    }
}

fn applied(key: &ApiKey, args: LimitArgs) -> anyhow::Result<ApiKey> {
    let mut key = key.clone();
    apply(&args, &mut key)?;
    Ok(key)
}

#[test]
fn glob_values_split_at_the_last_equals_sign() {
    assert_eq!(glob_value::<u32>("gpt-4o*=20"), Ok(("gpt-4o*".into(), 20)));
    assert_eq!(glob_value::<f64>("a=b=1.5"), Ok(("a=b".into(), 1.5)));
    assert!(glob_value::<u32>("gpt-4o").is_err());
    assert!(glob_value::<u32>("=3").is_err());
    assert!(glob_value::<u32>("a=-1").is_err());
}

#[test]
fn flags_set_the_key_user_and_model_limits() {
    let args = LimitArgs {
        rpm: Some(60),
        rpm_burst: Some(10),
        budget_usd: Some(50.0),
        budget_period: Some("month".into()),
        user_rpm: Some(5),
        user_budget_usd: Some(2.0),
        model_rpm: vec![("gpt-4o*".into(), 20), ("claude-*".into(), 3)],
        model_budget_usd: vec![("gpt-4o*".into(), 10.0)],
        ..Default::default()
    };
    let key = applied(&ApiKey::default(), args).unwrap();
    assert_eq!(
        key.limits,
        Some(Limits {
            rpm_burst: 10,
            ..limits(60, 50.0, "month")
        })
    );
    assert_eq!(
        key.user_limits,
        Some(limits(5, 2.0, "month")),
        "the key's period"
    );
    assert_eq!(key.model_limits.len(), 2, "same glob: one entry");
    assert_eq!(key.model_limits[0].model, "gpt-4o*");
    assert_eq!(key.model_limits[0].limits, Some(limits(20, 10.0, "month")));
    assert_eq!(key.model_limits[1].limits, Some(limits(3, 0.0, "")));
    assert_eq!(
        summary(&key),
        "rpm=60 burst=10 usd=50/month user(rpm=5 usd=2/month) models=2"
    );
}

#[test]
fn unmentioned_limits_stay_and_zero_clears_one() {
    let key = ApiKey {
        limits: Some(Limits {
            rpm_burst: 4,
            tpm: 1000,
            ..limits(60, 5.0, "day")
        }),
        user_limits: Some(limits(0, 1.0, "week")),
        model_limits: vec![ModelLimit {
            model: "a*".into(),
            limits: Some(limits(7, 0.0, "")),
        }],
        ..Default::default()
    };
    let args = LimitArgs {
        rpm: Some(0),
        budget_period: Some("month".into()),
        model_rpm: vec![("a*".into(), 0)],
        ..Default::default()
    };
    let after = applied(&key, args).unwrap();
    assert_eq!(
        after.limits,
        Some(Limits {
            tpm: 1000,
            ..limits(0, 5.0, "month")
        }),
        "rpm and its burst cleared, the rest kept"
    );
    assert_eq!(
        after.user_limits,
        Some(limits(0, 1.0, "week")),
        "own period kept"
    );
    assert!(
        after.model_limits.is_empty(),
        "an entry with no limit left goes"
    );

    let args = LimitArgs {
        tpm: Some(0),
        budget_usd: Some(0.0),
        user_budget_usd: Some(0.0),
        ..Default::default()
    };
    let after = applied(&after, args).unwrap();
    assert_eq!(summary(&after), "none");
    assert_eq!((after.limits, after.user_limits), (None, None));
}

#[test]
fn model_budgets_follow_the_key_period() {
    let key = ApiKey {
        limits: Some(limits(0, 0.0, "week")),
        model_limits: vec![ModelLimit {
            model: "a*".into(),
            limits: Some(limits(0, 3.0, "week")),
        }],
        ..Default::default()
    };
    let args = LimitArgs {
        budget_period: Some("day".into()),
        ..Default::default()
    };
    let after = applied(&key, args).unwrap();
    assert_eq!(
        after.limits,
        Some(limits(0, 0.0, "day")),
        "kept for the models"
    );
    assert_eq!(after.model_limits[0].limits, Some(limits(0, 3.0, "day")));

    let args = LimitArgs {
        model_budget_usd: vec![("b*".into(), 1.0)],
        ..Default::default()
    };
    let err = applied(&ApiKey::default(), args).unwrap_err();
    assert!(err.to_string().contains("--budget-period"), "{err}");
    let args = LimitArgs {
        user_budget_usd: Some(1.0),
        ..Default::default()
    };
    let err = applied(&ApiKey::default(), args).unwrap_err();
    assert!(err.to_string().contains("--user-budget-period"), "{err}");
}

#[test]
fn amounts_and_json() {
    assert_eq!(usd(50.0), "50");
    assert_eq!(usd(1.5), "1.5");
    assert_eq!(usd(0.000125), "0.000125");
    assert_eq!(usd(0.0), "0");
    assert_eq!(limits_json(None), Value::Null);
    let value = limits_json(Some(&limits(1, 2.0, "day")));
    assert_eq!(value["budget_period"], "day");
    assert_eq!(value["rpm"], 1);
    let models = model_limits_json(&[ModelLimit {
        model: "a*".into(),
        limits: None,
    }]);
    assert_eq!(models, json!([{"model": "a*", "limits": null}]));
}
