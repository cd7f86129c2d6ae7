//! Signed JWTs: the GitHub App JWT of a `jwt_bearer` mode and the client assertion of OAuth's
//! `private_key_jwt` (RFC 7523). The private key is parsed for each signing and dropped with
//! it; the signed token is a secret too (it authenticates as the app until it expires).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};

use super::TokenError;
use crate::manifest::JwtAlgorithm;

/// The longest a client assertion lives: it is used once, at once.
pub const ASSERTION_LIFETIME: Duration = Duration::from_secs(300);

/// A private key ready to sign with one algorithm.
pub struct SigningKey {
    key: EncodingKey,
    algorithm: Algorithm,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?})", self.algorithm)
    }
}

impl SigningKey {
    /// Reads `pem` as a key for `algorithm`: RS256 takes PKCS#1 (`RSA PRIVATE KEY`, what
    /// GitHub hands out) or PKCS#8; ES256 takes a P-256 key in PKCS#8 or SEC1
    /// (`EC PRIVATE KEY`, what `openssl ecparam` writes).
    pub fn from_pem(pem: &SecretString, algorithm: JwtAlgorithm) -> Result<Self, TokenError> {
        let pem = pem.expose_secret().as_bytes();
        match algorithm {
            JwtAlgorithm::RS256 => Ok(Self {
                key: EncodingKey::from_rsa_pem(pem)
                    .map_err(|_| TokenError::PrivateKey { expected: "RSA" })?,
                algorithm: Algorithm::RS256,
            }),
            JwtAlgorithm::ES256 => {
                let key = match EncodingKey::from_ec_pem(pem) {
                    Ok(key) => key,
                    Err(_) => sec1_p256(pem).ok_or(TokenError::PrivateKey { expected: "P-256" })?,
                };
                Ok(Self {
                    key,
                    algorithm: Algorithm::ES256,
                })
            }
        }
    }

    /// Whichever of RS256 and ES256 the PEM is a key for (a client assertion signs with the
    /// key the client registered, whatever its type).
    pub fn detect(pem: &SecretString) -> Result<Self, TokenError> {
        Self::from_pem(pem, JwtAlgorithm::RS256)
            .or_else(|_| Self::from_pem(pem, JwtAlgorithm::ES256))
            .map_err(|_| TokenError::PrivateKey {
                expected: "RSA or P-256",
            })
    }

    /// Signs `claims`, with `kid` in the header when given.
    pub fn sign(
        &self,
        key_id: Option<&str>,
        claims: &Map<String, Value>,
    ) -> Result<SecretString, TokenError> {
        let mut header = Header::new(self.algorithm);
        header.kid = key_id.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &self.key)
            .map(SecretString::from)
            .map_err(|_| TokenError::Signing)
    }
}

/// A SEC1 (`EC PRIVATE KEY`) P-256 key as the PKCS#8 key the signer takes.
fn sec1_p256(pem: &[u8]) -> Option<EncodingKey> {
    let text = std::str::from_utf8(pem).ok()?;
    let body = text
        .split("-----BEGIN EC PRIVATE KEY-----")
        .nth(1)?
        .split("-----END EC PRIVATE KEY-----")
        .next()?;
    let base64: String = body.split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .ok()?;
    let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, &der).ok()?;
    let pkcs8 = pair.to_pkcs8v1().ok()?;
    Some(EncodingKey::from_ec_der(pkcs8.as_ref()))
}

/// Seconds since the epoch (0 for a clock before 1970).
pub fn epoch_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The claims of a JWT that lives from `issued` (already backdated) for `lifetime`, with the
/// manifest's rendered `claims` besides; `iat` and `exp` are always the engine's.
pub fn timed_claims(
    claims: &Map<String, Value>,
    issued: SystemTime,
    lifetime: Duration,
) -> Map<String, Value> {
    let mut all = claims.clone();
    let iat = epoch_seconds(issued);
    all.insert("iat".into(), iat.into());
    all.insert("exp".into(), (iat + lifetime.as_secs()).into());
    all
}

/// A client assertion (RFC 7523 §3): issued by and about the client, for the token
/// endpoint, used once.
pub fn assertion_claims(client_id: &str, token_url: &str, now: SystemTime) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("iss".into(), client_id.into());
    claims.insert("sub".into(), client_id.into());
    claims.insert("aud".into(), token_url.into());
    let jti: [u8; 16] = rand::random();
    claims.insert("jti".into(), hex::encode(jti).into());
    timed_claims(&claims, now, ASSERTION_LIFETIME)
}

#[cfg(test)]
pub(crate) mod test_keys {
    //! Key pairs made fresh for a test, as PEM, with the public half to verify with.

    use aws_lc_rs::encoding::AsDer as _;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::KeyPair as _;
    use base64::Engine as _;

    use super::*;

