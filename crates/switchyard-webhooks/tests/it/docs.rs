//! `docs/webhooks-inbound.md` must describe every scheme and every rejection code.

use switchyard_webhooks::{Rejection, Scheme};

#[test]
fn the_guide_lists_every_scheme_and_code() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/webhooks-inbound.md"
    );
    let guide = std::fs::read_to_string(path).expect("docs/webhooks-inbound.md");
    for scheme in Scheme::ALL {
        assert!(
            guide.contains(&format!("### `{}`", scheme.as_str())),
            "scheme {scheme} is not documented"
        );
    }
    for code in Rejection::CODES {
        assert!(
            guide.contains(&format!("| `{code}` |")),
            "code {code} is not documented"
        );
    }
}

#[test]
fn codes_are_listed() {
    let samples = [
        Rejection::MissingHeader("x".into()),
        Rejection::MalformedHeader("x".into()),
        Rejection::MalformedSignature("x"),
        Rejection::SignatureMismatch,
        Rejection::CredentialMismatch,
        Rejection::MalformedTimestamp("x"),
        Rejection::TimestampOutOfTolerance,
        Rejection::NoSecretConfigured,
        Rejection::InvalidSecret("x"),
        Rejection::MalformedBody("x"),
        Rejection::UnverifiedNotAllowed,
        Rejection::InvalidUrl("x"),
        Rejection::CertificateHostNotAllowed,
        Rejection::InvalidCertificate("x"),
        Rejection::KeyFetchFailed,
        Rejection::UnsupportedSignatureVersion,
        Rejection::TopicNotAllowed,
        Rejection::InvalidToken("x"),
        Rejection::Misconfigured("x"),
    ];
    assert_eq!(samples.len(), Rejection::CODES.len());
    for rejection in samples {
        assert!(
            Rejection::CODES.contains(&rejection.code()),
            "{rejection:?}"
        );
    }
}
