//! Calls to token endpoints: a `jwt_bearer` mode's exchange (GitHub's installation tokens,
//! or RFC 7523's JWT-bearer grant for Google service accounts and Salesforce) and OAuth's
//! form grants (RFC 6749: client credentials §4.4, authorization code §4.1.3, refresh token
//! §6), which share one sender ([`FormGrant`]). They go through the
//! SSRF-guarded client under a deadline, read at most [`MAX_ANSWER`] bytes, and turn a
//! refusal into a [`TokenError`] that names the provider's error code, never what was sent.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value};
use serde_json_path::JsonPath;
use switchyard_http::{GuardedClient, OutboundError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::TokenError;
use super::oauth::{TokenSet, expiry};
use crate::manifest::TokenExchange;

/// Token answers are small; a larger one is not a token endpoint's.
pub const MAX_ANSWER: usize = 64 * 1024;

/// RFC 7523 §2.1's `grant_type`.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Where a bearer-style exchange's answer holds the token and its expiry.
struct AnswerPaths<'a> {
    token_path: &'a str,
    expires_at_path: Option<&'a str>,
    granted_path: Option<&'a str>,
    /// When the answer has no expiry.
    default_lifetime: Option<Duration>,
}

/// A token as the endpoint issued it (`Debug` shows the token redacted).
#[derive(Debug)]
pub struct Minted {
    pub token: SecretString,
    /// How long it is good for from now, when known.
    pub lifetime: Option<Duration>,
    /// What the endpoint says the token is granted (scopes, or `permission:level`).
    pub granted: Option<Vec<String>>,
}

