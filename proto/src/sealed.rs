//! Encryption at rest, shared by both planes: AES-256-GCM under a 32-byte key kept outside what it
//! protects (the control plane's master key seals credentials in the store; a data plane's
//! snapshot key seals its snapshot file).

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rand::RngCore;

/// Prefix of every encrypted value, so a format change can be recognised later.
const PREFIX: &str = "enc:v1:";

/// Prefix of a sealed file, before the nonce and the ciphertext.
const FILE_MAGIC: &[u8; 8] = b"TRSEAL1\n";

/// Why a key could not be had or a value could not be decrypted.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("a key must be 32 bytes as 64 hex characters or base64")]
    BadKeyFormat,
    #[error("key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("sealed data cannot be decrypted with this key (was the key changed?)")]
    Decrypt,
}

/// The key-encryption key. Its `Debug` never shows the bytes.
#[derive(Clone)]
pub struct MasterKey(Aes256Gcm);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        MasterKey(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)))
    }

    /// Parses the `TOKENROUTER_MASTER_KEY` form: 64 hex characters or base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let bytes = if text.len() == 64 {
            hex::decode(text).map_err(|_| CryptoError::BadKeyFormat)?
        } else {
            B64.decode(text).map_err(|_| CryptoError::BadKeyFormat)?
        };
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKeyFormat)?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Reads the key file, creating it (owner-only permissions) with a fresh random key if absent.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        let io = |source| CryptoError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                write_private(path, B64.encode(bytes).as_bytes()).map_err(io)?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// `nonce || ciphertext` under a fresh random nonce: what both forms below wrap.
    fn seal_raw(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and a 12-byte nonce cannot fail for inputs this small.
        let sealed = self
            .0
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`MasterKey::seal_raw`] made.
    fn open_raw(&self, raw: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if raw.len() < 12 {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ciphertext) = raw.split_at(12);
        self.0
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| CryptoError::Decrypt)
    }

    /// Encrypts a secret into `enc:v1:<base64(nonce || ciphertext)>`.
    pub fn encrypt(&self, plaintext: &str) -> String {
        format!(
            "{PREFIX}{}",
            B64.encode(self.seal_raw(plaintext.as_bytes()))
        )
    }

    /// Seals bytes into `TRSEAL1\n || nonce || ciphertext` (a file's whole contents).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        [FILE_MAGIC.as_slice(), &self.seal_raw(plaintext)].concat()
    }

    /// Whether `bytes` look like the output of [`MasterKey::seal`] (under any key).
    pub fn is_sealed(bytes: &[u8]) -> bool {
        bytes.starts_with(FILE_MAGIC)
    }

    /// Opens what [`MasterKey::seal`] made; fails with [`CryptoError::Decrypt`] under another key
    /// or after any change to the bytes.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.open_raw(
            sealed
                .strip_prefix(FILE_MAGIC)
                .ok_or(CryptoError::Decrypt)?,
        )
    }

    /// Decrypts a value made by [`MasterKey::encrypt`].
    pub fn decrypt(&self, stored: &str) -> Result<String, CryptoError> {
        let body = stored.strip_prefix(PREFIX).ok_or(CryptoError::Decrypt)?;
        let raw = B64.decode(body).map_err(|_| CryptoError::Decrypt)?;
        String::from_utf8(self.open_raw(&raw)?).map_err(|_| CryptoError::Decrypt)
    }
}

/// Writes a file readable and writable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_hides_the_plaintext() {
        let key = MasterKey::from_bytes(&[7; 32]);
        let sealed = key.encrypt("sk-canary-123");
        assert!(!sealed.contains("canary"));
        assert_eq!(key.decrypt(&sealed).unwrap(), "sk-canary-123");
        assert!(MasterKey::from_bytes(&[8; 32]).decrypt(&sealed).is_err());
        assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
        let file = key.seal(b"credential sk-canary-456");
        assert!(MasterKey::is_sealed(&file));
        assert!(!file.windows(6).any(|w| w == b"canary"));
        assert_eq!(key.open(&file).unwrap(), b"credential sk-canary-456");
        assert!(MasterKey::from_bytes(&[8; 32]).open(&file).is_err());
    }

    #[test]
    fn parses_hex_and_base64_and_refuses_short_keys() {
        assert!(MasterKey::parse(&"ab".repeat(32)).is_ok());
        assert!(MasterKey::parse(&B64.encode([1u8; 32])).is_ok());
        assert!(MasterKey::parse("short").is_err());
    }

    #[test]
    fn creates_an_owner_only_key_file_once() {
        let dir = std::env::temp_dir().join(format!("tr-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("master.key");
        let a = MasterKey::load_or_create(&path).unwrap();
        let b = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(b.decrypt(&a.encrypt("x")).unwrap(), "x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
