//! The server certificate pin: SHA-256 of the leaf certificate's DER.

use sha2::{Digest, Sha256};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CertPin([u8; 32]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 64 lowercase hex digits, got {0}")]
pub struct PinSyntaxError(String);

impl CertPin {
    pub fn of_der(der: &[u8]) -> CertPin {
        CertPin(Sha256::digest(der).into())
    }

    /// Accepts exactly the form the server prints: 64 lowercase hex digits.
    /// Uppercase is refused so that a pin has one spelling everywhere.
    pub fn parse_hex(s: &str) -> Result<CertPin, PinSyntaxError> {
        let well_formed = s.len() == 64
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            let what = if s.len() != 64 {
                format!("{} characters", s.len())
            } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
                "uppercase hex digits".to_string()
            } else {
                "a non-hex character".to_string()
            };
            return Err(PinSyntaxError(what));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|e| PinSyntaxError(e.to_string()))?;
        Ok(CertPin(bytes))
    }

    pub fn matches(&self, der: &[u8]) -> bool {
        *self == CertPin::of_der(der)
    }
}

impl fmt::Display for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for CertPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertPin({self})")
    }
}
