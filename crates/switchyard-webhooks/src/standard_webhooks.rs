//! Standard Webhooks (<https://www.standardwebhooks.com/>): the signer outbound delivery uses and
//! the verifier the `standard_webhooks`, `svix` and GitLab signing schemes use.
//!
//! The signed content is `{msg_id}.{timestamp}.{body}`. `v1` is HMAC-SHA256 keyed with the
//! base64-decoded `whsec_` secret; `v1a` is ed25519 (`whsk_` signing key: base64 of the 32-byte
//! seed; `whpk_` public key: base64 of the 32-byte key). `webhook-signature` holds one or more
//! `version,base64` entries separated by spaces, so a rotation can send old and new at once.

use ring::rand::{SecureRandom as _, SystemRandom};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use time::OffsetDateTime;

use crate::crypto::{self, Mac};
use crate::error::Rejection;
use crate::request::{InboundRequest, check_tolerance, parse_unix_seconds};
use crate::secret::Secret;

pub const SECRET_PREFIX: &str = "whsec_";
pub const SIGNING_KEY_PREFIX: &str = "whsk_";
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// Header names of the specification.
pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";

const MIN_SECRET_BYTES: usize = 24;
const MAX_SECRET_BYTES: usize = 64;
const GENERATED_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("expected the `{0}` prefix")]
    Prefix(&'static str),
    #[error("the key is not valid base64")]
    Encoding,
    #[error("the key has the wrong length")]
    Length,
    #[error("the system random number generator failed")]
    Random,
}

/// A `whsec_` HMAC secret.
pub struct SigningSecret(SecretSlice<u8>);

impl SigningSecret {
    /// 32 random bytes (the specification asks for 24 to 64).
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = vec![0u8; GENERATED_SECRET_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Random)?;
        Ok(Self(SecretSlice::from(bytes)))
    }

    /// `whsec_` + base64; the prefix is optional, as in the reference libraries.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
        let bytes = crypto::decode_base64(encoded).ok_or(KeyError::Encoding)?;
        Self::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, KeyError> {
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(KeyError::Length);
        }
        Ok(Self(SecretSlice::from(bytes)))
    }

    pub fn to_whsec(&self) -> SecretString {
        SecretString::from(format!(
            "{SECRET_PREFIX}{}",
            crypto::encode_base64(self.0.expose_secret())
        ))
    }
}

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret([REDACTED])")
    }
}

/// A `whsk_` ed25519 signing key.
pub struct SigningKey {
    seed: SecretSlice<u8>,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = vec![0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| KeyError::Random)?;
        Self::from_seed(seed)
    }

    /// `whsk_` + base64 of the 32-byte seed; 64 bytes (seed then public key) are accepted too.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .strip_prefix(SIGNING_KEY_PREFIX)
            .ok_or(KeyError::Prefix(SIGNING_KEY_PREFIX))?;
        let mut bytes = crypto::decode_base64(encoded).ok_or(KeyError::Encoding)?;
        match bytes.len() {
            32 => Self::from_seed(bytes),
            64 => {
                let public = bytes.split_off(32);
                let key = Self::from_seed(bytes)?;
                if key.pair.public_key().as_ref() == public.as_slice() {
                    Ok(key)
                } else {
                    Err(KeyError::Length)
                }
            }
            _ => Err(KeyError::Length),
        }
    }

    fn from_seed(seed: Vec<u8>) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| KeyError::Length)?;
        Ok(Self {
            seed: SecretSlice::from(seed),
            pair,
        })
    }

    pub fn to_whsk(&self) -> SecretString {
        SecretString::from(format!(
            "{SIGNING_KEY_PREFIX}{}",
            crypto::encode_base64(self.seed.expose_secret())
        ))
    }

    pub fn public_key(&self) -> PublicKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(key)
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key().to_whpk())
            .finish_non_exhaustive()
    }
}

