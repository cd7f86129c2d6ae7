//! Just enough JWT for OIDC push authentication: compact RS256 tokens verified against a JWKS.

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Map, Value};

use crate::crypto;
use crate::error::Rejection;

const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug)]
struct RsaKey {
    kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

/// The RSA signing keys of a JWKS document.
#[derive(Debug)]
pub(crate) struct Jwks {
    keys: Vec<RsaKey>,
}

fn b64_field(key: &Value, name: &str) -> Option<Vec<u8>> {
    let mut bytes = crypto::decode_base64url(key.get(name)?.as_str()?)?;
    // Big-endian integers; ring refuses leading zero bytes.
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    (!bytes.is_empty()).then_some(bytes)
}

impl Jwks {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Rejection> {
        let doc: Value = serde_json::from_slice(bytes)
            .map_err(|_| Rejection::InvalidToken("the key set is not JSON"))?;
        let keys = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(Rejection::InvalidToken("the key set has no keys"))?
            .iter()
            .filter(|key| key.get("kty").and_then(Value::as_str) == Some("RSA"))
            .filter(|key| {
                key.get("use")
                    .and_then(Value::as_str)
                    .is_none_or(|u| u == "sig")
                    && key
                        .get("alg")
                        .and_then(Value::as_str)
                        .is_none_or(|a| a == "RS256")
            })
            .filter_map(|key| {
                Some(RsaKey {
                    kid: key.get("kid").and_then(Value::as_str).map(str::to_owned),
                    n: b64_field(key, "n")?,
                    e: b64_field(key, "e")?,
                })
            })
            .collect();
        Ok(Self { keys })
    }

    pub(crate) fn has_kid(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|key| key.kid.as_deref() == Some(kid)),
            None => !self.keys.is_empty(),
        }
    }

    /// Whether a key named `kid` (or, without a kid, any key) signed `input`.
    pub(crate) fn verify(&self, kid: Option<&str>, input: &[u8], signature: &[u8]) -> bool {
        self.keys
            .iter()
            .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
            .any(|key| {
                RsaPublicKeyComponents {
                    n: &key.n,
                    e: &key.e,
                }
                .verify(&RSA_PKCS1_2048_8192_SHA256, input, signature)
                .is_ok()
            })
    }
}

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug)]
pub(crate) struct Token<'t> {
    pub kid: Option<String>,
    pub signing_input: &'t str,
    pub signature: Vec<u8>,
    pub claims: Map<String, Value>,
}

pub(crate) fn decode(token: &str) -> Result<Token<'_>, Rejection> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Rejection::InvalidToken("too long"));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::InvalidToken("not a compact JWS"));
    };
    let object = |part: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice(&crypto::decode_base64url(part)?).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        }
    };
    let header = object(header).ok_or(Rejection::InvalidToken("bad header"))?;
    // Only RS256: never let the token choose `none` or an HMAC keyed with a public key.
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(Rejection::InvalidToken("algorithm is not RS256"));
    }
    let claims = object(payload).ok_or(Rejection::InvalidToken("bad payload"))?;
    let signature = crypto::decode_base64url(signature)
        .filter(|s| !s.is_empty())
        .ok_or(Rejection::InvalidToken("bad signature encoding"))?;
    let signing_input = token
        .rsplit_once('.')
        .map(|(input, _)| input)
        .ok_or(Rejection::InvalidToken("not a compact JWS"))?;
    Ok(Token {
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        signing_input,
        signature,
        claims,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_other_algorithms_and_shapes() {
        // {"alg":"none"} . {} . x
        let none = "eyJhbGciOiJub25lIn0.e30.eA";
        assert_eq!(
            decode(none).unwrap_err(),
            Rejection::InvalidToken("algorithm is not RS256")
        );
        assert!(decode("a.b").is_err());
        assert!(decode("a.b.c.d").is_err());
        // {"alg":"RS256"} . {} . (empty signature)
        assert!(decode("eyJhbGciOiJSUzI1NiJ9.e30.").is_err());
    }
}
