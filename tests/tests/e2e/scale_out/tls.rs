//! Mutual TLS between the planes, with certificates made at run time.

use super::*;

/// A CA, a server certificate for 127.0.0.1 and localhost, and a client certificate, made now.
struct Certs {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn certs() -> Certs {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tokenrouter test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>, purpose: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    Certs {
        ca: ca.pem(),
        server: leaf(
            vec!["localhost".into(), "127.0.0.1".into()],
            ExtendedKeyUsagePurpose::ServerAuth,
        ),
        client: leaf(vec!["dp".into()], ExtendedKeyUsagePurpose::ClientAuth),
    }
}

/// Mutual TLS between the planes: a data plane without a client certificate receives no
/// snapshot; one with a certificate from the CA does, and its snapshot file holds no credential.
#[tokio::test]
async fn only_a_data_plane_with_a_client_certificate_receives_credentials() {
    let certs = certs();
    let (store, _) = tokenrouter_tests::fresh_store(Backend::Sqlite)
        .await
        .unwrap();
    let mut cp = ControlPlaneHandle::start_with(
        store,
        None,
        None,
        Some(tokenrouter_control_plane::ServerTls {
            cert_pem: certs.server.0.clone().into_bytes(),
            key_pem: certs.server.1.clone().into_bytes(),
            client_ca_pem: Some(certs.ca.clone().into_bytes()),
        }),
    )
    .await;
    let tls = |with_identity: bool| tokenrouter_data_plane::ClientTls {
        ca_pem: Some(certs.ca.clone().into_bytes()),
        identity_pem: with_identity.then(|| {
            (
                certs.client.0.clone().into_bytes(),
                certs.client.1.clone().into_bytes(),
            )
        }),
    };
    cp.admin_tls = Some(tls(true));
    let (_sim, version) = setup::add_simulated_provider(&cp, "sim", &["gpt-4o-mini"]).await;
    let url = cp.url();
    let mut anonymous = WatchConfig::new(&url);
    anonymous.tls = tls(false);
    let stranger = DataPlaneHandle::start_watching(data_plane_config("stranger"), anonymous).await;
    let mut trusted = WatchConfig::new(&url);
    trusted.tls = tls(true);
    let config = data_plane_config("trusted");
    let snapshot_file = config.snapshot_path.clone().unwrap();
    let member = DataPlaneHandle::start_watching(config, trusted).await;
    member.wait_for_version(version).await;
    member
        .wait_until("snapshot saved", |_| snapshot_file.exists())
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let saved = std::fs::read(&snapshot_file).unwrap();
    let secret = b"sim-secret-sim";
    assert!(
        !saved.windows(secret.len()).any(|w| w == secret),
        "the snapshot file is sealed"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!stranger.state.is_ready(), "no certificate, no snapshot");
    assert_eq!(stranger.state.runtime().version, 0);
}
