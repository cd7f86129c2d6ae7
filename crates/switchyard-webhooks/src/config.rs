//! Which scheme a source uses and its options, validated once when the source is created.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::ConfigError;

/// How a source authenticates its deliveries. Serialised in snake_case (`standard_webhooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    StandardWebhooks,
    Svix,
    Github,
    Stripe,
    Slack,
    Shopify,
    Linear,
    Jira,
    Gitlab,
    Twilio,
    Okta,
    MicrosoftGraph,
    AwsSns,
    GooglePubsub,
    GenericHmac,
    BasicAuth,
    ApiKeyHeader,
    None,
}

impl Scheme {
    pub const ALL: [Scheme; 18] = [
        Self::StandardWebhooks,
        Self::Svix,
        Self::Github,
        Self::Stripe,
        Self::Slack,
        Self::Shopify,
        Self::Linear,
        Self::Jira,
        Self::Gitlab,
        Self::Twilio,
        Self::Okta,
        Self::MicrosoftGraph,
        Self::AwsSns,
        Self::GooglePubsub,
        Self::GenericHmac,
        Self::BasicAuth,
        Self::ApiKeyHeader,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandardWebhooks => "standard_webhooks",
            Self::Svix => "svix",
            Self::Github => "github",
            Self::Stripe => "stripe",
            Self::Slack => "slack",
            Self::Shopify => "shopify",
            Self::Linear => "linear",
            Self::Jira => "jira",
            Self::Gitlab => "gitlab",
            Self::Twilio => "twilio",
            Self::Okta => "okta",
            Self::MicrosoftGraph => "microsoft_graph",
            Self::AwsSns => "aws_sns",
            Self::GooglePubsub => "google_pubsub",
            Self::GenericHmac => "generic_hmac",
            Self::BasicAuth => "basic_auth",
            Self::ApiKeyHeader => "api_key_header",
            Self::None => "none",
        }
    }

    /// Whether verification needs configured secrets. SNS and Pub/Sub verify with the
    /// provider's public keys; `none` verifies nothing.
    pub fn needs_secret(self) -> bool {
        !matches!(self, Self::AwsSns | Self::GooglePubsub | Self::None)
    }

    /// Options (by their JSON name) that mean something for this scheme.
    fn options(self) -> &'static [&'static str] {
        const CE: &[&str] = &["allowed_origins", "id_header", "event_type_header"];
        match self {
            Self::StandardWebhooks | Self::Svix | Self::Stripe | Self::Slack => {
                &["tolerance_seconds"]
            }
            Self::Linear => &["tolerance_seconds"],
            Self::Gitlab => &["gitlab_mode", "tolerance_seconds"],
            Self::Twilio => &["public_url"],
            Self::Okta => &["header", "prefix"],
            Self::AwsSns => &["cert_hosts", "topic_arns"],
            Self::GooglePubsub => &["audience", "issuers", "email", "jwks_url"],
            Self::GenericHmac => &[
                "header",
                "prefix",
                "algorithm",
                "encoding",
                "timestamp_header",
                "signed_content",
                "tolerance_seconds",
                "id_header",
                "event_type_header",
                "allowed_origins",
            ],
            Self::ApiKeyHeader => &[
                "header",
                "prefix",
                "allowed_origins",
                "id_header",
                "event_type_header",
            ],
            Self::BasicAuth | Self::None => CE,
            Self::Github | Self::Shopify | Self::Jira | Self::MicrosoftGraph => &[],
        }
    }

    /// Schemes used for arbitrary senders, where CloudEvents and Event Grid conventions apply.
    pub(crate) fn is_generic(self) -> bool {
        matches!(
            self,
            Self::GenericHmac | Self::ApiKeyHeader | Self::BasicAuth | Self::None
        )
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scheme {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scheme| scheme.as_str() == s)
            .ok_or(ConfigError::Invalid {
                option: "scheme",
                reason: "unknown scheme",
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HmacAlgorithm {
    Sha1,
    #[default]
    Sha256,
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    #[default]
    Hex,
    Base64,
}

/// GitLab sends either its secret token verbatim or, since the signing-token feature, Standard
/// Webhooks signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GitlabMode {
    #[default]
    Token,
    StandardWebhooks,
}

/// Per-scheme options (the `options` object of a source). Every field is optional; which ones
/// apply depends on the scheme, and [`SourceConfig::new`] rejects the others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchemeOptions {
    /// Allowed clock skew in seconds, both directions (default 300; Linear 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<u64>,
    /// generic_hmac: signature header; api_key_header: key header; okta: auth header
    /// (default `authorization`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Text before the signature or key in `header`, e.g. `sha256=` or `Bearer `.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<HmacAlgorithm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<SignatureEncoding>,
    /// generic_hmac: header with a Unix timestamp in seconds, checked against the tolerance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// generic_hmac: what is signed, with `{body}`, `{timestamp}`, `{id}` and `{url}`
    /// placeholders (default `{body}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_content: Option<String>,
    /// Generic schemes: header that carries the delivery id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// Generic schemes: header that carries the event type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_type_header: Option<String>,
    /// Generic schemes: origins the CloudEvents OPTIONS handshake accepts (default any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gitlab_mode: Option<GitlabMode>,
    /// twilio: the URL configured in Twilio, when it differs from the request's public URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<Url>,
    /// aws_sns: host patterns certificates may come from (`*` = one DNS label);
    /// default `sns.*.amazonaws.com`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cert_hosts: Vec<String>,
    /// aws_sns: accept only these topic ARNs (default any).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub topic_arns: Vec<String>,
    /// google_pubsub: required `aud` claim.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// google_pubsub: accepted `iss` values (default Google's two spellings).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub issuers: Vec<String>,
    /// google_pubsub: required service-account `email` claim (must be verified).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// google_pubsub: where the signing keys are (default Google's OAuth2 v3 certs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<Url>,
}

impl SchemeOptions {
    fn set_options(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        let mut note = |name: &'static str, present: bool| {
            if present {
                set.push(name);
            }
        };
        note("tolerance_seconds", self.tolerance_seconds.is_some());
        note("header", self.header.is_some());
        note("prefix", self.prefix.is_some());
        note("algorithm", self.algorithm.is_some());
        note("encoding", self.encoding.is_some());
        note("timestamp_header", self.timestamp_header.is_some());
        note("signed_content", self.signed_content.is_some());
        note("id_header", self.id_header.is_some());
        note("event_type_header", self.event_type_header.is_some());
        note("allowed_origins", !self.allowed_origins.is_empty());
        note("gitlab_mode", self.gitlab_mode.is_some());
        note("public_url", self.public_url.is_some());
        note("cert_hosts", !self.cert_hosts.is_empty());
        note("topic_arns", !self.topic_arns.is_empty());
        note("audience", self.audience.is_some());
        note("issuers", !self.issuers.is_empty());
        note("email", self.email.is_some());
        note("jwks_url", self.jwks_url.is_some());
        set
    }
}