    pub fn pem(label: &str, der: &[u8]) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// One DER element: (tag, contents, what follows).
    fn tlv(der: &[u8]) -> (u8, &[u8], &[u8]) {
        let (tag, first) = (der[0], der[1]);
        let (len, start) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            let len = der[2..2 + n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, 2 + n)
        };
        (tag, &der[start..start + len], &der[start + len..])
    }

    pub struct TestKey {
        /// PKCS#8 (`PRIVATE KEY`).
        pub private_pem: String,
        /// The other form the key is handed out in: PKCS#1 for RSA (GitHub), SEC1 for EC.
        pub legacy_pem: String,
        /// SubjectPublicKeyInfo (`PUBLIC KEY`).
        pub public_pem: String,
    }

    pub fn rsa() -> TestKey {
        let pair = aws_lc_rs::rsa::KeyPair::generate(KeySize::Rsa2048).unwrap();
        let pkcs8 = pair.as_der().unwrap();
        // PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING (PKCS#1) }
        let (_, info, _) = tlv(pkcs8.as_ref());
        let (_, _, rest) = tlv(info);
        let (_, _, rest) = tlv(rest);
        let (tag, pkcs1, _) = tlv(rest);
        assert_eq!(tag, 0x04);
        TestKey {
            private_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
            legacy_pem: pem("RSA PRIVATE KEY", pkcs1),
            public_pem: pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref()),
        }
    }

    pub fn p256() -> TestKey {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        TestKey {
            private_pem: pem("PRIVATE KEY", pair.to_pkcs8v1().unwrap().as_ref()),
            legacy_pem: pem(
                "EC PRIVATE KEY",
                pair.private_key().as_der().unwrap().as_ref(),
            ),
            public_pem: pem("PUBLIC KEY", pair.public_key().as_der().unwrap().as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{DecodingKey, Validation};
    use serde_json::json;

    use super::test_keys::{TestKey, p256, rsa};
    use super::*;

    fn verify(token: &SecretString, key: &TestKey, algorithm: Algorithm) -> Map<String, Value> {
        let decoding = match algorithm {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(key.public_pem.as_bytes()),
            _ => DecodingKey::from_ec_pem(key.public_pem.as_bytes()),
        }
        .unwrap();
        let mut validation = Validation::new(algorithm);
        validation.validate_aud = false;
        jsonwebtoken::decode::<Map<String, Value>>(token.expose_secret(), &decoding, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn rs256_and_es256_sign_with_every_pem_form_and_verify() {
        let claims = json!({"iss": "12345"}).as_object().cloned().unwrap();
        let issued = SystemTime::now() - Duration::from_secs(60);
        let claims = timed_claims(&claims, issued, Duration::from_secs(540));
        for (key, algorithm, verify_as) in [
            (rsa(), JwtAlgorithm::RS256, Algorithm::RS256),
            (p256(), JwtAlgorithm::ES256, Algorithm::ES256),
        ] {
            for pem in [&key.private_pem, &key.legacy_pem] {
                let signer = SigningKey::from_pem(&SecretString::from(pem.clone()), algorithm)
                    .unwrap_or_else(|e| panic!("{algorithm:?} {}: {e}", &pem[..30]));
                let token = signer.sign(None, &claims).unwrap();
                let header = jsonwebtoken::decode_header(token.expose_secret()).unwrap();
                assert_eq!(header.alg, verify_as);
                assert_eq!(header.kid, None);
                let seen = verify(&token, &key, verify_as);
                assert_eq!(seen["iss"], "12345");
                let iat = seen["iat"].as_u64().unwrap();
                assert_eq!(iat, epoch_seconds(issued));
                assert_eq!(seen["exp"].as_u64().unwrap(), iat + 540);
            }
            // The same key detected from its PEM.
            let detected =
                SigningKey::detect(&SecretString::from(key.private_pem.clone())).unwrap();
            verify(
                &detected.sign(Some("kid-1"), &claims).unwrap(),
                &key,
                verify_as,
            );
        }
    }

    #[test]
    fn a_key_of_the_wrong_kind_or_no_key_is_a_typed_error_without_the_key() {
        let ec = p256();
        let error = SigningKey::from_pem(
            &SecretString::from(ec.private_pem.clone()),
            JwtAlgorithm::RS256,
        )
        .unwrap_err();
        assert!(matches!(error, TokenError::PrivateKey { expected: "RSA" }));
        let garbage = SecretString::from(
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----".to_owned(),
        );
        let error = SigningKey::detect(&garbage).unwrap_err();
        assert!(!error.to_string().contains("c2VjcmV0"), "{error}");
    }

    #[test]
    fn client_assertions_are_for_the_token_endpoint_and_used_once() {
        let key = rsa();
        let signer = SigningKey::detect(&SecretString::from(key.private_pem.clone())).unwrap();
        let url = "https://example.okta.com/oauth2/v1/token";
        let now = SystemTime::now();
        let first = assertion_claims("0oa1", url, now);
        let token = signer.sign(Some("key-7"), &first).unwrap();
        let header = jsonwebtoken::decode_header(token.expose_secret()).unwrap();
        assert_eq!(header.kid.as_deref(), Some("key-7"));
        let seen = verify(&token, &key, Algorithm::RS256);
        assert_eq!(
            (seen["iss"].as_str(), seen["sub"].as_str()),
            (Some("0oa1"), Some("0oa1"))
        );
        assert_eq!(seen["aud"], url);
        let lifetime = seen["exp"].as_u64().unwrap() - seen["iat"].as_u64().unwrap();
        assert!(lifetime <= 300);
        assert_ne!(first["jti"], assertion_claims("0oa1", url, now)["jti"]);
    }
}
