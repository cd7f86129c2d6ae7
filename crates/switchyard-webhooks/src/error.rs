//! Why a request was refused. Every variant has a stable snake_case code for the 401 problem;
//! messages name headers and reasons, never secrets or signatures.

/// A request that failed verification. Fail closed: anything unexpected is a rejection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("required header `{0}` is missing")]
    MissingHeader(String),
    #[error("header `{0}` is malformed")]
    MalformedHeader(String),
    #[error("the signature is malformed ({0})")]
    MalformedSignature(&'static str),
    #[error("no signature matches any configured secret")]
    SignatureMismatch,
    #[error("the credential does not match any configured secret")]
    CredentialMismatch,
    #[error("the timestamp is malformed or missing ({0})")]
    MalformedTimestamp(&'static str),
    #[error("the timestamp is outside the allowed tolerance")]
    TimestampOutOfTolerance,
    #[error("the source has no secret configured")]
    NoSecretConfigured,
    #[error("a configured secret cannot be used by this scheme ({0})")]
    InvalidSecret(&'static str),
    #[error("the body is not what this scheme requires ({0})")]
    MalformedBody(&'static str),
    #[error("the source cannot verify requests and does not allow unverified ones")]
    UnverifiedNotAllowed,
    #[error("the request URL is not usable for this scheme ({0})")]
    InvalidUrl(&'static str),
    #[error("the signing certificate URL is not an allowed https host")]
    CertificateHostNotAllowed,
    #[error("the signing certificate is not usable ({0})")]
    InvalidCertificate(&'static str),
    #[error("the verification key could not be fetched")]
    KeyFetchFailed,
    #[error("the signature version is not supported")]
    UnsupportedSignatureVersion,
    #[error("the topic is not in the allowed list")]
    TopicNotAllowed,
    #[error("the bearer token is invalid ({0})")]
    InvalidToken(&'static str),
    #[error("the source configuration is invalid for this scheme ({0})")]
    Misconfigured(&'static str),
}

impl Rejection {
    /// Stable machine-readable reason, e.g. `signature_mismatch`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingHeader(_) => "missing_header",
            Self::MalformedHeader(_) => "malformed_header",
            Self::MalformedSignature(_) => "malformed_signature",
            Self::SignatureMismatch => "signature_mismatch",
            Self::CredentialMismatch => "credential_mismatch",
            Self::MalformedTimestamp(_) => "malformed_timestamp",
            Self::TimestampOutOfTolerance => "timestamp_out_of_tolerance",
            Self::NoSecretConfigured => "no_secret_configured",
            Self::InvalidSecret(_) => "invalid_secret",
            Self::MalformedBody(_) => "malformed_body",
            Self::UnverifiedNotAllowed => "unverified_not_allowed",
            Self::InvalidUrl(_) => "invalid_url",
            Self::CertificateHostNotAllowed => "certificate_host_not_allowed",
            Self::InvalidCertificate(_) => "invalid_certificate",
            Self::KeyFetchFailed => "key_fetch_failed",
            Self::UnsupportedSignatureVersion => "unsupported_signature_version",
            Self::TopicNotAllowed => "topic_not_allowed",
            Self::InvalidToken(_) => "invalid_token",
            Self::Misconfigured(_) => "misconfigured",
        }
    }

    /// Every code, for documentation checks.
    pub const CODES: &'static [&'static str] = &[
        "missing_header",
        "malformed_header",
        "malformed_signature",
        "signature_mismatch",
        "credential_mismatch",
        "malformed_timestamp",
        "timestamp_out_of_tolerance",
        "no_secret_configured",
        "invalid_secret",
        "malformed_body",
        "unverified_not_allowed",
        "invalid_url",
        "certificate_host_not_allowed",
        "invalid_certificate",
        "key_fetch_failed",
        "unsupported_signature_version",
        "topic_not_allowed",
        "invalid_token",
        "misconfigured",
    ];
}

/// A source configuration that cannot work; the server answers it with a 422 at creation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("options are not valid JSON for this crate: {0}")]
    Options(String),
    #[error("option `{option}` does not apply to scheme `{scheme}`")]
    NotApplicable {
        option: &'static str,
        scheme: &'static str,
    },
    #[error("scheme `{scheme}` requires option `{option}`")]
    Required {
        option: &'static str,
        scheme: &'static str,
    },
    #[error("option `{option}` is invalid: {reason}")]
    Invalid {
        option: &'static str,
        reason: &'static str,
    },
    #[error("scheme `none` verifies nothing and requires `allow_unverified: true`")]
    UnverifiedNotAllowed,
}
