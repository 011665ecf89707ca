//! Random identifiers for requests and answers, from the thread-local generator (no system call
//! per id, unlike `Uuid::new_v4`).

use rand::Rng;

/// `prefix` followed by 32 lowercase hex characters (128 random bits), in one allocation.
pub fn prefixed_hex(prefix: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let bits = rand::rng().random::<u128>();
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for shift in (0..32).rev() {
        id.push(char::from(DIGITS[((bits >> (shift * 4)) & 0xf) as usize]));
    }
    id
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_hex_and_distinct() {
        let (a, b) = (super::prefixed_hex(""), super::prefixed_hex(""));
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        let p = super::prefixed_hex("req_");
        assert!(p.starts_with("req_") && p.len() == 36, "{p}");
    }
}
