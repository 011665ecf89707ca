//! A ready-made stack for tests: a control plane over a chosen store, an API key and one simulated
//! OpenAI-protocol provider; and the fuller stack the OpenAI SDK conformance scripts run against.

use std::path::Path;
use std::time::Duration;

use tokenrouter_proto::v1::admin_client::AdminClient;
use tokenrouter_proto::v1::{
    ApiKeyCreate, Credential, CredentialWrite, Provider, ProviderWrite, UsageQuery, UsageReport,
};
use tokenrouter_simulators::{Fault, Protocol, SimConfig, Simulator};
use tokenrouter_tests::{
    Backend, ControlPlaneHandle, DataPlaneHandle, data_plane_config, fresh_store,
};
use tonic::transport::Channel;

pub const KEY: &str = "sk-test-client-key";

pub struct Stack {
    pub cp: ControlPlaneHandle,
    /// How to reopen the store (file path or schema).
    pub store_id: String,
    pub backend: Backend,
}

/// A control plane with the test API key. `None` when the backend is not available here.
pub async fn stack(backend: Backend) -> Option<Stack> {
    let (store, store_id) = fresh_store(backend).await?;
    let cp = ControlPlaneHandle::start(store, None, None).await;
    let mut admin = cp.admin().await;
    admin
        .create_api_key(ApiKeyCreate {
            name: "test".into(),
            key: KEY.into(),
            expected_version: 0,
            ..Default::default()
        })
        .await
        .expect("create key");
    Some(Stack {
        cp,
        store_id,
        backend,
    })
}

/// Starts an OpenAI-protocol simulator and registers it as provider `name` serving `models`.
pub async fn add_simulated_provider(
    cp: &ControlPlaneHandle,
    name: &str,
    models: &[&str],
) -> (Simulator, u64) {
    add_provider_with(
        cp,
        SimConfig::new(Protocol::OpenAi, name, &format!("sim-secret-{name}")),
        models,
    )
    .await
}

pub async fn add_provider_with(
    cp: &ControlPlaneHandle,
    config: SimConfig,
    models: &[&str],
) -> (Simulator, u64) {
    add_provider_full(
        cp,
        config,
        Provider {
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        },
    )
    .await
}

/// Starts a simulator and registers it with the provider fields given in `template` (name, base
/// URL and kind are filled in from the simulator when left empty).
pub async fn add_provider_full(
    cp: &ControlPlaneHandle,
    config: SimConfig,
    template: Provider,
) -> (Simulator, u64) {
    let name = config.name.clone();
    let secret = config.api_key.clone();
    let kind = match config.protocol {
        Protocol::Anthropic => "anthropic",
        Protocol::Gemini => "gemini",
        Protocol::Mistral => "mistral",
        Protocol::DeepSeek => "deepseek",
        _ => "openai",
    };
    let sim = Simulator::start(config).await.expect("start simulator");
    let mut admin = cp.admin().await;
    let provider = Provider {
        name: name.clone(),
        kind: if template.kind.is_empty() {
            kind.into()
        } else {
            template.kind.clone()
        },
        base_url: sim.base_url(),
        ..template
    };
    let created = admin
        .create_provider(ProviderWrite {
            provider: Some(provider),
            expected_version: 0,
        })
        .await
        .expect("create provider")
        .into_inner()
        .version;
    if secret.is_empty() {
        // The simulator accepts any key: the provider needs no credential.
        return (sim, created);
    }
    let credential = Credential {
        name: format!("{name}-key"),
        provider: name,
        secret,
    };
    let version = admin
        .create_credential(CredentialWrite {
            credential: Some(credential),
            expected_version: 0,
        })
        .await
        .expect("create credential")
        .into_inner()
        .version;
    (sim, version)
}

/// Adds a firewall rule masking what `detector` finds in `direction` (`input` or `output`);
/// returns the new configuration version.
pub async fn add_mask_rule(
    cp: &ControlPlaneHandle,
    name: &str,
    detector: &str,
    direction: &str,
) -> u64 {
    let rule = tokenrouter_proto::v1::FirewallRule {
        name: name.into(),
        detectors: vec![detector.into()],
        action: "mask".into(),
        direction: direction.into(),
        ..Default::default()
    };
    cp.admin()
        .await
        .create_firewall_rule(tokenrouter_proto::v1::FirewallRuleWrite {
            rule: Some(rule),
            expected_version: 0,
        })
        .await
        .expect("create firewall rule")
        .into_inner()
        .version
}

