//! The token broker: places any mode's credential, minting tokens for the modes that need
//! one (`jwt_bearer`, OAuth client credentials) and keeping them in its [`TokenCache`].
//! One broker per process, shared by every connection.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use switchyard_http::{Clock, Credential, GuardedClient};
use url::Url;

use super::cache::{CacheKey, TokenCache};
use super::endpoint::{ClientAuth, Minted, TokenEndpoint};
use super::fields::{secret, text};
use super::jwt::{self, SigningKey};
use super::{TokenError, fixed};
use crate::manifest::{AuthMode, JwtBearerSpec, OAuth2Spec, OAuthGrant, TokenAuthMethod};
use crate::template;

/// Which stored secret a credential is: the key minted tokens are cached under, so a new
/// version never meets the old one's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretIdentity {
    pub tenant: String,
    pub secret: String,
    pub version: u32,
}

/// Everything one placement reads.
pub struct Placement<'a> {
    pub mode: &'a AuthMode,
    /// The credential's fields, as stored in the vault.
    pub fields: &'a Map<String, Value>,
    /// The connection's config (token URLs and claims are templates over it).
    pub config: &'a Value,
    /// The connection's base URL: token URLs that are paths are on it.
    pub base_url: &'a Url,
    /// The manifest's top-level headers, sent on a JWT exchange as on every provider call.
    pub headers: &'a BTreeMap<String, String>,
    pub secret: &'a SecretIdentity,
}

/// Places credentials and mints tokens; see the module documentation.
pub struct TokenBroker {
    client: GuardedClient,
    cache: TokenCache,
    timeout: Duration,
}

impl std::fmt::Debug for TokenBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBroker")
            .field("cached", &self.cache.entries())
            .finish_non_exhaustive()
    }
}