/// A `whpk_` ed25519 public key; not a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .strip_prefix(PUBLIC_KEY_PREFIX)
            .ok_or(KeyError::Prefix(PUBLIC_KEY_PREFIX))?;
        let bytes = crypto::decode_base64(encoded).ok_or(KeyError::Encoding)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length)?;
        Ok(Self(key))
    }

    pub fn to_whpk(&self) -> String {
        format!("{PUBLIC_KEY_PREFIX}{}", crypto::encode_base64(&self.0))
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

fn signed_content(msg_id: &str, timestamp: &str, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(msg_id.len() + timestamp.len() + body.len() + 2);
    content.extend_from_slice(msg_id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

/// `v1,{base64 HMAC-SHA256}` for the `webhook-signature` header.
pub fn sign(msg_id: &str, timestamp: i64, body: &[u8], secret: &SigningSecret) -> String {
    let content = signed_content(msg_id, &timestamp.to_string(), body);
    let mac = crypto::mac(Mac::Sha256, secret.0.expose_secret(), &[&content]);
    format!("v1,{}", crypto::encode_base64(&mac))
}

/// `v1a,{base64 ed25519 signature}` for the `webhook-signature` header.
pub fn sign_v1a(msg_id: &str, timestamp: i64, body: &[u8], key: &SigningKey) -> String {
    let content = signed_content(msg_id, &timestamp.to_string(), body);
    format!(
        "v1a,{}",
        crypto::encode_base64(key.pair.sign(&content).as_ref())
    )
}

/// Several signatures (e.g. current and previous secret during a rotation) in one header value.
pub fn signature_header<I, S>(signatures: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    signatures
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The three headers a variant of the scheme reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderNames {
    pub id: &'static str,
    pub timestamp: &'static str,
    pub signature: &'static str,
}

pub(crate) const STANDARD: HeaderNames = HeaderNames {
    id: ID_HEADER,
    timestamp: TIMESTAMP_HEADER,
    signature: SIGNATURE_HEADER,
};

pub(crate) const SVIX: HeaderNames = HeaderNames {
    id: "svix-id",
    timestamp: "svix-timestamp",
    signature: "svix-signature",
};

enum VerifyKey {
    Hmac(Vec<u8>),
    Ed25519(PublicKey),
}

fn verify_key(secret: &Secret) -> Option<VerifyKey> {
    let text = secret.text()?;
    if text.starts_with(PUBLIC_KEY_PREFIX) {
        return PublicKey::parse(text).ok().map(VerifyKey::Ed25519);
    }
    let encoded = text.strip_prefix(SECRET_PREFIX).unwrap_or(text);
    crypto::decode_base64(encoded)
        .filter(|bytes| !bytes.is_empty())
        .map(VerifyKey::Hmac)
}

/// Verify a Standard Webhooks request; returns the index of the matching secret and the
/// signed time.
pub(crate) fn verify(
    names: HeaderNames,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    tolerance_seconds: u64,
) -> Result<(usize, OffsetDateTime), Rejection> {
    let msg_id = req.require_header(names.id)?;
    let timestamp = req.require_header(names.timestamp)?;
    let header = req.require_header(names.signature)?;
    let unix = parse_unix_seconds(timestamp)?;
    let signed_at = check_tolerance(i128::from(unix) * 1000, req.received_at, tolerance_seconds)?;
    if secrets.is_empty() {
        return Err(Rejection::NoSecretConfigured);
    }

    let mut v1 = Vec::new();
    let mut v1a = Vec::new();
    for entry in header.split_ascii_whitespace() {
        let Some((version, encoded)) = entry.split_once(',') else {
            continue;
        };
        let Some(bytes) = crypto::decode_base64(encoded) else {
            continue;
        };
        match (version, bytes.len()) {
            ("v1", 32) => v1.push(bytes),
            ("v1a", 64) => v1a.push(bytes),
            _ => {}
        }
    }
    if v1.is_empty() && v1a.is_empty() {
        return Err(Rejection::MalformedSignature(
            "no well-formed v1 or v1a signature",
        ));
    }

    let content = signed_content(msg_id, timestamp, req.body);
    let mut usable = false;
    for (index, secret) in secrets.iter().enumerate() {
        let matched = match verify_key(secret) {
            None => false,
            Some(VerifyKey::Hmac(key)) => {
                usable = true;
                let expected = crypto::mac(Mac::Sha256, &key, &[&content]);
                v1.iter().any(|sig| crypto::ct_eq(sig, &expected))
            }
            Some(VerifyKey::Ed25519(public)) => {
                usable = true;
                v1a.iter().any(|sig| public.verify(&content, sig))
            }
        };
        if matched {
            return Ok((index, signed_at));
        }
    }
    if usable {
        Err(Rejection::SignatureMismatch)
    } else {
        Err(Rejection::InvalidSecret(
            "expected a whsec_ secret or whpk_ key",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let secret = SigningSecret::generate().unwrap();
        let text = secret.to_whsec();
        assert!(text.expose_secret().starts_with("whsec_"));
        let again = SigningSecret::parse(text.expose_secret()).unwrap();
        assert_eq!(sign("m", 1, b"x", &secret), sign("m", 1, b"x", &again));

        let key = SigningKey::generate().unwrap();
        let again = SigningKey::parse(key.to_whsk().expose_secret()).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let public = PublicKey::parse(&key.public_key().to_whpk()).unwrap();
        let sig = sign_v1a("m", 1, b"x", &key);
        let raw = crypto::decode_base64(sig.strip_prefix("v1a,").unwrap()).unwrap();
        assert!(public.verify(b"m.1.x", &raw));
        assert!(!format!("{key:?}").contains(key.to_whsk().expose_secret()));
        assert_eq!(format!("{secret:?}"), "SigningSecret([REDACTED])");
    }

    #[test]
    fn short_secrets_are_refused_for_signing() {
        assert_eq!(
            SigningSecret::from_bytes(vec![1; 8]).unwrap_err(),
            KeyError::Length
        );
        assert_eq!(
            SigningSecret::parse("whsec_!!").unwrap_err(),
            KeyError::Encoding
        );
    }
}
