//! The token broker: places any mode's credential, minting tokens for the modes that need
//! one (`jwt_bearer`, including RFC 7523 assertion grants, and OAuth client credentials) and keeping them in its [`TokenCache`].
//! It also runs the authorization-code flow's token requests (code exchange, refresh), which
//! it does not cache: their tokens go to the vault. One broker per process, shared by every
//! connection.

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
use super::endpoint::{ClientAuth, FormGrant, Minted, TokenEndpoint};
use super::fields::{secret, text};
use super::jwt::{self, SigningKey};
use super::oauth::{ClientRegistration, TokenSet};
use super::{CredentialFieldsError, TokenError, fixed};
use crate::manifest::{
    AuthMode, JwtBearerSpec, OAuth2Spec, OAuthGrant, TokenAuthMethod, TokenExchange,
};
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

    /// What the live token minted from `secret` was granted, as its token endpoint said
    /// (see [`TokenCache::granted`]).
    pub fn granted(&self, secret: &SecretIdentity) -> Option<Vec<String>> {
        self.cache
            .granted(&secret.tenant, &secret.secret, secret.version)
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

    /// A signed JWT, used as is (a self-signed JWT) or exchanged for the token it buys: by a
    /// bearer-style exchange (GitHub App installation tokens) or as the assertion of RFC
    /// 7523's grant (Google service accounts, Salesforce).
    async fn jwt_bearer(
        &self,
        spec: &JwtBearerSpec,
        placement: &Placement<'_>,
    ) -> Result<Credential, TokenError> {
        let context = json!({"config": placement.config});
        let claims = render_claims(&spec.claims, &context)?;
        let exchange = match &spec.exchange {
            Some(exchange) => {
                let url = template::render(exchange.url(), &context)?;
                Some((exchange, resolve(placement.base_url, &url)?))
            }
            None => None,
        };
        let purpose = json!({
            "mode": "jwt_bearer",
            "algorithm": format!("{:?}", spec.algorithm),
            "claims": claims,
            "exchange": exchange.as_ref().map(|(e, url)| match e {
                TokenExchange::Bearer { method, .. } => json!([method, url.as_str()]),
                TokenExchange::Assertion { .. } => json!([e.style(), url.as_str()]),
            }),
        });
        let key = self.key(placement, &purpose);
        let mint = async {
            let signer =
                SigningKey::from_pem(&secret(placement.fields, "private_key")?, spec.algorithm)?;
            let key_id = placement.fields.get("key_id").and_then(Value::as_str);
            let now = SystemTime::now();
            let backdate = spec.backdate.map(|d| d.0).unwrap_or_default();
            let issued = now.checked_sub(backdate).unwrap_or(now);
            let jwt = signer.sign(key_id, &jwt::timed_claims(&claims, issued, spec.lifetime.0))?;
            match exchange {
                None => Ok(Minted {
                    token: jwt,
                    // It expires `lifetime` after its backdated issue time.
                    lifetime: Some(spec.lifetime.0.saturating_sub(backdate)),
                    granted: None,
                }),
                Some((exchange, url)) => {
                    let headers = match exchange {
                        TokenExchange::Bearer { .. } => {
                            manifest_headers(placement.headers, &context)?
                        }
                        TokenExchange::Assertion { .. } => HeaderMap::new(),
                    };
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
        let token_url = oauth_token_url(spec, placement.config, placement.base_url)?;
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
            let optional = |name| placement.fields.get(name).and_then(Value::as_str);
            let registration = ClientRegistration {
                client_id: client_id.to_owned(),
                client_secret: optional("client_secret").map(|s| SecretString::from(s.to_owned())),
                private_key: optional("private_key").map(|s| SecretString::from(s.to_owned())),
                key_id: optional("key_id").map(str::to_owned),
            };
            let auth = client_auth(spec.token_auth_method, &registration, &token_url, false)?;
            let mut form = vec![("grant_type", "client_credentials")];
            if !scope.is_empty() {
                form.push(("scope", scope.as_str()));
            }
            let grant = FormGrant {
                url: token_url.clone(),
                form,
                secrets: Vec::new(),
                auth,
            };
            let mut minted = self
                .endpoint()
                .bearer_grant(grant, spec.default_token_lifetime.map(|d| d.0))
                .await?;
            // RFC 6749 §5.1: an answer without `scope` granted what was asked.
            if minted.granted.is_none() && !spec.scopes.is_empty() {
                minted.granted = Some(spec.scopes.clone());
            }
            Ok(minted)
        };
        let token = self.cache.get_or_mint(key, mint).await?;
        Ok(Credential::Bearer(token))
    }

    /// authorization_code grant (RFC 6749 §4.1.3): code, redirect_uri, code_verifier (when
    /// given), client authentication per spec.token_auth_method (client_secret_basic,
    /// client_secret_post — the secret in the form, private_key_jwt — a signed assertion as the
    /// client-credentials grant already builds). For client_secret_* without a secret, send
    /// client_id in the form only (public client). Also returns the connection settings the
    /// mode's `config_from_token` reads from the answer.
    pub async fn exchange_code(
        &self,
        spec: &OAuth2Spec,
        token_url: Url,
        client: &ClientRegistration,
        code: &str,
        redirect_uri: &str,
        verifier: Option<&SecretString>,
    ) -> Result<(TokenSet, Map<String, Value>), TokenError> {
        let auth = client_auth(spec.token_auth_method, client, &token_url, true)?;
        let code = SecretString::from(code.to_owned());
        let mut secrets = vec![("code", &code)];
        if let Some(verifier) = verifier {
            secrets.push(("code_verifier", verifier));
        }
        let grant = FormGrant {
            url: token_url,
            form: vec![
                ("grant_type", "authorization_code"),
                ("redirect_uri", redirect_uri),
            ],
            secrets,
            auth,
        };
        self.endpoint()
            .token_set(
                grant,
                spec.default_token_lifetime.map(|d| d.0),
                &spec.config_from_token,
            )
            .await
    }

    /// refresh_token grant (RFC 6749 §6), same client authentication. No retry here: the caller
    /// decides (it holds a lock and must re-read before retrying).
    pub async fn refresh(
        &self,
        spec: &OAuth2Spec,
        token_url: Url,
        client: &ClientRegistration,
        refresh_token: &SecretString,
    ) -> Result<TokenSet, TokenError> {
        let auth = client_auth(spec.token_auth_method, client, &token_url, true)?;
        let grant = FormGrant {
            url: token_url,
            form: vec![("grant_type", "refresh_token")],
            secrets: vec![("refresh_token", refresh_token)],
            auth,
        };
        self.endpoint()
            .token_set(
                grant,
                spec.default_token_lifetime.map(|d| d.0),
                &BTreeMap::new(),
            )
            .await
            .map(|(tokens, _)| tokens)
    }
}

/// How `client` authenticates to `token_url` by `method`. A public client (no secret) is
/// allowed only where the flow has one (`public_allowed`: the authorization-code flows); it
/// sends its `client_id` in the form.
fn client_auth(
    method: TokenAuthMethod,
    client: &ClientRegistration,
    token_url: &Url,
    public_allowed: bool,
) -> Result<ClientAuth, TokenError> {
    let client_id = client.client_id.clone();
    let missing = |name: &str| TokenError::Fields(CredentialFieldsError::Missing(name.into()));
    Ok(match (method, &client.client_secret) {
        (TokenAuthMethod::PrivateKeyJwt, _) => {
            let pem = client
                .private_key
                .as_ref()
                .ok_or_else(|| missing("private_key"))?;
            let signer = SigningKey::detect(pem)?;
            let claims = jwt::assertion_claims(&client_id, token_url.as_str(), SystemTime::now());
            ClientAuth::Form(vec![
                ("client_id", SecretString::from(client_id)),
                (
                    "client_assertion_type",
                    SecretString::from("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ),
                (
                    "client_assertion",
                    signer.sign(client.key_id.as_deref(), &claims)?,
                ),
            ])
        }
        (TokenAuthMethod::ClientSecretBasic, Some(secret)) => ClientAuth::Basic {
            client_id,
            secret: secret.clone(),
        },
        (TokenAuthMethod::ClientSecretPost, Some(secret)) => ClientAuth::Form(vec![
            ("client_id", SecretString::from(client_id)),
            ("client_secret", secret.clone()),
        ]),
        (_, None) if public_allowed => {
            ClientAuth::Form(vec![("client_id", SecretString::from(client_id))])
        }
        (_, None) => return Err(missing("client_secret")),
    })
}

/// A JWT's claims rendered over the config. A claim that renders to empty text or null is
/// left out: a config value that is not set turns an optional claim off (Google's `sub`,
/// the user to act as under domain-wide delegation).
fn render_claims(
    claims: &BTreeMap<String, String>,
    context: &Value,
) -> Result<Map<String, Value>, TokenError> {
    let mut rendered = Map::new();
    for (name, value) in claims {
        match template::render_value(&Value::String(value.clone()), context)? {
            Value::Null => {}
            Value::String(text) if text.is_empty() => {}
            value => {
                rendered.insert(name.clone(), value);
            }
        }
    }
    Ok(rendered)
}

/// The spec's token URL for a connection (template over config; a path is on base_url).
pub fn oauth_token_url(
    spec: &OAuth2Spec,
    config: &Value,
    base_url: &Url,
) -> Result<Url, TokenError> {
    let context = json!({"config": config});
    resolve(base_url, &template::render(&spec.token_url, &context)?)
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
    use std::collections::HashMap;
    use std::sync::Mutex;

    use axum::Router;
    use axum::http::{HeaderMap as Headers, StatusCode};
    use axum::routing::post;
    use base64::Engine as _;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use secrecy::ExposeSecret as _;
    use switchyard_http::SsrfPolicy;
    use time::OffsetDateTime;

    use super::super::jwt::test_keys;
    use super::*;
    use crate::manifest::AuthMode;

    const CODE: &str = "code-4f1c2a9e";
    const VERIFIER: &str = "verifier-9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8";
    const SECRET: &str = "client-secret-77aa";
    const REFRESH: &str = "refresh-1b2c3d4e";

    /// What the token endpoint received on one request.
    #[derive(Debug, Clone)]
    struct Received {
        authorization: Option<String>,
        form: HashMap<String, String>,
    }

    /// A token endpoint answering `status` and `answer` to every request, keeping what it
    /// received; a status of 0 never answers.
    async fn token_endpoint(status: u16, answer: Value) -> (Url, Arc<Mutex<Vec<Received>>>) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
        let router = Router::new().route(
            "/oauth/token",
            post(move |headers: Headers, body: String| async move {
                log.lock().unwrap().push(Received {
                    authorization: headers
                        .get("authorization")
                        .map(|v| v.to_str().unwrap().to_owned()),
                    form: url::form_urlencoded::parse(body.as_bytes())
                        .into_owned()
                        .collect(),
                });
                if status == 0 {
                    std::future::pending::<()>().await;
                }
                (StatusCode::from_u16(status).unwrap(), axum::Json(answer))
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (Url::parse(&url).unwrap(), received)
    }

    fn broker() -> TokenBroker {
        let policy = SsrfPolicy::strict()
            .with_allow_http(true)
            .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
        TokenBroker::new(GuardedClient::builder(policy).build().unwrap())
            .with_timeout(Duration::from_millis(500))
    }

    fn spec(yaml: &str) -> OAuth2Spec {
        match serde_norway::from_str::<AuthMode>(yaml).unwrap() {
            AuthMode::OAuth2(spec) => spec,
            other => panic!("not oauth2: {other:?}"),
        }
    }

    fn registration(secret: Option<&str>) -> ClientRegistration {
        ClientRegistration {
            client_id: "client-1".into(),
            client_secret: secret.map(SecretString::from),
            private_key: None,
            key_id: None,
        }
    }

    fn issued() -> Value {
        json!({"access_token": "access-new", "refresh_token": "refresh-new",
               "expires_in": 3600, "token_type": "Bearer", "scope": "read write"})
    }

    async fn exchange(
        spec: &OAuth2Spec,
        client: &ClientRegistration,
        status: u16,
        answer: Value,
    ) -> (Result<TokenSet, TokenError>, Vec<Received>) {
        let (url, received) = token_endpoint(status, answer).await;
        let verifier = SecretString::from(VERIFIER);
        let result = broker()
            .exchange_code(
                spec,
                url,
                client,
                CODE,
                "https://switchyard.example.com/cb",
                Some(&verifier),
            )
            .await
            .map(|(tokens, _)| tokens);
        let received = received.lock().unwrap().clone();
        (result, received)
    }

    #[tokio::test]
    async fn config_from_token_reads_settings_from_the_answer_only() {
        let spec = spec(
            "{type: oauth2, token_url: /t, token_auth_method: client_secret_post, \
             config_from_token: {team_id: \"$.team.id\", missing: \"$.nope\", nested: \"$.team\"}}",
        );
        // Slack's oauth.v2.access answer, abridged.
        let answer = json!({"ok": true, "access_token": "xoxb-1", "token_type": "bot",
            "scope": "users:read", "team": {"id": "T0123ABCD", "name": "Acme"}});
        let (url, _) = token_endpoint(200, answer).await;
        let (tokens, settings) = broker()
            .exchange_code(
                &spec,
                url,
                &registration(None),
                CODE,
                "https://s.example.com/cb",
                None,
            )
            .await
            .unwrap();
        assert_eq!(tokens.token_type.as_deref(), Some("bot"));
        // Text and numbers only: an object is not a setting, a missing path is left out.
        assert_eq!(
            settings,
            json!({"team_id": "T0123ABCD"}).as_object().unwrap().clone()
        );
    }

    fn assert_code_grant(form: &HashMap<String, String>) {
        assert_eq!(form["grant_type"], "authorization_code");
        assert_eq!(form["code"], CODE);
        assert_eq!(form["redirect_uri"], "https://switchyard.example.com/cb");
        assert_eq!(form["code_verifier"], VERIFIER);
    }

    #[tokio::test]
    async fn a_code_exchange_authenticates_with_client_secret_basic() {
        let spec = spec("{type: oauth2, token_url: /t}");
        let (set, received) = exchange(&spec, &registration(Some(SECRET)), 200, issued()).await;
        let set = set.unwrap();
        let [request] = received.as_slice() else {
            panic!("{received:?}")
        };
        assert_code_grant(&request.form);
        assert!(!request.form.contains_key("client_secret"));
        let basic = request.authorization.as_deref().unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, format!("client-1:{SECRET}").as_bytes());

        assert_eq!(set.access_token.expose_secret(), "access-new");
        assert_eq!(
            set.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("refresh-new")
        );
        assert_eq!(set.scope.as_deref(), Some("read write"));
        assert_eq!(set.token_type.as_deref(), Some("Bearer"));
        let left = set.expires_at.unwrap() - OffsetDateTime::now_utc();
        assert!(left > time::Duration::minutes(59) && left <= time::Duration::hours(1));
    }

    #[tokio::test]
    async fn a_code_exchange_authenticates_with_client_secret_post() {
        let spec = spec("{type: oauth2, token_url: /t, token_auth_method: client_secret_post}");
        let (set, received) = exchange(&spec, &registration(Some(SECRET)), 200, issued()).await;
        set.unwrap();
        let request = &received[0];
        assert_code_grant(&request.form);
        assert_eq!(request.form["client_id"], "client-1");
        assert_eq!(request.form["client_secret"], SECRET);
        assert_eq!(request.authorization, None);
    }

    #[tokio::test]
    async fn a_public_client_sends_only_its_id() {
        for method in ["client_secret_basic", "client_secret_post"] {
            let spec = spec(&format!(
                "{{type: oauth2, token_url: /t, token_auth_method: {method}}}"
            ));
            let (set, received) = exchange(&spec, &registration(None), 200, issued()).await;
            set.unwrap();
            let request = &received[0];
            assert_code_grant(&request.form);
            assert_eq!(request.form["client_id"], "client-1");
            assert!(!request.form.contains_key("client_secret"));
            assert_eq!(request.authorization, None, "{method}");
        }
    }

    #[tokio::test]
    async fn a_code_exchange_authenticates_with_private_key_jwt() {
        let key = test_keys::rsa();
        let spec = spec("{type: oauth2, token_url: /t, token_auth_method: private_key_jwt}");
        let client = ClientRegistration {
            private_key: Some(SecretString::from(key.private_pem.clone())),
            key_id: Some("kid-9".into()),
            ..registration(None)
        };
        let (url, received) = token_endpoint(200, issued()).await;
        broker()
            .exchange_code(
                &spec,
                url.clone(),
                &client,
                CODE,
                "https://s.example.com/cb",
                None,
            )
            .await
            .unwrap();
        let request = received.lock().unwrap()[0].clone();
        assert!(!request.form.contains_key("code_verifier"));
        assert_eq!(request.authorization, None);
        assert_eq!(
            request.form["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let assertion = &request.form["client_assertion"];
        let header = jsonwebtoken::decode_header(assertion).unwrap();
        assert_eq!(header.kid.as_deref(), Some("kid-9"));
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[url.as_str()]);
        let claims = jsonwebtoken::decode::<Map<String, Value>>(
            assertion,
            &DecodingKey::from_rsa_pem(key.public_pem.as_bytes()).unwrap(),
            &validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");

        // Without a key there is nothing to sign with.
        let error = broker()
            .exchange_code(
                &spec,
                url,
                &registration(None),
                CODE,
                "https://s.example.com/cb",
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            TokenError::Fields(CredentialFieldsError::Missing(ref f)) if f == "private_key"
        ));
    }

    async fn refresh(answer: Value) -> (TokenSet, Received) {
        let spec = spec("{type: oauth2, token_url: /t, token_auth_method: client_secret_post}");
        let (url, received) = token_endpoint(200, answer).await;
        let set = broker()
            .refresh(
                &spec,
                url,
                &registration(Some(SECRET)),
                &SecretString::from(REFRESH),
            )
            .await
            .unwrap();
        let request = received.lock().unwrap()[0].clone();
        (set, request)
    }

    #[tokio::test]
    async fn a_refresh_takes_a_rotated_refresh_token_or_keeps_the_old_one() {
        let (rotated, request) = refresh(issued()).await;
        assert_eq!(request.form["grant_type"], "refresh_token");
        assert_eq!(request.form["refresh_token"], REFRESH);
        assert_eq!(request.form["client_secret"], SECRET);
        assert!(!request.form.contains_key("code"));
        let rotated = rotated.keep_refresh_token(Some(SecretString::from(REFRESH)));
        assert_eq!(
            rotated.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("refresh-new")
        );

        let (kept, _) = refresh(json!({"access_token": "access-2", "expires_in": "60"})).await;
        assert!(kept.refresh_token.is_none());
        let kept = kept.keep_refresh_token(Some(SecretString::from(REFRESH)));
        assert_eq!(kept.access_token.expose_secret(), "access-2");
        assert_eq!(
            kept.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some(REFRESH)
        );
        let left = kept.expires_at.unwrap() - OffsetDateTime::now_utc();
        assert!(left > time::Duration::seconds(50) && left <= time::Duration::seconds(60));
    }

    #[tokio::test]
    async fn without_expires_in_the_default_lifetime_or_none_applies() {
        let answer = json!({"access_token": "a"});
        let with_default = spec("{type: oauth2, token_url: /t, default_token_lifetime: 2h}");
        let (set, _) = exchange(
            &with_default,
            &registration(Some(SECRET)),
            200,
            answer.clone(),
        )
        .await;
        let left = set.unwrap().expires_at.unwrap() - OffsetDateTime::now_utc();
        assert!(left > time::Duration::minutes(119) && left <= time::Duration::hours(2));
        let without = spec("{type: oauth2, token_url: /t}");
        let (set, _) = exchange(&without, &registration(Some(SECRET)), 200, answer).await;
        assert_eq!(set.unwrap().expires_at, None);
    }

    #[tokio::test]
    async fn slack_answers_are_read_and_proof_of_possession_types_refused() {
        let spec = spec("{type: oauth2, token_url: /t}");
        let slack = json!({"ok": true, "access_token": "xoxb-1", "token_type": "bot",
                           "scope": "chat:write,users:read", "bot_user_id": "U1"});
        let (set, _) = exchange(&spec, &registration(Some(SECRET)), 200, slack).await;
        let set = set.unwrap();
        assert_eq!(set.token_type.as_deref(), Some("bot"));
        assert_eq!(set.scope.as_deref(), Some("chat:write,users:read"));
        assert_eq!(set.expires_at, None);

        let (refused, _) = exchange(
            &spec,
            &registration(Some(SECRET)),
            200,
            json!({"ok": false, "error": "invalid_code"}),
        )
        .await;
        let refused = refused.unwrap_err();
        assert!(
            refused.is_invalid_grant() && !refused.is_transient(),
            "{refused}"
        );

        for kind in ["DPoP", "mac"] {
            let (set, _) = exchange(
                &spec,
                &registration(Some(SECRET)),
                200,
                json!({"access_token": "a", "token_type": kind}),
            )
            .await;
            assert!(matches!(set, Err(TokenError::TokenType(k)) if k == kind));
        }
        let (set, _) = exchange(
            &spec,
            &registration(Some(SECRET)),
            200,
            json!({"token_type": "bearer"}),
        )
        .await;
        assert!(matches!(set, Err(TokenError::MissingToken(_))));
    }

    #[tokio::test]
    async fn refusals_say_whether_to_retry_or_reconnect() {
        let spec = spec("{type: oauth2, token_url: /t}");
        let client = registration(Some(SECRET));
        let cases = [
            (400, json!({"error": "invalid_grant"}), true, false),
            (400, json!({"error": "invalid_client"}), false, false),
            (
                503,
                json!({"error": "temporarily_unavailable"}),
                false,
                true,
            ),
            (429, json!({}), false, true),
            (0, json!({}), false, true),
        ];
        for (status, answer, invalid_grant, transient) in cases {
            let (result, _) = exchange(&spec, &client, status, answer.clone()).await;
            let error = result.unwrap_err();
            assert_eq!(
                error.is_invalid_grant(),
                invalid_grant,
                "{status} {answer}: {error}"
            );
            assert_eq!(
                error.is_transient(),
                transient,
                "{status} {answer}: {error}"
            );
        }
        let (url, _) = token_endpoint(400, json!({"error": "invalid_grant"})).await;
        let error = broker()
            .refresh(&spec, url, &client, &SecretString::from(REFRESH))
            .await
            .unwrap_err();
        assert!(error.is_invalid_grant());
        assert_eq!(error.code(), "token_refused");
    }

    #[tokio::test]
    async fn no_error_shows_what_was_sent() {
        let spec = spec("{type: oauth2, token_url: /t, token_auth_method: client_secret_post}");
        let client = registration(Some(SECRET));
        let shows_nothing_sent = |error: TokenError, sent: &[&str]| {
            let shown = format!("{error} {error:?}");
            for secret in sent {
                assert!(!shown.contains(secret), "{shown}");
            }
            assert!(
                matches!(error, TokenError::Refused { error: None, .. }),
                "{shown}"
            );
        };
        // An endpoint that echoes what it received gets no word in the error.
        for echoed in [CODE, VERIFIER, SECRET] {
            let answer = json!({"error": format!("bad_{echoed}")});
            let (result, _) = exchange(&spec, &client, 400, answer).await;
            shows_nothing_sent(result.unwrap_err(), &[CODE, VERIFIER, SECRET]);
        }
        for echoed in [REFRESH, SECRET] {
            let (url, _) = token_endpoint(401, json!({"error": format!("bad_{echoed}")})).await;
            let error = broker()
                .refresh(&spec, url, &client, &SecretString::from(REFRESH))
                .await
                .unwrap_err();
            shows_nothing_sent(error, &[REFRESH, SECRET]);
        }
    }

    #[test]
    fn the_client_credentials_grant_has_no_public_client() {
        let url = Url::parse("https://login.example.com/token").unwrap();
        let error = client_auth(
            TokenAuthMethod::ClientSecretPost,
            &registration(None),
            &url,
            false,
        )
        .err()
        .unwrap();
        assert!(matches!(
            error,
            TokenError::Fields(CredentialFieldsError::Missing(ref f)) if f == "client_secret"
        ));
    }

    #[test]
    fn oauth_token_urls_render_over_the_config() {
        let base = Url::parse("https://acme.example.com/api/").unwrap();
        let config = json!({"domain": "login.example.com"});
        let absolute =
            spec("{type: oauth2, token_url: 'https://{{ config.domain }}/oauth2/token'}");
        assert_eq!(
            oauth_token_url(&absolute, &config, &base).unwrap().as_str(),
            "https://login.example.com/oauth2/token"
        );
        let path = spec("{type: oauth2, token_url: /oauth/token}");
        assert_eq!(
            oauth_token_url(&path, &config, &base).unwrap().as_str(),
            "https://acme.example.com/api/oauth/token"
        );
        let bad = spec("{type: oauth2, token_url: 'ftp://{{ config.domain }}/t'}");
        assert!(matches!(
            oauth_token_url(&bad, &config, &base),
            Err(TokenError::Url(_))
        ));
    }

    #[test]
    fn claims_that_render_empty_or_null_are_left_out() {
        let claims: BTreeMap<String, String> = [
            ("iss", "{{ config.email }}"),
            ("sub", "{{ config.subject }}"),
            ("act", "{{ config.unset }}"),
            ("project", "{{ config.project }}"),
            ("tag", "v{{ config.project }}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let context = json!({"config": {"email": "sa@p.example", "subject": "", "project": 7}});
        let rendered = render_claims(&claims, &context).unwrap();
        assert_eq!(
            Value::Object(rendered),
            json!({"iss": "sa@p.example", "project": 7, "tag": "v7"})
        );
    }

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
