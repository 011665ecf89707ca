//! The Admin API: validation of every write, compare-and-swap, write-only secrets, restarts, the
//! admin token, and server reflection.

use tokenrouter_control_plane::ControlPlane;
use tokenrouter_proto::v1::*;
use tokenrouter_tests::{
    Backend, ControlPlaneHandle, DataPlaneHandle, data_plane_config, fresh_store, master_key,
    reopen_store,
};
use tonic::Code;

use crate::setup::stack;

fn provider(name: &str) -> Provider {
    Provider {
        name: name.into(),
        kind: "openai".into(),
        base_url: "https://api.example.com/v1".into(),
        models: vec!["m".into()],
        ..Default::default()
    }
}

fn expect_error<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    needle: &str,
) {
    let status = result.expect_err("the write must fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "{:?} should mention {needle:?}",
        status.message()
    );
}

async fn every_validation_error(backend: Backend) {
    let Some(stack) = stack(backend).await else {
        return eprintln!("skipped: no postgres");
    };
    let mut admin = stack.cp.admin().await;
    let put = |p: Provider| ProviderWrite {
        provider: Some(p),
        expected_version: 0,
    };
    admin.create_provider(put(provider("good"))).await.unwrap();
    let before = admin
        .get_snapshot(GetSnapshotRequest {})
        .await
        .unwrap()
        .into_inner()
        .version;

    let cases: Vec<(Provider, &str)> = vec![
        (
            Provider {
                name: "Bad Name".into(),
                ..provider("x")
            },
            "providers[].name",
        ),
        (
            Provider {
                name: String::new(),
                ..provider("x")
            },
            "providers[].name",
        ),
        (
            Provider {
                kind: "smoke-signals".into(),
                ..provider("x")
            },
            "providers[x].kind: unknown provider kind",
        ),
        (
            Provider {
                base_url: "ftp://example.com".into(),
                ..provider("x")
            },
            "providers[x].base_url: scheme must be http or https",
        ),
        (
            Provider {
                base_url: "not a url".into(),
                ..provider("x")
            },
            "providers[x].base_url",
        ),
        (
            Provider {
                base_url: "https://example.com/v1?key=abc".into(),
                ..provider("x")
            },
            "keys never go in URLs",
        ),
        (
            Provider {
                base_url: "https://user:pw@example.com/v1".into(),
                ..provider("x")
            },
            "must not carry credentials",
        ),
        (
            Provider {
                models: vec!["a".into(), "a".into()],
                ..provider("x")
            },
            "providers[x].models: duplicate",
        ),
        (
            Provider {
                models: vec!["has space".into()],
                ..provider("x")
            },
            "providers[x].models",
        ),
    ];
    for (p, needle) in cases {
        expect_error(
            admin.create_provider(put(p)).await,
            Code::InvalidArgument,
            needle,
        );
    }
    expect_error(
        admin
            .create_provider(ProviderWrite {
                provider: None,
                expected_version: 0,
            })
            .await,
        Code::InvalidArgument,
        "provider: is required",
    );
    expect_error(
        admin.create_provider(put(provider("good"))).await,
        Code::AlreadyExists,
        "already exists",
    );
    expect_error(
        admin.update_provider(put(provider("missing"))).await,
        Code::NotFound,
        "does not exist",
    );
    expect_error(
        admin
            .delete_provider(DeleteRequest {
                name: "missing".into(),
                expected_version: 0,
            })
            .await,
        Code::NotFound,
        "does not exist",
    );

    let cred = |provider: &str, secret: &str| CredentialWrite {
        credential: Some(Credential {
            name: "c".into(),
            provider: provider.into(),
            secret: secret.into(),
        }),
        expected_version: 0,
    };
    expect_error(
        admin.create_credential(cred("missing", "s3cret")).await,
        Code::InvalidArgument,
        "credentials[c].provider: provider \"missing\" does not exist",
    );
    expect_error(
        admin.create_credential(cred("good", "")).await,
        Code::InvalidArgument,
        "credential.secret",
    );
    expect_error(
        admin.create_credential(cred("good", "bad\nsecret")).await,
        Code::InvalidArgument,
        "credentials[c].secret",
    );

    let rule = |r: RoutingRule| RoutingRuleWrite {
        rule: Some(r),
        expected_version: 0,
    };
    let base_rule = RoutingRule {
        name: "r".into(),
        match_model: "m".into(),
        target_provider: "good".into(),
        ..Default::default()
    };
    expect_error(
        admin
            .create_routing_rule(rule(RoutingRule {
                target_provider: "gone".into(),
                ..base_rule.clone()
            }))
            .await,
        Code::InvalidArgument,
        "routing_rules[r].target_provider",
    );
    expect_error(
        admin
            .create_routing_rule(rule(RoutingRule {
                match_model: String::new(),
                ..base_rule.clone()
            }))
            .await,
        Code::InvalidArgument,
        "routing_rules[r].match_model",
    );
    expect_error(
        admin
            .create_routing_rule(rule(RoutingRule {
                fallback_policy: "nope".into(),
                ..base_rule.clone()
            }))
            .await,
        Code::InvalidArgument,
        "routing_rules[r].fallback_policy",
    );

    let policy = |p: FallbackPolicy| FallbackPolicyWrite {
        policy: Some(p),
        expected_version: 0,
    };
    expect_error(
        admin
            .create_fallback_policy(policy(FallbackPolicy {
                name: "p".into(),
                ..Default::default()
            }))
            .await,
        Code::InvalidArgument,
        "fallback_policies[p].chain: must name at least one target",
    );
    let dangling = FallbackPolicy {
        name: "p".into(),
        chain: vec![FallbackTarget {
            provider: "gone".into(),
            model: String::new(),
        }],
        max_attempts: 0,
        ..Default::default()
    };
    expect_error(
        admin.create_fallback_policy(policy(dangling)).await,
        Code::InvalidArgument,
        "fallback_policies[p].chain[].provider",
    );

    expect_error(
        admin
            .create_api_key(ApiKeyCreate {
                name: "short".into(),
                key: "abc".into(),
                expected_version: 0,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "key: must be at least",
    );
    expect_error(
        admin
            .create_api_key(ApiKeyCreate {
                name: "BAD".into(),
                key: String::new(),
                expected_version: 0,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "api_keys[].name",
    );

    // Deleting something still referred to leaves a dangling reference: refused.
    admin.create_routing_rule(rule(base_rule)).await.unwrap();
    expect_error(
        admin
            .delete_provider(DeleteRequest {
                name: "good".into(),
                expected_version: 0,
            })
            .await,
        Code::InvalidArgument,
        "routing_rules[r].target_provider",
    );

    // Nothing above committed except the one rule.
    let after = admin
        .get_snapshot(GetSnapshotRequest {})
        .await
        .unwrap()
        .into_inner()
        .version;
    assert_eq!(after, before + 1);
}

#[tokio::test]
async fn every_validation_error_sqlite() {
    every_validation_error(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_validation_error_postgres() {
    every_validation_error(Backend::Postgres).await;
}

async fn compare_and_swap(backend: Backend) {
    let Some(stack) = stack(backend).await else {
        return eprintln!("skipped: no postgres");
    };
    let mut admin = stack.cp.admin().await;
    let v = admin
        .get_snapshot(GetSnapshotRequest {})
        .await
        .unwrap()
        .into_inner()
        .version;
    let v2 = admin
        .create_provider(ProviderWrite {
            provider: Some(provider("a")),
            expected_version: v,
        })
        .await
        .unwrap()
        .into_inner()
        .version;
    assert_eq!(v2, v + 1);
    expect_error(
        admin
            .create_provider(ProviderWrite {
                provider: Some(provider("b")),
                expected_version: v,
            })
            .await,
        Code::FailedPrecondition,
        &format!("expected version {v}"),
    );
    expect_error(
        admin
            .delete_provider(DeleteRequest {
                name: "a".into(),
                expected_version: v,
            })
            .await,
        Code::FailedPrecondition,
        "store is at version",
    );
    let mut changed = provider("a");
    changed.models = vec!["new".into()];
    admin
        .update_provider(ProviderWrite {
            provider: Some(changed),
            expected_version: v2,
        })
        .await
        .unwrap();

    // Two control planes on one store: a write through one is seen by the other, and a write based
    // on a version the other has already moved past is refused, not lost.
    let other = ControlPlane::open(
        reopen_store(stack.backend, &stack.store_id).await,
        master_key(),
    )
    .await
    .unwrap();
    let v4 = other.create(provider("from-other"), 0).await.unwrap();
    assert_eq!(v4, v2 + 2);
    stack.cp.cp.refresh().await.unwrap();
    assert_eq!(stack.cp.cp.snapshot().version, v4);
    assert!(
        stack
            .cp
            .cp
            .snapshot()
            .providers
            .iter()
            .any(|p| p.name == "from-other")
    );
    let err = other.create(provider("late"), v2).await.unwrap_err();
    assert!(err.to_string().contains("expected version"), "{err}");
}

#[tokio::test]
async fn compare_and_swap_sqlite() {
    compare_and_swap(Backend::Sqlite).await;
}

#[tokio::test]
async fn compare_and_swap_postgres() {
    compare_and_swap(Backend::Postgres).await;
}

async fn secrets_are_write_only_and_encrypted(backend: Backend) {
    let Some(stack) = stack(backend).await else {
        return eprintln!("skipped: no postgres");
    };
    let canary = "sk-canary-5f1d2e9a7b";
    let mut admin = stack.cp.admin().await;
    admin
        .create_provider(ProviderWrite {
            provider: Some(provider("p")),
            expected_version: 0,
        })
        .await
        .unwrap();
    let cred = Credential {
        name: "c".into(),
        provider: "p".into(),
        secret: canary.into(),
    };
    admin
        .create_credential(CredentialWrite {
            credential: Some(cred.clone()),
            expected_version: 0,
        })
        .await
        .unwrap();

    let listed = admin
        .list_credentials(ListRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.credentials[0].secret, "");
    let snapshot = admin
        .get_snapshot(GetSnapshotRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(snapshot.credentials.iter().all(|c| c.secret.is_empty()));
    assert!(!format!("{snapshot:?}").contains(canary));

    // An update without a secret keeps the stored one.
    admin
        .update_credential(CredentialWrite {
            credential: Some(Credential {
                secret: String::new(),
                ..cred
            }),
            expected_version: 0,
        })
        .await
        .unwrap();
    assert_eq!(stack.cp.cp.snapshot().credentials[0].secret, canary);

    // What the store holds reveals nothing.
    let store = reopen_store(stack.backend, &stack.store_id).await;
    let rows = store.load().await.unwrap().rows;
    assert!(rows.iter().any(|r| r.kind == "credential"));
    for row in rows {
        assert!(
            !String::from_utf8_lossy(&row.body).contains(canary),
            "plaintext secret in the store"
        );
    }
    if backend == Backend::Sqlite {
        let dir = std::path::Path::new(&stack.store_id).parent().unwrap();
        for entry in std::fs::read_dir(dir).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(canary),
                "plaintext secret in a store file"
            );
        }
    }
    // A control plane with another master key cannot open it.
    let wrong = tokenrouter_control_plane::MasterKey::from_bytes(&[1; 32]);
    let err = ControlPlane::open(reopen_store(stack.backend, &stack.store_id).await, wrong)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot be decrypted"), "{err}");
}

#[tokio::test]
async fn secrets_are_write_only_and_encrypted_sqlite() {
    secrets_are_write_only_and_encrypted(Backend::Sqlite).await;
}

#[tokio::test]
async fn secrets_are_write_only_and_encrypted_postgres() {
    secrets_are_write_only_and_encrypted(Backend::Postgres).await;
}

#[tokio::test]
async fn a_restart_keeps_config_version_and_epoch() {
    let (store, id) = fresh_store(Backend::Sqlite).await.unwrap();
    let mut cp = ControlPlaneHandle::start(store, None, None).await;
    let mut admin = cp.admin().await;
    admin
        .create_provider(ProviderWrite {
            provider: Some(provider("keep")),
            expected_version: 0,
        })
        .await
        .unwrap();
    let before = admin
        .get_snapshot(GetSnapshotRequest {})
        .await
        .unwrap()
        .into_inner();
    cp.stop().await;
    let again =
        ControlPlaneHandle::start(reopen_store(Backend::Sqlite, &id).await, None, None).await;
    let after = again
        .admin()
        .await
        .get_snapshot(GetSnapshotRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(before, after);
    assert_eq!(after.version, 1);
}

#[tokio::test]
async fn the_admin_token_guards_admin_and_discovery() {
    let (store, _) = fresh_store(Backend::Sqlite).await.unwrap();
    let cp = ControlPlaneHandle::start(store, None, Some("admin-secret-token")).await;
    let mut anonymous = cp.admin().await;
    expect_error(
        anonymous.list_providers(ListRequest {}).await,
        Code::Unauthenticated,
        "admin token",
    );

    let channel = tonic::transport::Endpoint::from_shared(cp.url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut authed =
        admin_client::AdminClient::with_interceptor(channel, |mut r: tonic::Request<()>| {
            r.metadata_mut().insert(
                "authorization",
                "Bearer admin-secret-token".parse().unwrap(),
            );
            Ok(r)
        });
    let version = authed
        .create_provider(ProviderWrite {
            provider: Some(provider("p")),
            expected_version: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .version;

    let with_token = DataPlaneHandle::start(
        data_plane_config("tok"),
        &cp.url(),
        Some("admin-secret-token"),
    )
    .await;
    with_token.wait_for_version(version).await;
    let without = DataPlaneHandle::start(data_plane_config("notok"), &cp.url(), None).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !without.state.is_ready(),
        "a data plane without the token gets no snapshot"
    );
}

#[tokio::test]
async fn reflection_lists_both_services() {
    use tokenrouter_tests::reflection_services;
    let (store, _) = fresh_store(Backend::Sqlite).await.unwrap();
    let cp = ControlPlaneHandle::start(store, None, None).await;
    let services = reflection_services(&cp.url()).await;
    assert!(
        services.contains(&"tokenrouter.v1.Admin".to_string()),
        "{services:?}"
    );
    assert!(
        services.contains(&"tokenrouter.v1.Discovery".to_string()),
        "{services:?}"
    );
}

#[tokio::test]
async fn reflection_v1alpha_lists_both_services() {
    use tokenrouter_tests::reflection_services_v1alpha;
    let (store, _) = fresh_store(Backend::Sqlite).await.unwrap();
    let cp = ControlPlaneHandle::start(store, None, None).await;
    let services = reflection_services_v1alpha(&cp.url()).await;
    for service in ["tokenrouter.v1.Admin", "tokenrouter.v1.Discovery"] {
        assert!(services.iter().any(|s| s == service), "{services:?}");
    }
}
