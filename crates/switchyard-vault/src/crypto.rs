//! The AES-256-GCM primitives every layer shares: 256-bit key bytes that wipe themselves,
//! sealing with a random nonce, and the associated-data encodings that bind each ciphertext to
//! where it belongs.
//!
//! Sealed format: `[FORMAT_V1][nonce: 12][ciphertext || tag: 16]`. The leading byte lets a
//! later format (another AEAD, a longer nonce) coexist with data written by this one.

use std::fmt;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{Result, VaultError};

pub(crate) const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const FORMAT_V1: u8 = 1;

/// 256 bits of key material, wiped on drop and never printed.
#[derive(Clone)]
pub struct KeyBytes(Zeroizing<[u8; KEY_LEN]>);

impl KeyBytes {
    /// Fresh random key from the thread-local CSPRNG (ChaCha, seeded from the OS).
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0_u8; KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut());
        KeyBytes(bytes)
    }

    /// Copies exactly 32 bytes; anything else is rejected.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(KeyBytes(Zeroizing::new(array)))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// An AES-256-GCM instance keyed with these bytes (its key schedule is wiped on drop).
    pub(crate) fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.0.as_ref().into())
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes([REDACTED])")
    }
}

/// Encrypts `plaintext` under `cipher` with `aad`, returning the sealed format above.
pub(crate) fn seal(cipher: &Aes256Gcm, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0_u8; NONCE_LEN];
    // Random 96-bit nonces are safe for far more messages than one data key ever sees before
    // rotation (the GCM bound is 2^32 per key).
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| VaultError::EncryptionFailed)?;
    let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
    sealed.push(FORMAT_V1);
    sealed.extend_from_slice(&nonce);
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Reverses [`seal`]. Any mismatch (key, AAD, tampering) is [`VaultError::DecryptionFailed`].
pub(crate) fn open(
    cipher: &Aes256Gcm,
    aad: &[u8],
    sealed: &[u8],
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>> {
    let Some((&format, rest)) = sealed.split_first() else {
        return Err(VaultError::Malformed { what });
    };
    if format != FORMAT_V1 || rest.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::Malformed { what });
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::DecryptionFailed)
}

/// Associated data: a domain label followed by length-prefixed fields, so that no two
/// different (tenant, name, version) tuples can encode to the same bytes.
pub(crate) struct Aad(Vec<u8>);

impl Aad {
    pub(crate) fn new(domain: &'static str) -> Self {
        let mut aad = Aad(Vec::with_capacity(96));
        aad.field(domain.as_bytes());
        aad
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut Self {
        // Fields are bounded far below u32::MAX (identifiers are validated); saturate anyway.
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn number(&mut self, value: u32) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// AAD of a secret version's ciphertext.
    pub(crate) fn secret(tenant: &str, name: &str, version: u32) -> Self {
        let mut aad = Aad::new("switchyard-vault/secret/v1");
        aad.field(tenant.as_bytes())
            .field(name.as_bytes())
            .number(version);
        aad
    }

    /// AAD of a blob: domain-separated from secrets so neither can stand in for the other.
    pub(crate) fn blob(tenant: &str, context: &[u8]) -> Self {
        let mut aad = Aad::new("switchyard-vault/blob/v1");
        aad.field(tenant.as_bytes()).field(context);
        aad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let key = KeyBytes::generate();
        let cipher = key.cipher();
        let aad = Aad::secret("t1", "db", 1);
        let sealed = seal(&cipher, aad.bytes(), b"plaintext").unwrap();
        assert_eq!(sealed.len(), 1 + 12 + 9 + 16);
        let opened = open(&cipher, aad.bytes(), &sealed, "secret").unwrap();
        assert_eq!(opened.as_slice(), b"plaintext");

        let mut tampered = sealed.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(matches!(
            open(&cipher, aad.bytes(), &tampered, "secret"),
            Err(VaultError::DecryptionFailed)
        ));
        let other_key = KeyBytes::generate().cipher();
        assert!(matches!(
            open(&other_key, aad.bytes(), &sealed, "secret"),
            Err(VaultError::DecryptionFailed)
        ));
        assert!(matches!(
            open(&cipher, aad.bytes(), &sealed[..10], "secret"),
            Err(VaultError::Malformed { .. })
        ));
    }

    #[test]
    fn nonces_differ() {
        let cipher = KeyBytes::generate().cipher();
        let a = seal(&cipher, b"", b"same").unwrap();
        let b = seal(&cipher, b"", b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn aad_fields_are_unambiguous() {
        assert_ne!(
            Aad::secret("ab", "c", 1).bytes(),
            Aad::secret("a", "bc", 1).bytes()
        );
        assert_ne!(
            Aad::secret("t", "n", 1).bytes(),
            Aad::blob("t", b"n").bytes()
        );
    }

    #[test]
    fn key_debug_is_redacted() {
        let key = KeyBytes::from_slice(&[7_u8; 32]).unwrap();
        assert_eq!(format!("{key:?}"), "KeyBytes([REDACTED])");
        assert!(KeyBytes::from_slice(&[0_u8; 31]).is_none());
    }
}