/// How client credentials reach the token endpoint.
pub enum ClientAuth {
    /// `Authorization: Basic` of the form-encoded id and secret (RFC 6749 §2.3.1).
    Basic {
        client_id: String,
        secret: SecretString,
    },
    /// Fields of the form body: `client_id` and `client_secret`, or a client assertion.
    Form(Vec<(&'static str, SecretString)>),
}

pub struct TokenEndpoint<'a> {
    pub client: &'a GuardedClient,
    pub timeout: Duration,
}

impl TokenEndpoint<'_> {
    /// Sends `request` and reads the answer, all within the deadline.
    async fn send(&self, request: RequestBuilder) -> Result<(StatusCode, Vec<u8>), TokenError> {
        let call = async {
            let response = self.client.send(request.timeout(self.timeout)).await?;
            let status = response.status();
            let body = read_limited(response).await?;
            Ok::<_, OutboundError>((status, body))
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) if error.code() == "upstream_timeout" => {
                Err(TokenError::Timeout(self.timeout))
            }
            Ok(Err(error)) => Err(TokenError::Unreachable(error)),
            Err(_) => Err(TokenError::Timeout(self.timeout)),
        }
    }

    fn request(&self, method: Method, url: Url) -> Result<RequestBuilder, TokenError> {
        self.client
            .request(method, url)
            .map_err(|denied| TokenError::Unreachable(denied.into()))
    }

    /// Trades `jwt` for the token it buys, the way `exchange` says. `headers` (the
    /// manifest's) go on a bearer-style exchange only: an OAuth token endpoint is not the
    /// provider's API.
    pub async fn exchange(
        &self,
        exchange: &TokenExchange,
        url: Url,
        headers: HeaderMap,
        jwt: &SecretString,
    ) -> Result<Minted, TokenError> {
        match exchange {
            TokenExchange::Bearer {
                method,
                token_path,
                expires_at_path,
                granted_path,
                default_token_lifetime,
                ..
            } => {
                let answer = AnswerPaths {
                    token_path,
                    expires_at_path: expires_at_path.as_deref(),
                    granted_path: granted_path.as_deref(),
                    default_lifetime: default_token_lifetime.map(|d| d.0),
                };
                self.bearer_exchange(method, url, headers, jwt, answer)
                    .await
            }
            TokenExchange::Assertion {
                default_token_lifetime,
                ..
            } => {
                self.assertion_grant(url, jwt, default_token_lifetime.map(|d| d.0))
                    .await
            }
        }
    }

    /// Sends `jwt` as the bearer credential of a request to `url` and reads the token it
    /// buys where `paths` say (GitHub's installation tokens).
    async fn bearer_exchange(
        &self,
        method: &str,
        url: Url,
        mut headers: HeaderMap,
        jwt: &SecretString,
        paths: AnswerPaths<'_>,
    ) -> Result<Minted, TokenError> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| TokenError::Method(method.to_owned()))?;
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("application/json"));
        headers.insert(
            AUTHORIZATION,
            sensitive(&format!("Bearer {}", jwt.expose_secret()))?,
        );
        let (status, body) = self
            .send(self.request(method, url)?.headers(headers))
            .await?;
        let answer: Option<Value> = serde_json::from_slice(&body).ok();
        if !status.is_success() {
            let reason = answer.as_ref().and_then(|answer| {
                // GitHub says why in `message`; OAuth-style endpoints in `error`.
                let text = ["error", "message"]
                    .iter()
                    .find_map(|field| answer.get(field)?.as_str())?;
                provider_words(text, &[jwt.expose_secret()])
            });
            return Err(TokenError::Refused {
                status: status.as_u16(),
                error: reason,
            });
        }
        let answer = answer.ok_or(TokenError::InvalidResponse("the answer is not JSON"))?;
        let token = select(&answer, paths.token_path)?
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| TokenError::MissingToken(paths.token_path.to_owned()))?;
        let lifetime = match paths.expires_at_path {
            Some(path) => select(&answer, path)?.map(until).transpose()?,
            None => None,
        };
        let granted = match paths.granted_path {
            Some(path) => select(&answer, path)?.and_then(grants),
            None => None,
        };
        Ok(Minted {
            token: SecretString::from(token.to_owned()),
            lifetime: lifetime.or(paths.default_lifetime),
            granted,
        })
    }

    /// The JWT-bearer authorization grant (RFC 7523 §2.1): `jwt` is the `assertion` and
    /// authenticates by itself (no client authentication), the answer is read as the
    /// client-credentials grant's.
    async fn assertion_grant(
        &self,
        url: Url,
        jwt: &SecretString,
        default_lifetime: Option<Duration>,
    ) -> Result<Minted, TokenError> {
        let grant = FormGrant {
            url,
            form: vec![("grant_type", JWT_BEARER_GRANT)],
            secrets: vec![("assertion", jwt)],
            auth: ClientAuth::Form(Vec::new()),
        };
        self.bearer_grant(grant, default_lifetime).await
    }

    /// A grant that buys a bearer token for the broker's cache (client credentials, RFC 6749
    /// §4.4; the JWT-bearer grant): the token and its lifetime.
    pub async fn bearer_grant(
        &self,
        grant: FormGrant<'_>,
        default_lifetime: Option<Duration>,
    ) -> Result<Minted, TokenError> {
        let answer = self.form_grant(grant).await?;
        if let Some(kind) = answer.get("token_type").and_then(Value::as_str)
            && !kind.eq_ignore_ascii_case("bearer")
        {
            let kind = provider_words(kind, &[]).unwrap_or_default();
            return Err(TokenError::TokenType(kind));
        }
        Ok(Minted {
            token: access_token(&answer)?,
            lifetime: lifetime(&answer)?.or(default_lifetime),
            granted: answer.get("scope").and_then(grants),
        })
    }

    /// The authorization-code (§4.1.3) and refresh-token (§6) grants: the token set issued,
    /// and the values at `settings` (name → JSONPath) in the answer.
    pub async fn token_set(
        &self,
        grant: FormGrant<'_>,
        default_lifetime: Option<Duration>,
        settings: &BTreeMap<String, String>,
    ) -> Result<(TokenSet, Map<String, Value>), TokenError> {
        let answer = self.form_grant(grant).await?;
        let whole = Value::Object(answer.clone());
        let mut found = Map::new();
        for (name, path) in settings {
            if let Some(value) = select(&whole, path)?.filter(|v| v.is_string() || v.is_number()) {
                found.insert(name.clone(), value.clone());
            }
        }
        let token_type = answer.get("token_type").and_then(Value::as_str);
        // Proof-of-possession tokens need a key we do not hold on each request; any other
        // type (Slack's `bot`) is sent as a bearer token.
        if let Some(kind) = token_type
            && (kind.eq_ignore_ascii_case("mac") || kind.eq_ignore_ascii_case("dpop"))
        {
            let kind = provider_words(kind, &[]).unwrap_or_default();
            return Err(TokenError::TokenType(kind));
        }
        let text = |name: &str| {
            answer
                .get(name)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
        };
        let now = OffsetDateTime::now_utc();
        let tokens = TokenSet {
            access_token: access_token(&answer)?,
            refresh_token: text("refresh_token").map(|t| SecretString::from(t.to_owned())),
            expires_at: lifetime(&answer)?
                .or(default_lifetime)
                .and_then(|lifetime| expiry(now, lifetime)),
            scope: text("scope").map(str::to_owned),
            token_type: token_type.map(str::to_owned),
        };
        Ok((tokens, found))
    }

    /// Sends a grant's form with the client's authentication and reads a successful answer
    /// (RFC 6749 §5.1) or the refusal (§5.2). Besides an HTTP error status, a refusal is a 2xx
    /// answer with `"ok": false` (Slack) or with an `error` and no token (GitHub).
    async fn form_grant(&self, grant: FormGrant<'_>) -> Result<Map<String, Value>, TokenError> {
        let FormGrant {
            url,
            form,
            secrets,
            auth,
        } = grant;
        let mut request = self.request(Method::POST, url)?;
        // What was sent that must not come back in an error message.
        let mut sent: Vec<SecretString> = secrets.iter().map(|(_, v)| (*v).clone()).collect();
        let mut auth_fields = Vec::new();
        match auth {
            ClientAuth::Basic { client_id, secret } => {
                use base64::Engine as _;
                // §2.3.1: both halves form-encoded before they are joined.
                let id: String =
                    url::form_urlencoded::byte_serialize(client_id.as_bytes()).collect();
                let password: String =
                    url::form_urlencoded::byte_serialize(secret.expose_secret().as_bytes())
                        .collect();
                let pair = SecretString::from(format!("{id}:{password}"));
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(pair.expose_secret());
                request = request.header(AUTHORIZATION, sensitive(&format!("Basic {encoded}"))?);
                sent.push(secret);
            }
            ClientAuth::Form(fields) => auth_fields = fields,
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().copied())
            .extend_pairs(secrets.iter().map(|(name, v)| (*name, v.expose_secret())))
            .extend_pairs(
                auth_fields
                    .iter()
                    .map(|(name, value)| (*name, value.expose_secret())),
            )
            .finish();
        // The client id and assertion type are no secrets (and a short client id could be
        // part of an error code).
        sent.extend(
            auth_fields
                .into_iter()
                .filter(|(name, _)| matches!(*name, "client_secret" | "client_assertion"))
                .map(|(_, value)| value),
        );
        let request = request
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .body(body);
        let (status, body) = self.send(request).await?;
        let answer = match serde_json::from_slice(&body) {
            Ok(Value::Object(answer)) => Some(answer),
            _ => None,
        };
        let refused = !status.is_success()
            || answer.as_ref().is_some_and(|answer| {
                answer.get("ok") == Some(&Value::Bool(false))
                    || (answer.get("error").is_some_and(Value::is_string)
                        && !answer.contains_key("access_token"))
            });
        if refused {
            let sent: Vec<&str> = sent.iter().map(|s| s.expose_secret()).collect();
            let error = answer
                .as_ref()
                .and_then(|answer| answer.get("error")?.as_str())
                .filter(|code| is_error_code(code))
                .and_then(|code| provider_words(code, &sent));
            return Err(TokenError::Refused {
                status: status.as_u16(),
                error,
            });
        }
        answer.ok_or(TokenError::InvalidResponse(
            "the answer is not a JSON object",
        ))
    }
}

