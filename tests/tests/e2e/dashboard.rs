//! The dashboard in a real browser: requests go through a data plane, their usage reaches the
//! control plane, and `tests/node/dashboard.mjs` drives headless Chromium (Debian's package, over
//! CDP with puppeteer-core) through sign-in, the overview's numbers, the request log's filter and
//! a request's detail and its attempts, the providers' live signals as the data plane reported
//! them, a key made on the page, limited on the page and used on the data plane, and a viewer
//! (a dashboard user with a password) who cannot write.
//! Screenshots of every page land in `target/test-artefacts/dashboard/`.

use std::path::{Path, PathBuf};

use tokenrouter_simulators::Fault;
use tokenrouter_tests::{Backend, DataPlaneHandle, chat, data_plane_config};

use crate::node::node;
use crate::setup::{KEY, add_simulated_provider, run_script, stack, usage_once, user_message};

const TOKEN: &str = "dashboard-e2e-admin-token";
const VIEWER_PASSWORD: &str = "a viewer's long password";

/// The browser: `TOKENROUTER_TEST_CHROMIUM`, else Debian's `chromium` or its headless shell.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TOKENROUTER_TEST_CHROMIUM") {
        return Some(p.into());
    }
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-headless-shell"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    assert!(
        found.is_some() || std::env::var_os("CI").is_none(),
        "CI must provide Chromium: run scripts/test (it installs Debian's chromium)"
    );
    found
}

#[tokio::test]
async fn the_dashboard_in_a_browser_shows_what_happened_and_makes_keys() {
    let puppeteer = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/node_modules/puppeteer-core");
    let (Some(node), Some(browser)) = (node(), chromium()) else {
        return eprintln!("skipped: node or Chromium missing (run scripts/test)");
    };
    assert!(
        puppeteer.exists(),
        "tests/node/node_modules lacks puppeteer-core: run scripts/test"
    );
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (_sim, _) = add_simulated_provider(&stack.cp, "sim", &["gpt-4o-mini"]).await;
    let (broken, version) =
        add_simulated_provider(&stack.cp, "sim-broken", &["broken-model"]).await;
    broken.set_fault(Some(Fault::Status {
        status: 500,
        retry_after_secs: None,
    }));
    let dp = DataPlaneHandle::start(data_plane_config("dash"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let http = reqwest::Client::new();
    let ok = 5;
    for i in 0..ok {
        let body = serde_json::json!({"model": "gpt-4o-mini", "messages": user_message(&format!("hello {i}")), "user": "ada"});
        assert_eq!(chat(&http, &dp, KEY, body).await.0, 200);
    }
    let body = serde_json::json!({"model": "broken-model", "messages": user_message("this fails")});
    assert!(chat(&http, &dp, KEY, body).await.0 >= 500);
    usage_once(&mut stack.cp.admin().await, "", ok + 1).await;
    // The viewer, added over the Admin API as `tokenrouter dashboard-users add` does.
    let viewer = tokenrouter_proto::v1::DashboardUserWrite {
        name: "vera".into(),
        role: "viewer".into(),
        password: VIEWER_PASSWORD.into(),
        replace: false,
    };
    stack
        .cp
        .admin()
        .await
        .put_dashboard_user(viewer)
        .await
        .unwrap();

    let base = crate::setup::serve_dashboard(&stack.cp, TOKEN).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts/dashboard");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/dashboard.mjs");
    run_script(
        &node,
        &[&script],
        [
            ("TOKENROUTER_DASHBOARD_URL", base),
            ("TOKENROUTER_ADMIN_TOKEN", TOKEN.to_string()),
            ("TOKENROUTER_BASE_URL", dp.url("/v1")),
            ("TOKENROUTER_EXPECTED_REQUESTS", (ok + 1).to_string()),
            ("TOKENROUTER_EXPECTED_ERRORS", "1".to_string()),
            ("TOKENROUTER_CHROMIUM", browser.display().to_string()),
            ("TOKENROUTER_SCREENSHOTS", shots.display().to_string()),
            ("TOKENROUTER_VIEWER", "vera".to_string()),
            ("TOKENROUTER_VIEWER_PASSWORD", VIEWER_PASSWORD.to_string()),
        ],
        "all dashboard checks passed",
    )
    .await;
}