/// The control plane's usage report grouped by `group_by`, once it holds at least `records`
/// recent records (usage arrives asynchronously); fails after 10 s.
pub async fn usage_once(
    admin: &mut AdminClient<Channel>,
    group_by: &str,
    records: usize,
) -> UsageReport {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let report = admin
            .get_usage(UsageQuery {
                group_by: group_by.into(),
                recent: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        if report.recent.len() >= records {
            return report;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "usage never arrived: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn user_message(text: &str) -> serde_json::Value {
    serde_json::json!([{ "role": "user", "content": text }])
}

/// The key the SDK conformance scripts use for their 403 check: it may use only [`SDK_MODEL`].
pub const LIMITED_KEY: &str = "sk-limited-sdk";
/// The model the SDK conformance scripts talk to (served by provider `alpha`).
pub const SDK_MODEL: &str = "gpt-4o-mini";

/// What the SDK conformance scripts (`tests/python/compat.py`, `tests/node/compat.mjs`) run
/// against: a data plane with provider `alpha` serving [`SDK_MODEL`], `loose` (accepts unknown
/// fields), `ratelimited` (always 429 with `Retry-After: 3`), `garbage` (answers nonsense),
/// `midstream` (fails after two chunks), `sleepy` (answers after its 500 ms timeout) and `down`
/// (unreachable); plus [`LIMITED_KEY`]. The body limit is 256 KiB.
pub struct SdkStack {
    pub dp: DataPlaneHandle,
    pub alpha: Simulator,
    pub loose: Simulator,
    /// The fault-injecting simulators, kept alive for the stack's lifetime.
    _faulty: Vec<Simulator>,
    _stack: Stack,
}

impl SdkStack {
    pub async fn start(name: &str) -> SdkStack {
        let stack = stack(Backend::Sqlite)
            .await
            .expect("sqlite is always available");
        let cp = &stack.cp;
        let (alpha, _) = add_simulated_provider(cp, "alpha", &[SDK_MODEL]).await;
        let mut loose = SimConfig::new(Protocol::OpenAi, "loose", "k-loose");
        loose.strict_fields = false;
        let (loose, _) = add_provider_with(cp, loose, &["loose-m"]).await;
        let (ratelimited, _) = add_simulated_provider(cp, "ratelimited", &["m"]).await;
        ratelimited.set_fault(Some(Fault::Status {
            status: 429,
            retry_after_secs: Some(3),
        }));
        let (garbage, _) = add_simulated_provider(cp, "garbage", &["m"]).await;
        garbage.set_fault(Some(Fault::Garbage));
        let (midstream, _) = add_simulated_provider(cp, "midstream", &["m"]).await;
        midstream.set_fault(Some(Fault::ErrorAfterChunks(2)));
        let sleepy_provider = Provider {
            models: vec!["m".into()],
            timeout_ms: 500,
            ..Default::default()
        };
        let (sleepy, _) = add_provider_full(
            cp,
            SimConfig::new(Protocol::OpenAi, "sleepy", "k-sleepy"),
            sleepy_provider,
        )
        .await;
        sleepy.set_fault(Some(Fault::DelayFirstByte(Duration::from_secs(5))));
        let mut admin = cp.admin().await;
        let down = Provider {
            name: "down".into(),
            kind: "openai".into(),
            base_url: "http://127.0.0.1:1/v1".into(),
            models: vec!["m".into()],
            ..Default::default()
        };
        admin
            .create_provider(ProviderWrite {
                provider: Some(down),
                expected_version: 0,
            })
            .await
            .unwrap();
        let limited = ApiKeyCreate {
            name: "limited".into(),
            key: LIMITED_KEY.into(),
            allowed_models: vec![SDK_MODEL.into()],
            ..Default::default()
        };
        let version = admin
            .create_api_key(limited)
            .await
            .unwrap()
            .into_inner()
            .version;

        let mut config = data_plane_config(name);
        config.max_body_bytes = 256 * 1024;
        let dp = DataPlaneHandle::start(config, &cp.url(), None).await;
        dp.wait_for_version(version).await;
        SdkStack {
            dp,
            alpha,
            loose,
            _faulty: vec![ratelimited, garbage, midstream, sleepy],
            _stack: stack,
        }
    }

    /// The environment the conformance scripts read.
    pub fn script_env(&self) -> [(&'static str, String); 4] {
        [
            ("TOKENROUTER_BASE_URL", self.dp.url("/v1")),
            ("TOKENROUTER_API_KEY", KEY.into()),
            ("TOKENROUTER_LIMITED_KEY", LIMITED_KEY.into()),
            ("TOKENROUTER_MODEL", SDK_MODEL.into()),
        ]
    }

    /// What the providers received from a script's all-parameters request: every parameter
    /// forwarded, unknown fields passed through to an OpenAI-protocol provider, and `user`
    /// metadata reduced to a plain id.
    pub fn assert_every_parameter_forwarded(&self) {
        let everything = self
            .alpha
            .requests()
            .into_iter()
            .find(|r| r.body.get("seed").is_some())
            .expect("the all-parameters request");
        for field in [
            "temperature",
            "top_p",
            "max_completion_tokens",
            "stop",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "seed",
            "n",
            "logprobs",
            "top_logprobs",
            "metadata",
            "service_tier",
            "parallel_tool_calls",
            "reasoning_effort",
        ] {
            assert!(
                everything.body.get(field).is_some(),
                "{field} was not forwarded: {}",
                everything.body
            );
        }
        assert_eq!(everything.body["user"], "u-1");
        let custom = self
            .loose
            .requests()
            .into_iter()
            .find(|r| r.body.get("x_custom_flag").is_some());
        assert!(
            custom.is_some_and(|r| r.body["x_custom_flag"] == true),
            "unknown fields reach OpenAI-protocol providers"
        );
    }
}

/// Runs `program` with `args` and `env`, asserts it exits successfully and prints `done` (its
/// closing line); prints and returns its stdout.
pub async fn run_script(
    program: &Path,
    args: &[&Path],
    env: impl IntoIterator<Item = (&'static str, String)>,
    done: &str,
) -> String {
    let output = tokio::process::Command::new(program)
        .args(args)
        .envs(env)
        .output()
        .await
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let script = args.last().map_or(program, |a| a).display();
    assert!(
        output.status.success(),
        "{script} failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains(done),
        "{script} never said {done:?}:\n{stdout}"
    );
    // Shown with --nocapture: the SDK version that ran and every check it made.
    println!("{stdout}");
    stdout
}

/// Serves the dashboard of `cp` (sign-in with `admin_token`) on a fresh local port; its base URL.
pub async fn serve_dashboard(cp: &ControlPlaneHandle, admin_token: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let config = tokenrouter_control_plane::dashboard::DashboardConfig {
        admin_token: Some(admin_token.into()),
    };
    tokio::spawn(tokenrouter_control_plane::dashboard::serve(
        listener,
        cp.cp.clone(),
        config,
        std::future::pending(),
    ));
    base
}
