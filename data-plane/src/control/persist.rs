//! The snapshot file: every applied snapshot is written (tmp + rename) so a data plane can start and
//! serve while the control plane is down.

use std::path::Path;

use prost::Message;
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
}

/// Writes atomically with owner-only permissions (the snapshot holds provider credentials).
pub async fn save(path: &Path, snapshot: &Snapshot) -> Result<(), PersistError> {
    let bytes = snapshot.encode_to_vec();
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

/// Reads the snapshot file; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<Snapshot>, PersistError> {
    match std::fs::read(path) {
        Ok(bytes) => Snapshot::decode(bytes.as_slice())
            .map(Some)
            .map_err(|_| PersistError::Corrupt(path.display().to_string())),
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
    async fn round_trips_and_reports_corruption() {
        let dir = std::env::temp_dir().join(format!("tr-snap-{}", uuid::Uuid::new_v4()));
        let path = dir.join("snapshot.pb");
        assert!(load(&path).unwrap().is_none());
        let s = Snapshot {
            version: 4,
            epoch: "e".into(),
            ..Default::default()
        };
        save(&path, &s).await.unwrap();
        assert_eq!(load(&path).unwrap(), Some(s));
        std::fs::write(&path, b"\xff\xff\xff").unwrap();
        assert!(matches!(load(&path), Err(PersistError::Corrupt(_))));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
