//! Dashboard passwords: argon2id hashes (OWASP's parameters: 19 MiB, two passes, one lane) in
//! PHC form, and their verification, each run on the blocking pool (one hash is tens of
//! milliseconds of CPU) and at most [`AT_ONCE`] at a time, so a flood of sign-ins cannot take
//! the control plane's threads.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Hashes and verifications running at once.
const AT_ONCE: usize = 2;
/// Shortest password accepted.
pub const MIN_LEN: usize = 12;
/// Longest password accepted, in bytes.
pub const MAX_LEN: usize = 1024;

static SLOTS: Semaphore = Semaphore::const_new(AT_ONCE);

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// A hash verified when the user does not exist, so that a wrong name takes as long as a wrong
/// password (names cannot be told apart by timing).
static DECOY: LazyLock<Option<String>> =
    LazyLock::new(|| hash_now("decoy password, never used").ok());

fn hash_now(password: &str) -> Result<String, String> {
    use rand::Rng;
    let salt: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_now(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    // Only argon2id hashes are accepted, whatever the string claims.
    parsed.algorithm == Algorithm::Argon2id.ident()
        && argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
}

/// Why a password is not accepted for a new user, if it is not.
pub fn refusal(password: &str) -> Option<String> {
    if password.chars().count() < MIN_LEN {
        return Some(format!("must be at least {MIN_LEN} characters"));
    }
    if password.len() > MAX_LEN {
        return Some(format!("must be at most {MAX_LEN} bytes"));
    }
    None
}

/// The argon2id PHC string of `password`, with a fresh random salt.
pub async fn hash(password: String) -> Result<String, String> {
    let _slot = SLOTS.acquire().await.map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || hash_now(&password))
        .await
        .map_err(|e| e.to_string())?
}

/// Whether `password` matches `hash`; with no hash (no such user) a decoy is checked and the
/// answer is `false`.
pub async fn verify(password: String, hash: Option<String>) -> bool {
    let Ok(_slot) = SLOTS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || match hash {
        Some(h) => verify_now(&password, &h),
        None => {
            if let Some(decoy) = DECOY.as_deref() {
                verify_now(&password, decoy);
            }
            false
        }
    })
    .await
    .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_salts_differ() {
        let a = hash("correct horse battery".into()).await.unwrap();
        let b = hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("correct horse battery".into(), Some(a.clone())).await);
        assert!(!verify("correct horse battery!".into(), Some(a)).await);
        assert!(!verify("anything".into(), None).await);
        assert!(!verify("anything".into(), Some("not a hash".into())).await);
    }

    #[test]
    fn weak_passwords_are_refused() {
        assert!(refusal("short").is_some());
        assert!(refusal(&"x".repeat(MAX_LEN + 1)).is_some());
        assert_eq!(refusal("twelve chars"), None);
    }
}
