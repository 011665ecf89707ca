//! Compatibility with the official OpenAI Node SDK: `tests/node/compat.mjs` drives a live data plane
//! set up exactly as for `tests/python/compat.py` (chat, streaming, tool calls, JSON modes, models,
//! every error type, extension fields).

use std::path::{Path, PathBuf};

use crate::setup::{SdkStack, run_script};

/// The `node` to run (`TOKENROUTER_TEST_NODE`, else `node` on the PATH) once the `openai` package
/// is installed in `tests/node/node_modules` (`scripts/test` runs `npm ci` there).
pub(crate) fn node() -> Option<PathBuf> {
    let node =
        std::env::var_os("TOKENROUTER_TEST_NODE").map_or_else(|| "node".into(), PathBuf::from);
    let runs = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("node/node_modules/openai/package.json")
        .exists();
    if runs && installed {
        return Some(node);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide node and the OpenAI Node SDK: run scripts/test (node found: {runs}, tests/node/node_modules/openai installed: {installed})"
    );
    None
}

#[tokio::test]
async fn the_official_openai_node_sdk_works_unchanged() {
    let Some(node) = node() else {
        return eprintln!(
            "skipped: node or tests/node/node_modules missing (install node and run scripts/test)"
        );
    };
    let sdk = SdkStack::start("node").await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("node/compat.mjs");
    run_script(
        &node,
        &[&script],
        sdk.script_env(),
        "all node compatibility checks passed",
    )
    .await;
    sdk.assert_every_parameter_forwarded();
}
