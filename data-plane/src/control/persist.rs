//! The snapshot file: every applied snapshot is sealed (AES-256-GCM) and written (tmp + rename) so a
//! data plane can start and serve while the control plane is down, and nobody who reads the file
//! learns a provider credential.

use std::path::{Path, PathBuf};

use prost::Message;
use tokenrouter_proto::sealed::MasterKey;
use tokenrouter_proto::v1::Snapshot;

/// Why the snapshot file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("snapshot file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("snapshot file {0} is not a valid snapshot")]
    Corrupt(String),
    #[error(
        "snapshot file {0} cannot be decrypted with this key (TOKENROUTER_SNAPSHOT_KEY or the key file changed?)"
    )]
    WrongKey(String),
    #[error("snapshot key: {0}")]
    Key(#[from] tokenrouter_proto::sealed::CryptoError),
}

/// The key file used when no key is configured: beside the snapshot file.
pub fn key_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// The configured key, or the one in [`key_file`] (created on first use).
pub fn key_for(path: &Path, configured: Option<&MasterKey>) -> Result<MasterKey, PersistError> {
    match configured {
        Some(key) => Ok(key.clone()),
        None => Ok(MasterKey::load_or_create(&key_file(path))?),
    }
}

/// Seals and writes atomically with owner-only permissions.
pub async fn save(path: &Path, key: &MasterKey, snapshot: &Snapshot) -> Result<(), PersistError> {
    let bytes = key.seal(&snapshot.encode_to_vec());
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
        .await
        .map_err(|e| PersistError::Io {
            path: String::new(),
            source: std::io::Error::other(e),
        })?
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    use std::io::Write;
    let io = |source| PersistError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads and opens the snapshot file; `Ok(None)` when there is none yet. A file written before
/// files were sealed is read as it is (and sealed on the next save).
pub fn load(path: &Path, key: &MasterKey) -> Result<Option<Snapshot>, PersistError> {
    let shown = || path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => {
            let plain = if MasterKey::is_sealed(&bytes) {
                key.open(&bytes)
                    .map_err(|_| PersistError::WrongKey(shown()))?
            } else {
                bytes
            };
            Snapshot::decode(plain.as_slice())
                .map(Some)
                .map_err(|_| PersistError::Corrupt(shown()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PersistError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trips_sealed_and_reports_corruption_and_a_wrong_key() {
        let dir = std::env::temp_dir().join(format!("tr-snap-{}", uuid::Uuid::new_v4()));
        let path = dir.join("snapshot.pb");
        let key = key_for(&path, None).unwrap();
        assert!(load(&path, &key).unwrap().is_none());
        let s = Snapshot {
            version: 4,
            epoch: "e".into(),
            credentials: vec![tokenrouter_proto::v1::Credential {
                name: "c".into(),
                secret: "sk-canary-in-the-file".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        save(&path, &key, &s).await.unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"canary"), "sealed on disk");
        assert_eq!(load(&path, &key).unwrap(), Some(s.clone()));
        // The generated key is kept, owner-only, and found again.
        assert_eq!(
            load(&path, &key_for(&path, None).unwrap()).unwrap(),
            Some(s)
        );
        let wrong = MasterKey::from_bytes(&[9; 32]);
        let err = load(&path, &wrong).unwrap_err();
        assert!(matches!(err, PersistError::WrongKey(_)), "{err}");
        assert!(err.to_string().contains("cannot be decrypted"));
        std::fs::write(&path, b"\xff\xff\xff").unwrap();
        assert!(matches!(load(&path, &key), Err(PersistError::Corrupt(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