/// One form grant: its fields and the client's authentication.
pub struct FormGrant<'a> {
    pub url: Url,
    /// Fields that are no secrets (`grant_type`, `scope`, `redirect_uri`).
    pub form: Vec<(&'static str, &'a str)>,
    /// Fields that must never come back in an error (`code`, `code_verifier`,
    /// `refresh_token`).
    pub secrets: Vec<(&'static str, &'a SecretString)>,
    pub auth: ClientAuth,
}

/// The answer's `access_token`, required and not empty.
/// What a token answer says is granted: a list of names, one string of names separated by
/// spaces (OAuth's `scope`) or commas, or an object of permission → level (GitHub's
/// `{"members": "read"}`, read as `members:read`).
fn grants(value: &Value) -> Option<Vec<String>> {
    let names = match value {
        Value::String(text) => text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Value::Object(levels) => levels
            .iter()
            .filter_map(|(name, level)| Some(format!("{name}:{}", level.as_str()?)))
            .collect(),
        _ => return None,
    };
    Some(names)
}

fn access_token(answer: &Map<String, Value>) -> Result<SecretString, TokenError> {
    answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|token| !token.is_empty())
        .map(|token| SecretString::from(token.to_owned()))
        .ok_or_else(|| TokenError::MissingToken("access_token".into()))
}

