//! The stored form of a received request: everything verification and processing read
//! (method, full public URL, headers, receive time) and the raw body, byte for byte.
//!
//! Layout: a 4-byte big-endian length, that many bytes of JSON metadata, then the body. The
//! body is never re-encoded, so a replay or a later re-verification sees the exact bytes the
//! provider signed. Header values are base64 in the metadata because HTTP allows bytes that
//! are not UTF-8.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::InboundError;

/// A received request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub method: String,
    pub url: String,
    /// In arrival order; a name may repeat.
    pub headers: Vec<(String, Vec<u8>)>,
    pub received_at: OffsetDateTime,
    pub body: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
}

impl StoredRequest {
    /// The stored bytes.
    pub fn encode(&self) -> Result<Vec<u8>, InboundError> {
        let meta = Meta {
            method: self.method.clone(),
            url: self.url.clone(),
            headers: self
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), STANDARD.encode(value)))
                .collect(),
            received_at: self.received_at,
        };
        let meta = serde_json::to_vec(&meta).map_err(InboundError::corrupt)?;
        let length = u32::try_from(meta.len())
            .map_err(|_| InboundError::Invalid("request headers too large".to_owned()))?;
        let mut out = Vec::with_capacity(4 + meta.len() + self.body.len());
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&meta);
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    /// Reads bytes written by [`StoredRequest::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, InboundError> {
        let (length, rest) = bytes
            .split_first_chunk::<4>()
            .ok_or_else(|| InboundError::corrupt("stored request shorter than its header"))?;
        let length = usize::try_from(u32::from_be_bytes(*length))
            .map_err(|_| InboundError::corrupt("stored request length"))?;
        if rest.len() < length {
            return Err(InboundError::corrupt("stored request metadata truncated"));
        }
        let (meta, body) = rest.split_at(length);
        let meta: Meta = serde_json::from_slice(meta).map_err(InboundError::corrupt)?;
        let headers = meta
            .headers
            .into_iter()
            .map(|(name, value)| {
                STANDARD
                    .decode(value)
                    .map(|value| (name, value))
                    .map_err(InboundError::corrupt)
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            method: meta.method,
            url: meta.url,
            headers,
            received_at: meta.received_at,
            body: body.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_binary_headers_and_body() {
        let request = StoredRequest {
            method: "POST".to_owned(),
            url: "https://hooks.example.com/ingest/src_1?x=1".to_owned(),
            headers: vec![
                ("content-type".to_owned(), b"application/json".to_vec()),
                ("x-odd".to_owned(), vec![0xff, 0x00, 0x80]),
                ("x-odd".to_owned(), b"again".to_vec()),
            ],
            received_at: time::macros::datetime!(2026-11-22 10:00:00.123456 UTC),
            body: vec![0xfe, b'{', 0x00, b'}'],
        };
        let bytes = request.encode().unwrap();
        assert_eq!(StoredRequest::decode(&bytes).unwrap(), request);
        assert!(StoredRequest::decode(&bytes[..3]).is_err());
        assert!(StoredRequest::decode(&bytes[..10]).is_err());
    }
}
