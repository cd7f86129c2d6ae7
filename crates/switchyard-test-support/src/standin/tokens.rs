//! Opaque tokens the routes hand out: keyset cursors, delta tokens and delta skip tokens.
//! Each is base64url text a client must pass back unchanged; a token of the wrong kind or a
//! damaged one is rejected rather than guessed at.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use time::OffsetDateTime;

use super::dataset::Version;

/// A token that does not decode to what the route expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidToken;

/// A keyset position: the last item a page returned, in the order the page was read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Id order.
    Id(String),
    /// `(updated_at, id)` order, for `updated_since` reads.
    Updated(OffsetDateTime, String),
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        match self {
            Self::Id(id) => encode(&format!("id:{id}")),
            Self::Updated(at, id) => encode(&format!("ts:{}:{id}", at.unix_timestamp())),
        }
    }

    pub(crate) fn decode(token: &str) -> Result<Self, InvalidToken> {
        let text = decode(token)?;
        if let Some(id) = text.strip_prefix("id:") {
            return Ok(Self::Id(id.to_owned()));
        }
        let rest = text.strip_prefix("ts:").ok_or(InvalidToken)?;
        let (seconds, id) = rest.split_once(':').ok_or(InvalidToken)?;
        let seconds = seconds.parse().map_err(|_| InvalidToken)?;
        let at = OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| InvalidToken)?;
        Ok(Self::Updated(at, id.to_owned()))
    }
}

/// A delta token: the change log's position when a round began.
pub(crate) fn encode_delta_token(version: Version) -> String {
    encode(&format!(
        "delta:{}:{}",
        version.generation, version.sequence
    ))
}

pub(crate) fn decode_delta_token(token: &str) -> Result<Version, InvalidToken> {
    let text = decode(token)?;
    let rest = text.strip_prefix("delta:").ok_or(InvalidToken)?;
    let (generation, sequence) = rest.split_once(':').ok_or(InvalidToken)?;
    Ok(Version {
        generation: generation.parse().map_err(|_| InvalidToken)?,
        sequence: sequence.parse().map_err(|_| InvalidToken)?,
    })
}

/// Where a delta round stands between its pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SkipToken {
    /// The delta token's sequence the round lists changes after; `None` for a full round.
    pub(crate) since: Option<u64>,
    /// The change log's position when the round began: the next delta token.
    pub(crate) began: Version,
    /// The last id the previous page returned.
    pub(crate) after: String,
}

impl SkipToken {
    pub(crate) fn encode(&self) -> String {
        let since = self
            .since
            .map_or_else(|| "full".to_owned(), |s| s.to_string());
        encode(&format!(
            "skip:{since}:{}:{}:{}",
            self.began.generation, self.began.sequence, self.after
        ))
    }

    pub(crate) fn decode(token: &str) -> Result<Self, InvalidToken> {
        let text = decode(token)?;
        let rest = text.strip_prefix("skip:").ok_or(InvalidToken)?;
        let mut parts = rest.splitn(4, ':');
        let mut next = || parts.next().ok_or(InvalidToken);
        let since = match next()? {
            "full" => None,
            since => Some(since.parse().map_err(|_| InvalidToken)?),
        };
        let generation = next()?.parse().map_err(|_| InvalidToken)?;
        let sequence = next()?.parse().map_err(|_| InvalidToken)?;
        let after = next()?.to_owned();
        Ok(Self {
            since,
            began: Version {
                generation,
                sequence,
            },
            after,
        })
    }
}

fn encode(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode(token: &str) -> Result<String, InvalidToken> {
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| InvalidToken)?;
    String::from_utf8(bytes).map_err(|_| InvalidToken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn tokens_round_trip_and_do_not_mix() {
        let cursor = Cursor::Updated(datetime!(2024-01-01 0:00 UTC), "u:1".into());
        assert_eq!(Cursor::decode(&cursor.encode()), Ok(cursor));
        let version = Version {
            generation: 2,
            sequence: 7,
        };
        let delta = encode_delta_token(version);
        assert_eq!(decode_delta_token(&delta), Ok(version));
        assert_eq!(Cursor::decode(&delta), Err(InvalidToken));
        let skip = SkipToken {
            since: None,
            began: version,
            after: "u00001".into(),
        };
        assert_eq!(SkipToken::decode(&skip.encode()), Ok(skip));
        assert_eq!(decode_delta_token("not base64!"), Err(InvalidToken));
    }
}
