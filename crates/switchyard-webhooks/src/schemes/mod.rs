//! One module per family of schemes; `verify` dispatches on the scheme.

mod aws_sns;
mod google_pubsub;
mod hmac;
pub(crate) mod jwt;
mod shared_secret;
mod twilio;

use time::OffsetDateTime;

use crate::config::{GitlabMode, Scheme, SourceConfig};
use crate::error::Rejection;
use crate::keys::KeyCache;
use crate::request::InboundRequest;
use crate::secret::Secret;
use crate::standard_webhooks;

pub(crate) use aws_sns::{SnsCertificate, sns_message};

/// What a successful check learned besides "it is authentic".
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub secret_index: Option<usize>,
    pub signed_at: Option<OffsetDateTime>,
    pub principal: Option<String>,
}

impl Outcome {
    fn secret(index: usize) -> Self {
        Self {
            secret_index: Some(index),
            ..Self::default()
        }
    }

    fn signed(index: usize, signed_at: OffsetDateTime) -> Self {
        Self {
            secret_index: Some(index),
            signed_at: Some(signed_at),
            principal: None,
        }
    }
}

pub(crate) async fn verify(
    config: &SourceConfig,
    secrets: &[Secret],
    req: &InboundRequest<'_>,
    keys: &KeyCache,
) -> Result<Outcome, Rejection> {
    let tolerance = config.tolerance();
    match config.scheme() {
        Scheme::StandardWebhooks => {
            standard_webhooks::verify(standard_webhooks::STANDARD, secrets, req, tolerance)
                .map(|(i, at)| Outcome::signed(i, at))
        }
        Scheme::Svix => {
            // Svix's libraries accept the unbranded header names too.
            let names = if req.headers.contains_key(standard_webhooks::SVIX.id) {
                standard_webhooks::SVIX
            } else {
                standard_webhooks::STANDARD
            };
            standard_webhooks::verify(names, secrets, req, tolerance)
                .map(|(i, at)| Outcome::signed(i, at))
        }
        Scheme::Gitlab => match config.gitlab_mode() {
            GitlabMode::Token => shared_secret::gitlab(secrets, req),
            GitlabMode::StandardWebhooks => {
                standard_webhooks::verify(standard_webhooks::STANDARD, secrets, req, tolerance)
                    .map(|(i, at)| Outcome::signed(i, at))
            }
        },
        Scheme::Github => hmac::github(secrets, req),
        Scheme::Jira => hmac::jira(secrets, req),
        Scheme::Shopify => hmac::shopify(secrets, req),
        Scheme::Slack => hmac::slack(secrets, req, tolerance),
        Scheme::Stripe => hmac::stripe(secrets, req, tolerance),
        Scheme::Linear => hmac::linear(secrets, req, tolerance),
        Scheme::GenericHmac => hmac::generic(config.options(), secrets, req, tolerance),
        Scheme::Twilio => twilio::verify(config.options(), secrets, req),
        Scheme::Okta => shared_secret::okta(config.options(), secrets, req),
        Scheme::MicrosoftGraph => shared_secret::graph(secrets, req),
        Scheme::BasicAuth => shared_secret::basic(secrets, req),
        Scheme::ApiKeyHeader => shared_secret::api_key(config.options(), secrets, req),
        Scheme::AwsSns => aws_sns::verify(config.options(), req, keys).await,
        Scheme::GooglePubsub => google_pubsub::verify(config.options(), req, keys).await,
        Scheme::None => {
            if config.allow_unverified() {
                Ok(Outcome::default())
            } else {
                Err(Rejection::UnverifiedNotAllowed)
            }
        }
    }
}
