//! Minting and hashing bearer secrets. Plaintext secrets exist only in the
//! response that shows them once; everything stored is a hash.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 random bytes as URL-safe base64 without padding (43 characters).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Lowercase hex SHA-256; what the store keeps for every token and code.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        let a = new_token();
        assert_eq!(a.len(), 43);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(a, new_token());
        assert_eq!(hash_token("x").len(), 64);
        assert_ne!(hash_token(&a), a);
    }
}
