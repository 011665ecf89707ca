//! Random identifiers for requests and answers, from the thread-local generator (no system call
//! per id, unlike `Uuid::new_v4`).

use rand::Rng;

/// 32 lowercase hex characters (128 random bits).
pub fn random_hex() -> String {
    format!("{:032x}", rand::rng().random::<u128>())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_hex_and_distinct() {
        let (a, b) = (super::random_hex(), super::random_hex());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