impl TokenBroker {
    /// Token endpoints are called through `client` (the SSRF-guarded provider client).
    pub fn new(client: GuardedClient) -> Self {
        Self {
            client,
            cache: TokenCache::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The clock cached tokens expire by (tests move it by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.cache = TokenCache::new(clock);
        self
    }

    /// How long one token request may take, answer included (30 s by default).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The credential to place on one attempt.
    pub async fn credential(&self, placement: &Placement<'_>) -> Result<Credential, TokenError> {
        match placement.mode {
            AuthMode::JwtBearer(spec) => self.jwt_bearer(spec, placement).await,
            AuthMode::OAuth2(spec) if spec.grant == OAuthGrant::ClientCredentials => {
                self.client_credentials(spec, placement).await
            }
            mode => fixed::credential(mode, placement.fields, placement.config),
        }
    }

    fn endpoint(&self) -> TokenEndpoint<'_> {
        TokenEndpoint {
            client: &self.client,
            timeout: self.timeout,
        }
    }

    fn key(&self, placement: &Placement<'_>, purpose: &Value) -> CacheKey {
        let digest = Sha256::digest(purpose.to_string().as_bytes());
        CacheKey {
            tenant: placement.secret.tenant.clone(),
            secret: placement.secret.secret.clone(),
            version: placement.secret.version,
            purpose: digest.into(),
        }
    }

    /// A GitHub App style JWT, used as is or exchanged for the token it buys.
    async fn jwt_bearer(
        &self,
        spec: &JwtBearerSpec,
        placement: &Placement<'_>,
    ) -> Result<Credential, TokenError> {
        let context = json!({"config": placement.config});
        let mut claims = Map::new();
        for (name, value) in &spec.claims {
            let rendered = template::render_value(&Value::String(value.clone()), &context)?;
            claims.insert(name.clone(), rendered);
        }
        let exchange = match &spec.exchange {
            Some(exchange) => {
                let url = template::render(&exchange.url, &context)?;
                Some((exchange, resolve(placement.base_url, &url)?))
            }
            None => None,
        };
        let purpose = json!({
            "mode": "jwt_bearer",
            "algorithm": format!("{:?}", spec.algorithm),
            "claims": claims,
            "exchange": exchange.as_ref().map(|(e, url)| json!([e.method, url.as_str()])),
        });
        let key = self.key(placement, &purpose);
        let mint = async {
            let signer =
                SigningKey::from_pem(&secret(placement.fields, "private_key")?, spec.algorithm)?;
            let now = SystemTime::now();
            let backdate = spec.backdate.map(|d| d.0).unwrap_or_default();
            let issued = now.checked_sub(backdate).unwrap_or(now);
            let jwt = signer.sign(None, &jwt::timed_claims(&claims, issued, spec.lifetime.0))?;
            match exchange {
                None => Ok(Minted {
                    token: jwt,
                    // It expires `lifetime` after its backdated issue time.
                    lifetime: Some(spec.lifetime.0.saturating_sub(backdate)),
                }),
                Some((exchange, url)) => {
                    let headers = manifest_headers(placement.headers, &context)?;
                    self.endpoint().exchange(exchange, url, headers, &jwt).await
                }
            }
        };
        let token = self.cache.get_or_mint(key, mint).await?;
        Ok(Credential::Bearer(token))
    }

    /// OAuth's client-credentials grant (Okta service apps, Microsoft Entra).
    async fn client_credentials(
        &self,
        spec: &OAuth2Spec,
        placement: &Placement<'_>,
    ) -> Result<Credential, TokenError> {
        let context = json!({"config": placement.config});
        let token_url = resolve(
            placement.base_url,
            &template::render(&spec.token_url, &context)?,
        )?;
        let scope = spec.scopes.join(&spec.scope_separator);
        let client_id = text(placement.fields, "client_id")?;
        let purpose = json!({
            "mode": "oauth2.client_credentials",
            "token_url": token_url.as_str(),
            "scope": scope,
            "client_id": client_id,
            "method": format!("{:?}", spec.token_auth_method),
        });
        let key = self.key(placement, &purpose);
        let mint = async {
            let auth = match spec.token_auth_method {
                TokenAuthMethod::ClientSecretBasic => ClientAuth::Basic {
                    client_id: client_id.to_owned(),
                    secret: secret(placement.fields, "client_secret")?,
                },
                TokenAuthMethod::ClientSecretPost => ClientAuth::Form(vec![
                    ("client_id", SecretString::from(client_id.to_owned())),
                    ("client_secret", secret(placement.fields, "client_secret")?),
                ]),
                TokenAuthMethod::PrivateKeyJwt => {
                    let signer = SigningKey::detect(&secret(placement.fields, "private_key")?)?;
                    let key_id = placement.fields.get("key_id").and_then(Value::as_str);
                    let claims =
                        jwt::assertion_claims(client_id, token_url.as_str(), SystemTime::now());
                    ClientAuth::Form(vec![
                        (
                            "client_assertion_type",
                            SecretString::from(
                                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                            ),
                        ),
                        ("client_assertion", signer.sign(key_id, &claims)?),
                    ])
                }
            };
            let mut form = vec![("grant_type", "client_credentials")];
            if !scope.is_empty() {
                form.push(("scope", scope.as_str()));
            }
            self.endpoint()
                .client_credentials(
                    token_url.clone(),
                    &form,
                    auth,
                    spec.default_token_lifetime.map(|d| d.0),
                )
                .await
        };
        let token = self.cache.get_or_mint(key, mint).await?;
        Ok(Credential::Bearer(token))
    }
}

/// The connection's base URL: its own override, or the manifest's template over its config.
pub fn connection_base_url(
    template_text: &str,
    override_url: Option<&str>,
    config: &Value,
) -> Result<Url, TokenError> {
    let text = match override_url {
        Some(url) => url.to_owned(),
        None => template::render(template_text, &json!({"config": config}))?,
    };
    Url::parse(&text).map_err(|_| TokenError::Url(text))
}

/// A token URL: a path is on the connection's base URL (GitHub Enterprise Server's
/// `/api/v3`, a stand-in), anything else an absolute http(s) URL.
fn resolve(base: &Url, text: &str) -> Result<Url, TokenError> {
    let url = if text.starts_with('/') {
        let (path, query) = match text.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (text, None),
        };
        let mut url = base.clone();
        url.set_path(&format!("{}{path}", base.path().trim_end_matches('/')));
        url.set_query(query);
        url.set_fragment(None);
        url
    } else {
        Url::parse(text).map_err(|_| TokenError::Url(text.to_owned()))?
    };
    if !matches!(url.scheme(), "https" | "http") {
        return Err(TokenError::Url(text.to_owned()));
    }
    Ok(url)
}

/// The manifest's headers, rendered over the config. They hold no secret: a `secrets.`
/// template fails to render here, as it does on provider requests.
fn manifest_headers(
    headers: &BTreeMap<String, String>,
    context: &Value,
) -> Result<HeaderMap, TokenError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let rendered = template::render(value, context)?;
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| TokenError::Header(name.clone()))?;
        let value =
            HeaderValue::from_str(&rendered).map_err(|_| TokenError::Header(name.clone()))?;
        map.insert(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_urls_are_paths_on_the_base_or_absolute() {
        let base = Url::parse("https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(
            resolve(&base, "/app/installations/7/access_tokens")
                .unwrap()
                .as_str(),
            "https://ghe.example.com/api/v3/app/installations/7/access_tokens"
        );
        assert_eq!(
            resolve(&base, "/token?audience=x").unwrap().as_str(),
            "https://ghe.example.com/api/v3/token?audience=x"
        );
        assert_eq!(
            resolve(&base, "https://login.example.com/oauth2/v1/token")
                .unwrap()
                .as_str(),
            "https://login.example.com/oauth2/v1/token"
        );
        assert!(resolve(&base, "file:///etc/passwd").is_err());
        assert!(resolve(&base, "not a url").is_err());
    }
}