/// The answer's `expires_in`, when it has one.
fn lifetime(answer: &Map<String, Value>) -> Result<Option<Duration>, TokenError> {
    match answer.get("expires_in") {
        None | Some(Value::Null) => Ok(None),
        // Some endpoints send the number as a string.
        Some(seconds) => seconds
            .as_u64()
            .or_else(|| seconds.as_str()?.parse().ok())
            .map(|seconds| Some(Duration::from_secs(seconds)))
            .ok_or(TokenError::InvalidResponse(
                "`expires_in` is not a number of seconds",
            )),
    }
}

fn sensitive(value: &str) -> Result<HeaderValue, TokenError> {
    let mut value =
        HeaderValue::from_str(value).map_err(|_| TokenError::Header(AUTHORIZATION.to_string()))?;
    value.set_sensitive(true);
    Ok(value)
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, OutboundError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(OutboundError::from)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(OutboundError::BodyTooLarge { limit: MAX_ANSWER });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The first value at `path` in `answer`.
fn select<'a>(answer: &'a Value, path: &str) -> Result<Option<&'a Value>, TokenError> {
    let path = JsonPath::parse(path).map_err(|_| TokenError::InvalidResponse("a JSONPath"))?;
    Ok(path.query(answer).first())
}

/// How long from now until `expiry` (RFC 3339 text or epoch seconds); zero when past.
fn until(expiry: &Value) -> Result<Duration, TokenError> {
    let at = match expiry {
        Value::String(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| TokenError::InvalidResponse("the expiry is not RFC 3339"))?,
        Value::Number(n) => n
            .as_i64()
            .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
            .ok_or(TokenError::InvalidResponse(
                "the expiry is not epoch seconds",
            ))?,
        _ => return Err(TokenError::InvalidResponse("the expiry is not a time")),
    };
    let at = SystemTime::from(at);
    Ok(at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO))
}

/// RFC 6749 §5.2: an error code is printable ASCII without `"` and `\`.
fn is_error_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

