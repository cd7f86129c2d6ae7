//! Small primitives every scheme shares: MACs, digests, constant-time comparison, decoding.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ring::{digest, hmac};
use subtle::ConstantTimeEq as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mac {
    Sha1,
    Sha256,
    Sha512,
}

impl Mac {
    fn algorithm(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    pub(crate) fn len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

/// HMAC over the concatenation of `parts` (no copy of the body).
pub(crate) fn mac(algorithm: Mac, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(algorithm.algorithm(), key);
    let mut context = hmac::Context::with_key(&key);
    for part in parts {
        context.update(part);
    }
    context.sign().as_ref().to_vec()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// Length-checked constant-time equality.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Equality of shared secrets without leaking either content or length through timing:
/// compare their digests.
pub(crate) fn ct_eq_secret(provided: &[u8], expected: &[u8]) -> bool {
    ct_eq(&sha256(provided), &sha256(expected))
}

pub(crate) fn decode_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.trim()).ok()
}

/// Standard base64, with or without padding; providers differ.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD
        .decode(text)
        .or_else(|_| STANDARD_NO_PAD.decode(text))
        .ok()
}

pub(crate) fn decode_base64url(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
}

pub(crate) fn encode_base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_checks_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"ab", b"abc"));
        assert!(!ct_eq(b"", b"abc"));
        assert!(!ct_eq(b"abd", b"abc"));
    }
}
