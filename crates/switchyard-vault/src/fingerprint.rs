//! Fingerprints: a keyed HMAC-SHA256 of a plaintext under the tenant's fingerprint key, so the
//! same value is recognisable within a tenant (e.g. "this connection uses the same token as
//! that one") while nothing can be learned about it, nor matched across tenants.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{crypto::KeyBytes, secret::Fingerprint};

/// 8 bytes = 16 hex characters: plenty to tell a tenant's secrets apart, too short to be a
/// useful offline oracle.
const FINGERPRINT_BYTES: usize = 8;

pub(crate) fn fingerprint(key: &KeyBytes, plaintext: &[u8]) -> Fingerprint {
    // A 32-byte key is always a valid HMAC key; the fallback cannot be reached but keeps this
    // function total without a panic path.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.expose()) else {
        return Fingerprint::from_hex(String::new());
    };
    mac.update(b"switchyard-vault/fingerprint/v1\0");
    mac.update(plaintext);
    let digest = mac.finalize().into_bytes();
    Fingerprint::from_hex(hex::encode(&digest[..FINGERPRINT_BYTES]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_per_key_and_different_across_keys() {
        let a = KeyBytes::generate();
        let b = KeyBytes::generate();
        assert_eq!(fingerprint(&a, b"token"), fingerprint(&a, b"token"));
        assert_ne!(fingerprint(&a, b"token"), fingerprint(&a, b"token2"));
        assert_ne!(fingerprint(&a, b"token"), fingerprint(&b, b"token"));
        assert_eq!(fingerprint(&a, b"token").as_str().len(), 16);
    }
}
