//! Key material for tests: PEM armour, and RSA key pairs in the forms providers hand them out
//! (PKCS#8, GitHub's PKCS#1, the SPKI public key).

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;

/// `der` in PEM armour under `label` (`PRIVATE KEY`, `RSA PRIVATE KEY`, `PUBLIC KEY`).
pub fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`: the octet string after the version
/// and the algorithm identifier. Empty when `der` is not one.
pub fn pkcs1_from_pkcs8(der: &[u8]) -> &[u8] {
    fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            let (bytes, rest) = rest.split_at_checked(count)?;
            (
                bytes.iter().fold(0usize, |n, b| (n << 8) | usize::from(*b)),
                rest,
            )
        };
        let (content, rest) = rest.split_at_checked(len)?;
        Some((tag, content, rest))
    }
    let inner = || {
        let (_, info, _) = element(der)?;
        let (_, _, rest) = element(info)?; // version
        let (_, _, rest) = element(rest)?; // algorithm
        let (tag, key, _) = element(rest)?;
        (tag == 0x04).then_some(key)
    };
    inner().unwrap_or_default()
}

/// A fresh 2048-bit RSA key pair as PEM text. `Debug` shows no key.
#[derive(Clone)]
pub struct RsaPems {
    /// PKCS#8 (`BEGIN PRIVATE KEY`).
    pub pkcs8: String,
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), as GitHub hands App keys out.
    pub pkcs1: String,
    /// SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`).
    pub public: String,
}

impl std::fmt::Debug for RsaPems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaPems(<private>)")
    }
}

impl RsaPems {
    /// # Panics
    /// When the platform cannot generate a key: nothing a test could do about it.
    pub fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("an RSA key pair");
        let pkcs8 = pair.as_der().expect("a PKCS#8 private key");
        let public = pair.public_key().as_der().expect("an SPKI public key");
        Self {
            pkcs8: pem("PRIVATE KEY", pkcs8.as_ref()),
            pkcs1: pem("RSA PRIVATE KEY", pkcs1_from_pkcs8(pkcs8.as_ref())),
            public: pem("PUBLIC KEY", public.as_ref()),
        }
    }
}