/// A provider's words fit for an error message: one line, bounded, and nothing that was sent.
fn provider_words(text: &str, sent: &[&str]) -> Option<String> {
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    let text = text.trim();
    if text.is_empty() || sent.iter().any(|s| !s.is_empty() && text.contains(s)) {
        return None;
    }
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::post;
    use serde_json::json;
    use switchyard_http::SsrfPolicy;

    use super::*;

    /// A token endpoint that answers `answer` with `status`, or never when `status` is 0.
    async fn token_endpoint(status: u16, answer: Value) -> Url {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/token", listener.local_addr().unwrap());
        let router = Router::new().route(
            "/token",
            post(move || async move {
                if status == 0 {
                    std::future::pending::<()>().await;
                }
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    axum::Json(answer),
                )
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Url::parse(&url).unwrap()
    }

    async fn grant(status: u16, answer: Value) -> Result<Minted, TokenError> {
        let policy = SsrfPolicy::strict()
            .with_allow_http(true)
            .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
        let client = GuardedClient::builder(policy).build().unwrap();
        let endpoint = TokenEndpoint {
            client: &client,
            timeout: Duration::from_millis(300),
        };
        let auth = ClientAuth::Form(vec![
            ("client_id", SecretString::from("client")),
            ("client_secret", SecretString::from("s3cret-value")),
        ]);
        let url = token_endpoint(status, answer).await;
        let grant = FormGrant {
            url,
            form: vec![("grant_type", "client_credentials")],
            secrets: Vec::new(),
            auth,
        };
        endpoint.bearer_grant(grant, None).await
    }

    #[tokio::test]
    async fn token_answers_are_read_strictly() {
        let minted = grant(
            200,
            json!({"access_token": "t", "token_type": "bearer", "expires_in": "120"}),
        )
        .await
        .unwrap();
        assert_eq!(minted.lifetime, Some(Duration::from_secs(120)));
        let minted = grant(200, json!({"access_token": "t"})).await.unwrap();
        assert_eq!(minted.lifetime, None);
        assert!(matches!(
            grant(200, json!({"access_token": "t", "token_type": "DPoP"})).await,
            Err(TokenError::TokenType(kind)) if kind == "DPoP"
        ));
        assert!(matches!(
            grant(200, json!({"access_token": "t", "expires_in": "soon"})).await,
            Err(TokenError::InvalidResponse(_))
        ));
        assert!(matches!(
            grant(200, json!({"token_type": "Bearer"})).await,
            Err(TokenError::MissingToken(_))
        ));
        // A short client id inside the error code does not hide the code; a secret does.
        let refused = grant(400, json!({"error": "invalid_client"}))
            .await
            .unwrap_err();
        assert_eq!(
            refused.to_string(),
            "the token endpoint refused the credential: invalid_client (HTTP 400)"
        );
        let echoed = grant(401, json!({"error": "bad_s3cret-value"}))
            .await
            .unwrap_err();
        assert!(!echoed.to_string().contains("s3cret"), "{echoed}");
        assert!(matches!(
            grant(0, json!({})).await,
            Err(TokenError::Timeout(_))
        ));
    }

    #[tokio::test]
    async fn a_successful_status_can_still_carry_a_refusal() {
        // Slack: HTTP 200 with `"ok": false`.
        let slack = grant(200, json!({"ok": false, "error": "invalid_client_id"}))
            .await
            .unwrap_err();
        assert!(
            matches!(&slack, TokenError::Refused { status: 200, error: Some(code) } if code == "invalid_client_id"),
            "{slack}"
        );
        // GitHub: HTTP 200 with an `error` and no token.
        let github = grant(200, json!({"error": "incorrect_client_credentials"}))
            .await
            .unwrap_err();
        assert!(matches!(github, TokenError::Refused { status: 200, .. }));
        // `ok: true` with a token is an answer.
        let minted = grant(200, json!({"ok": true, "access_token": "t"}))
            .await
            .unwrap();
        assert_eq!(minted.token.expose_secret(), "t");
        assert!(matches!(
            grant(200, json!(["access_token"])).await,
            Err(TokenError::InvalidResponse(_))
        ));
    }

    #[test]
    fn expiries_read_as_rfc3339_or_epoch_seconds() {
        let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
        let text = later.format(&Rfc3339).unwrap();
        let left = until(&json!(text)).unwrap();
        assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));
        let left = until(&json!(later.unix_timestamp())).unwrap();
        assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600));
        assert_eq!(
            until(&json!("2001-01-01T00:00:00Z")).unwrap(),
            Duration::ZERO
        );
        assert!(until(&json!("tomorrow")).is_err());
        assert!(until(&json!(true)).is_err());
    }

    #[test]
    fn provider_words_never_repeat_what_was_sent() {
        assert_eq!(
            provider_words("Bad credentials\n", &["s3cret"]).as_deref(),
            Some("Bad credentials")
        );
        assert_eq!(provider_words("token s3cret is wrong", &["s3cret"]), None);
        assert_eq!(provider_words("   ", &[]), None);
        assert!(is_error_code("invalid_client"));
        assert!(!is_error_code("bad\"code"));
        assert!(!is_error_code(&"x".repeat(65)));
    }
}