pub(crate) const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
const MAX_TOLERANCE_SECONDS: u64 = 24 * 3600;
pub(crate) const DEFAULT_SNS_CERT_HOST: &str = "sns.*.amazonaws.com";

/// A validated source: scheme, options and whether unverified deliveries are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    scheme: Scheme,
    options: SchemeOptions,
    allow_unverified: bool,
}

impl SourceConfig {
    pub fn new(
        scheme: Scheme,
        options: SchemeOptions,
        allow_unverified: bool,
    ) -> Result<Self, ConfigError> {
        validate(scheme, &options, allow_unverified)?;
        Ok(Self {
            scheme,
            options,
            allow_unverified,
        })
    }

    /// From the `options` JSON of `POST /v1/sources` (`null` means no options).
    pub fn from_json(
        scheme: Scheme,
        options: &serde_json::Value,
        allow_unverified: bool,
    ) -> Result<Self, ConfigError> {
        let options = if options.is_null() {
            SchemeOptions::default()
        } else {
            SchemeOptions::deserialize(options).map_err(|e| ConfigError::Options(e.to_string()))?
        };
        Self::new(scheme, options, allow_unverified)
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    pub fn options(&self) -> &SchemeOptions {
        &self.options
    }

    pub fn allow_unverified(&self) -> bool {
        self.allow_unverified
    }

    pub(crate) fn tolerance(&self) -> u64 {
        self.options.tolerance_seconds.unwrap_or(match self.scheme {
            Scheme::Linear => 60,
            _ => DEFAULT_TOLERANCE_SECONDS,
        })
    }

    pub(crate) fn gitlab_mode(&self) -> GitlabMode {
        self.options.gitlab_mode.unwrap_or_default()
    }
}

fn validate(
    scheme: Scheme,
    options: &SchemeOptions,
    allow_unverified: bool,
) -> Result<(), ConfigError> {
    if scheme == Scheme::None && !allow_unverified {
        return Err(ConfigError::UnverifiedNotAllowed);
    }
    let applicable = scheme.options();
    if let Some(option) = options
        .set_options()
        .into_iter()
        .find(|option| !applicable.contains(option))
    {
        return Err(ConfigError::NotApplicable {
            option,
            scheme: scheme.as_str(),
        });
    }
    let required = |option: &'static str, present: bool| {
        if present {
            Ok(())
        } else {
            Err(ConfigError::Required {
                option,
                scheme: scheme.as_str(),
            })
        }
    };
    let invalid =
        |option: &'static str, reason: &'static str| ConfigError::Invalid { option, reason };
    if let Some(tolerance) = options.tolerance_seconds
        && (tolerance == 0 || tolerance > MAX_TOLERANCE_SECONDS)
    {
        return Err(invalid("tolerance_seconds", "must be between 1 and 86400"));
    }
    for (option, header) in [
        ("header", &options.header),
        ("timestamp_header", &options.timestamp_header),
        ("id_header", &options.id_header),
        ("event_type_header", &options.event_type_header),
    ] {
        if let Some(header) = header
            && http::HeaderName::from_bytes(header.as_bytes()).is_err()
        {
            return Err(invalid(option, "not a valid header name"));
        }
    }
    match scheme {
        Scheme::GenericHmac => {
            required("header", options.header.is_some())?;
            let template = options.signed_content.as_deref().unwrap_or("{body}");
            if !template.contains("{body}") {
                return Err(invalid("signed_content", "must contain {body}"));
            }
            if template.contains("{timestamp}") && options.timestamp_header.is_none() {
                return Err(invalid(
                    "signed_content",
                    "{timestamp} needs option timestamp_header",
                ));
            }
            if template.contains("{id}") && options.id_header.is_none() {
                return Err(invalid("signed_content", "{id} needs option id_header"));
            }
        }
        Scheme::ApiKeyHeader => required("header", options.header.is_some())?,
        Scheme::GooglePubsub => {
            required(
                "audience",
                options.audience.as_deref().is_some_and(|a| !a.is_empty()),
            )?;
        }
        Scheme::AwsSns if options.cert_hosts.iter().any(|p| !valid_host_pattern(p)) => {
            return Err(invalid(
                "cert_hosts",
                "each entry is a host name whose labels may be `*`",
            ));
        }
        _ => {}
    }
    Ok(())
}

