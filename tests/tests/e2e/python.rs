//! Compatibility with the official OpenAI Python SDK: `tests/python/compat.py` drives a live data
//! plane (chat, streaming, tool calls, the error on a bad key, extension fields).

use tokenrouter_tests::{Backend, DataPlaneHandle, data_plane_config};

use crate::setup::{KEY, add_simulated_provider, stack};

/// The Python with the `openai` package: `TOKENROUTER_TEST_PYTHON`, else the repo's `.venv`.
fn python() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("TOKENROUTER_TEST_PYTHON") {
        return Some(p.into());
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    if venv.exists() {
        return Some(venv);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide the OpenAI SDK: run scripts/test"
    );
    None
}

#[tokio::test]
async fn the_official_openai_python_sdk_works_unchanged() {
    let Some(python) = python() else {
        return eprintln!("skipped: no .venv with the openai package (run scripts/test)");
    };
    let stack = stack(Backend::Sqlite).await.unwrap();
    let (_sim, version) = add_simulated_provider(&stack.cp, "alpha", &["gpt-4o-mini"]).await;
    let dp = DataPlaneHandle::start(data_plane_config("py"), &stack.cp.url(), None).await;
    dp.wait_for_version(version).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/compat.py");
    let output = tokio::process::Command::new(python)
        .arg(script)
        .env("TOKENROUTER_BASE_URL", dp.url("/v1"))
        .env("TOKENROUTER_API_KEY", KEY)
        .env("TOKENROUTER_MODEL", "gpt-4o-mini")
        .output()
        .await
        .expect("run python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "compat.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("all compatibility checks passed"),
        "{stdout}"
    );
}