fn valid_host_pattern(pattern: &str) -> bool {
    let labels: Vec<&str> = pattern.split('.').collect();
    // A bare `*` or `*.com` would allow any host: require two fixed labels at the end.
    labels.len() >= 3
        && labels.iter().rev().take(2).all(|l| *l != "*")
        && labels.iter().all(|label| {
            *label == "*"
                || (!label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scheme_names_are_snake_case() {
        for scheme in Scheme::ALL {
            let json = serde_json::to_value(scheme).unwrap();
            assert_eq!(json, json!(scheme.as_str()));
            assert_eq!(scheme.as_str().parse::<Scheme>().unwrap(), scheme);
        }
    }

    #[test]
    fn none_requires_allow_unverified() {
        assert_eq!(
            SourceConfig::new(Scheme::None, SchemeOptions::default(), false),
            Err(ConfigError::UnverifiedNotAllowed)
        );
        assert!(SourceConfig::new(Scheme::None, SchemeOptions::default(), true).is_ok());
    }

    #[test]
    fn options_are_checked_per_scheme() {
        let err = SourceConfig::from_json(Scheme::Github, &json!({"header": "x"}), false);
        assert!(matches!(
            err,
            Err(ConfigError::NotApplicable {
                option: "header",
                ..
            })
        ));
        let err = SourceConfig::from_json(Scheme::Github, &json!({"nope": 1}), false);
        assert!(matches!(err, Err(ConfigError::Options(_))));
        let err = SourceConfig::from_json(Scheme::GenericHmac, &json!({}), false);
        assert!(matches!(
            err,
            Err(ConfigError::Required {
                option: "header",
                ..
            })
        ));
        let err = SourceConfig::from_json(
            Scheme::GenericHmac,
            &json!({"header": "x-sig", "signed_content": "{timestamp}.{body}"}),
            false,
        );
        assert!(matches!(err, Err(ConfigError::Invalid { .. })));
        let err = SourceConfig::from_json(Scheme::AwsSns, &json!({"cert_hosts": ["*.com"]}), false);
        assert!(matches!(err, Err(ConfigError::Invalid { .. })));
        assert!(
            SourceConfig::from_json(
                Scheme::AwsSns,
                &json!({"cert_hosts": ["sns.*.amazonaws.com.cn"]}),
                false
            )
            .is_ok()
        );
        let err = SourceConfig::from_json(Scheme::GooglePubsub, &json!({}), false);
        assert!(matches!(
            err,
            Err(ConfigError::Required {
                option: "audience",
                ..
            })
        ));
    }
}
