//! Connect sessions and the flows an end user goes through in them.
//!
//! A tenant's app creates a session (`POST /v1/connect-sessions`) and sends its user to the
//! session's connect URL. The session token in that URL is the capability: it is stored only
//! as a SHA-256 hash, single-tenant by construction, and expires (30 minutes by default).
//!
//! - OAuth: [`ConnectFlows::start`] makes a random `state` (stored hashed, single use,
//!   expiring, bound to the session and to the browser by a cookie named after it) and a PKCE
//!   verifier (sealed by the vault, its S256 challenge sent), and redirects to the provider.
//!   [`ConnectFlows::callback`] checks the cookie, takes the state, exchanges the code with
//!   the tenant's client registration, stores the tokens in the vault, creates the connection
//!   (or repairs the one the session names), runs its check and finishes the session.
//! - API keys and basic credentials: [`ConnectFlows::submit_form`] takes the form the page
//!   generated from the connector's config schema and auth mode, validates it server-side and
//!   creates the connection only if its check passes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use switchyard_audit::{Action, Actor, AuditEntry, AuditLog};
use switchyard_connectors::CheckReport;
use switchyard_connectors::credentials::oauth::{
    AuthorizationRequest, Pkce, authorization_url, random_token,
};
use switchyard_connectors::credentials::{TokenBroker, connection_base_url, oauth_token_url};
use switchyard_connectors::manifest::AuthMode;
use switchyard_connectors::store::{
    ConnectSession, ConnectSessionStore, Connection, NewConnectSession, OAuthState, SessionStatus,
    StateLookup,
};
use switchyard_core::{ConnectSessionId, ConnectionId, ErrorCode, TenantId};
use switchyard_vault::{AuditContext, AuditedVault};
use time::OffsetDateTime;
use url::Url;

use super::clients::OAuthClients;
use crate::connectors::{ConnectorService, CreateConnection, store_error};
use crate::error::ApiError;

/// Where the flows live and how long their parts last.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// `{public_url}/connect/{token}` is a session's connect URL.
    pub public_url: String,
    /// The redirect URI sent to providers (registrations may override it).
    pub callback_url: String,
    pub session_ttl: Duration,
    pub state_ttl: Duration,
}

/// A session to create, as the API received it.
pub struct NewSession {
    pub end_user: Value,
    pub allowed_providers: Vec<String>,
    pub redirect_url: Option<String>,
    pub connection_id: Option<ConnectionId>,
    pub ttl: Option<Duration>,
    /// Per provider, connection settings to use (and not ask the user for).
    pub config: Map<String, Value>,
}

/// How a flow ended, for the result page or the redirect to the tenant's app.
#[derive(Debug)]
pub struct Finished {
    pub success: bool,
    pub provider: String,
    pub connection_id: Option<ConnectionId>,
    /// A stable code when it failed (`access_denied`, `check_failed`…).
    pub error: Option<String>,
    pub message: String,
    /// The tenant's redirect URL with the outcome in its query, if the session has one.
    pub redirect: Option<String>,
}

/// A form submission that did not connect: shown again with these errors.
#[derive(Debug, Default)]
pub struct FormRejection {
    pub form_error: Option<String>,
    pub field_errors: BTreeMap<String, String>,
}

/// An authorization request begun: where to send the browser, and the cookie that binds the
/// state to it.
#[derive(Debug)]
pub struct Started {
    pub authorization_url: Url,
    pub cookie: StateCookie,
}

/// The state's binding cookie. Its path is the redirect URI's, which is where the provider
/// sends the browser back (behind a path prefix too).
#[derive(Debug)]
pub struct StateCookie {
    pub name: String,
    pub value: String,
    pub path: String,
    pub secure: bool,
}

impl StateCookie {
    pub fn header(&self, max_age: Duration) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{}={}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            self.name,
            self.value,
            self.path,
            max_age.as_secs()
        )
    }
}

/// The path of a redirect URI (`/` if it has none worth naming).
pub fn cookie_path(redirect_uri: &str) -> String {
    Url::parse(redirect_uri)
        .ok()
        .map(|url| url.path().to_owned())
        .filter(|path| !path.is_empty() && !path.contains(';'))
        .unwrap_or_else(|| "/".to_owned())
}

/// The name of the cookie that binds a `state` to the browser that started the flow.
pub fn state_cookie_name(state_hash: &str) -> String {
    format!("sy_oauth_{}", &state_hash[..16.min(state_hash.len())])
}

/// Hex SHA-256: how session tokens and states are stored and looked up.
pub fn hash(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn verifier_aad(state_hash: &str) -> Vec<u8> {
    format!("oauth-state:{state_hash}").into_bytes()
}

fn context() -> AuditContext {
    AuditContext::new(Actor::Internal {
        component: "oauth.connect".to_owned(),
        run_id: None,
    })
}

/// Connect sessions and their flows. Cheap to clone.
#[derive(Clone)]
pub struct ConnectFlows {
    pub sessions: ConnectSessionStore,
    pub clients: OAuthClients,
    pub broker: Arc<TokenBroker>,
    pub vault: AuditedVault,
    pub audit: AuditLog,
    pub settings: Arc<ConnectSettings>,
}

impl ConnectFlows {
    pub fn connect_url(&self, token: &str) -> String {
        format!("{}/connect/{token}", self.settings.public_url)
    }

    /// Creates a session; returns it with its token (shown once).
    pub async fn create_session(
        &self,
        connectors: &ConnectorService,
        tenant: TenantId,
        new: NewSession,
    ) -> Result<(ConnectSession, String), ApiError> {
        let invalid =
            |detail: String| ApiError::new(ErrorCode::ValidationFailed).with_detail(detail);
        if new.allowed_providers.is_empty() {
            return Err(invalid(
                "`allowed_providers`: name at least one provider".into(),
            ));
        }
        for provider in &new.allowed_providers {
            connectors.connector(provider)?;
        }
        for provider in new.config.keys() {
            if !new.allowed_providers.contains(provider) {
                return Err(invalid(format!(
                    "`config`: `{provider}` is not one of the allowed providers"
                )));
            }
        }
        if !new
            .end_user
            .get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| !id.is_empty() && id.len() <= 200)
        {
            return Err(invalid("`end_user.id`: 1 to 200 characters".into()));
        }
        if let Some(url) = &new.redirect_url {
            match Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "https" | "http") => {}
                _ => return Err(invalid("`redirect_url`: an http(s) URL".into())),
            }
        }
        if let Some(id) = new.connection_id {
            let connection = connectors.get(tenant, id).await?;
            if !new.allowed_providers.contains(&connection.provider) {
                return Err(invalid(format!(
                    "`connection_id`: the connection is a `{}` connection; allow that provider",
                    connection.provider
                )));
            }
        }
        let ttl = new.ttl.unwrap_or(self.settings.session_ttl);
        if ttl.is_zero() || ttl > Duration::from_secs(7 * 24 * 3600) {
            return Err(invalid("`expires_in`: 1 second to 7 days".into()));
        }
        let token = random_token();
        let mut end_user = new.end_user;
        if let Some(object) = end_user.as_object_mut() {
            // Settings ride with the end user so that the flows find them; they are not secret.
            object.insert("config".into(), Value::Object(new.config));
        }
        let session = self
            .sessions
            .create(NewConnectSession {
                tenant_id: tenant,
                id: ConnectSessionId::generate(),
                token_hash: hash(&token),
                end_user,
                allowed_providers: new.allowed_providers,
                redirect_url: new.redirect_url,
                connection_id: new.connection_id,
                expires_at: OffsetDateTime::now_utc() + ttl,
            })
            .await
            .map_err(store_error)?;
        Ok((session, token))
    }

    /// The pending session behind a connect URL's token.
    pub async fn open(&self, token: &str) -> Result<ConnectSession, ApiError> {
        let session = self
            .sessions
            .by_token_hash(&hash(token))
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found("the connect session"))?;
        self.usable(session).await
    }

    async fn usable(&self, session: ConnectSession) -> Result<ConnectSession, ApiError> {
        if session.status != SessionStatus::Pending {
            return Err(ApiError::new(ErrorCode::ConnectSessionExpired)
                .with_detail(format!("the session is {}", session.status.as_str())));
        }
        if session.expires_at <= OffsetDateTime::now_utc() {
            let _ = self
                .sessions
                .finish(
                    &session.tenant_id,
                    &session.id,
                    SessionStatus::Expired,
                    json!({"error": "expired"}),
                )
                .await;
            return Err(
                ApiError::new(ErrorCode::ConnectSessionExpired).with_detail("the session expired")
            );
        }
        Ok(session)
    }

    fn allowed(session: &ConnectSession, provider: &str) -> Result<(), ApiError> {
        if session.allowed_providers.iter().any(|p| p == provider) {
            Ok(())
        } else {
            Err(ApiError::not_found(format_args!(
                "provider `{provider}` in this session"
            )))
        }
    }

    /// Settings the tenant gave for `provider`, merged under what the user entered.
    pub fn session_config(session: &ConnectSession, provider: &str) -> Map<String, Value> {
        session
            .end_user
            .get("config")
            .and_then(|c| c.get(provider))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Starts an OAuth flow: the provider's authorization URL and the state's cookie name
    /// and value for the browser.
    pub async fn start(&self, token: &str, provider: &str) -> Result<Started, ApiError> {
        let session = self.open(token).await?;
        Self::allowed(&session, provider)?;
        let spec = self.clients.code_flow(provider)?;
        let client = self
            .clients
            .store
            .for_provider(&session.tenant_id, provider)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                ApiError::new(ErrorCode::UnsupportedOperation).with_detail(format!(
                    "the tenant registered no OAuth client for `{provider}` (POST /v1/oauth-clients)"
                ))
            })?;
        let config = Value::Object(Self::session_config(&session, provider));
        let redirect_uri = client
            .redirect_uri
            .clone()
            .unwrap_or_else(|| self.settings.callback_url.clone());
        let state = random_token();
        let state_hash = hash(&state);
        let pkce = spec.pkce.then(Pkce::generate);
        let url = authorization_url(&AuthorizationRequest {
            spec: &spec,
            config: &config,
            client_id: &client.client_id,
            redirect_uri: &redirect_uri,
            scopes: Some(&client.scopes),
            state: &state,
            pkce: pkce.as_ref(),
        })
        .map_err(|e| ApiError::new(ErrorCode::ValidationFailed).with_detail(e.to_string()))?;
        let sealed_verifier = match &pkce {
            Some(pkce) => {
                let sealed = self
                    .vault
                    .encrypt_blob(
                        session.tenant_id,
                        &verifier_aad(&state_hash),
                        pkce.verifier().expose_secret().as_bytes(),
                    )
                    .await
                    .map_err(ApiError::internal)?;
                use base64::Engine as _;
                Some(base64::engine::general_purpose::STANDARD.encode(sealed))
            }
            None => None,
        };
        let now = OffsetDateTime::now_utc();
        self.sessions
            .create_state(OAuthState {
                state_hash: state_hash.clone(),
                tenant_id: session.tenant_id,
                session_id: session.id,
                provider: provider.to_owned(),
                sealed_verifier,
                redirect_uri: redirect_uri.clone(),
                expires_at: now + self.settings.state_ttl,
                used_at: None,
                created_at: now,
            })
            .await
            .map_err(store_error)?;
        let cookie_path = cookie_path(&redirect_uri);
        let secure = redirect_uri.starts_with("https://");
        Ok(Started {
            authorization_url: url,
            cookie: StateCookie {
                name: state_cookie_name(&state_hash),
                value: state_hash,
                path: cookie_path,
                secure,
            },
        })
    }

    /// The provider sent the user back. `cookies` are the request's cookies by name.
    pub async fn callback(
        &self,
        connectors: &ConnectorService,
        query: &BTreeMap<String, String>,
        cookies: &BTreeMap<String, String>,
    ) -> Result<Finished, ApiError> {
        let state_error = |detail: &str| {
            ApiError::new(ErrorCode::OAuthStateInvalid).with_detail(detail.to_owned())
        };
        let state = query
            .get("state")
            .filter(|s| !s.is_empty())
            .ok_or_else(|| state_error("the callback has no `state`"))?;
        let state_hash = hash(state);
        // The browser that started this flow holds the cookie named after its state: a
        // callback replayed into another browser (login CSRF) is refused before anything.
        if cookies.get(&state_cookie_name(&state_hash)) != Some(&state_hash) {
            return Err(state_error("this browser did not start this authorization"));
        }
        let taken = self
            .sessions
            .take_state(&state_hash, OffsetDateTime::now_utc())
            .await
            .map_err(store_error)?;
        let state = match taken {
            StateLookup::Valid(state) => state,
            StateLookup::Used => return Err(state_error("the `state` was already used")),
            StateLookup::Expired => return Err(state_error("the `state` expired")),
            StateLookup::Unknown => return Err(state_error("the `state` is unknown")),
        };
        let session = self
            .sessions
            .get(&state.tenant_id, &state.session_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found("the connect session"))?;
        let session = self.usable(session).await?;
        let provider = state.provider.clone();
        let outcome = self
            .complete_authorization(connectors, &session, &state, query)
            .await;
        let finished = match outcome {
            Ok((connection, report)) => {
                self.connected(&session, &provider, &connection, report)
                    .await
            }
            Err((code, message)) => self.failed(&session, &provider, &code, &message).await,
        };
        Ok(finished)
    }

    /// Everything after the state checked out; an `Err` is a code and a message for the user.
    async fn complete_authorization(
        &self,
        connectors: &ConnectorService,
        session: &ConnectSession,
        state: &OAuthState,
        query: &BTreeMap<String, String>,
    ) -> Result<(Connection, Option<CheckReport>), (String, String)> {
        if let Some(error) = query.get("error") {
            // The provider's own words, trimmed to what a result page should show.
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect();
            let description: String = query
                .get("error_description")
                .map(|d| d.chars().filter(|c| !c.is_control()).take(300).collect())
                .unwrap_or_default();
            let message = if description.is_empty() {
                format!("The provider ended the authorization: {code}.")
            } else {
                format!("The provider ended the authorization: {code} ({description}).")
            };
            return Err((code, message));
        }
        let code = query.get("code").filter(|c| !c.is_empty()).ok_or_else(|| {
            (
                "invalid_request".to_owned(),
                "The provider sent no authorization code.".to_owned(),
            )
        })?;
        let provider = &state.provider;
        let internal = |what: &str| ("internal".to_owned(), format!("{what} failed; try again."));
        let spec = self.clients.code_flow(provider).map_err(|e| {
            (
                "unsupported".to_owned(),
                e.detail().unwrap_or("").to_owned(),
            )
        })?;
        let (_, registration) = self
            .clients
            .registration(&context(), session.tenant_id, provider)
            .await
            .map_err(|_| internal("Reading the OAuth client"))?
            .ok_or_else(|| {
                (
                    "no_oauth_client".to_owned(),
                    format!("The tenant has no OAuth client for {provider}."),
                )
            })?;
        let verifier = match &state.sealed_verifier {
            Some(sealed) => {
                use base64::Engine as _;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(sealed)
                    .map_err(|_| internal("Reading the PKCE verifier"))?;
                let plain = self
                    .vault
                    .decrypt_blob(session.tenant_id, &verifier_aad(&state.state_hash), &bytes)
                    .await
                    .map_err(|_| internal("Reading the PKCE verifier"))?;
                let text = String::from_utf8(plain.to_vec())
                    .map_err(|_| internal("Reading the PKCE verifier"))?;
                Some(SecretString::from(text))
            }
            None => None,
        };
        let config = Value::Object(Self::session_config(session, provider));
        let manifest = connectors
            .catalogue
            .registry()
            .manifest(provider)
            .ok_or_else(|| internal("Loading the connector"))?;
        let token_url = connection_base_url(&manifest.base_url, None, &config)
            .and_then(|base| oauth_token_url(&spec, &config, &base))
            .map_err(|e| ("auth_config_invalid".to_owned(), e.to_string()))?;
        let (tokens, settings) = self
            .broker
            .exchange_code(
                &spec,
                token_url,
                &registration,
                code,
                &state.redirect_uri,
                verifier.as_ref(),
            )
            .await
            .map_err(|e| {
                (
                    e.code().to_owned(),
                    format!("The provider did not issue a token: {e}."),
                )
            })?;
        let fields = tokens.into_fields();
        // What the provider's answer says about the account (Slack's workspace) is the truth
        // for this connection, over what the session assumed.
        let mut config = config;
        if let Some(object) = config.as_object_mut() {
            object.extend(settings);
        }
        let mode = Some(AuthMode::OAuth2(spec).kind().to_owned());
        self.store_connection(connectors, session, provider, config, mode, fields, true)
            .await
            .map_err(|e| {
                (
                    e.code().as_str().to_owned(),
                    e.detail()
                        .unwrap_or("The connection could not be saved.")
                        .to_owned(),
                )
            })
    }

    /// Creates the session's connection, or gives the connection it repairs (or the end
    /// user's earlier one of this provider) the new credential. Runs the check.
    #[allow(clippy::too_many_arguments)]
    async fn store_connection(
        &self,
        connectors: &ConnectorService,
        session: &ConnectSession,
        provider: &str,
        config: Value,
        auth_mode: Option<String>,
        fields: Map<String, Value>,
        keep_on_failed_check: bool,
    ) -> Result<(Connection, Option<CheckReport>), ApiError> {
        let context = context();
        let existing = match session.connection_id {
            Some(id) => Some(connectors.get(session.tenant_id, id).await?),
            None => connectors
                .connections
                .by_name(&session.tenant_id, &connection_name(session, provider))
                .await
                .map_err(store_error)?
                .filter(|c| c.provider == provider),
        };
        if let Some(connection) = existing {
            let (connection, report) = connectors
                .rotate_credentials(&context, &connection, auth_mode.as_deref(), &fields)
                .await?;
            if !report.success {
                // Rolled back: the connection keeps its previous credential.
                let reason = report
                    .error_message
                    .or(report.error_code)
                    .unwrap_or_default();
                return Err(ApiError::new(ErrorCode::ProviderError).with_detail(format!(
                    "The provider did not accept the new credential ({reason}); the connection keeps its previous one."
                )));
            }
            return Ok((connection, Some(report)));
        }
        let connection = connectors
            .create(
                &context,
                session.tenant_id,
                CreateConnection {
                    provider: provider.to_owned(),
                    name: connection_name(session, provider),
                    config,
                    base_url: None,
                    auth_mode,
                    credentials: Some(fields),
                },
            )
            .await?;
        let report = match connectors.test(&connection).await {
            Ok(report) => Some(report),
            Err(error) if error.code() == ErrorCode::UnsupportedOperation => None,
            Err(error) => {
                tracing::warn!(connection = %connection.id, code = error.code().as_str(), "the new connection's check failed to run");
                None
            }
        };
        if !keep_on_failed_check && report.as_ref().is_some_and(|r| !r.success) {
            connectors
                .delete(&context, session.tenant_id, connection.id)
                .await?;
        }
        Ok((connection, report))
    }

    async fn connected(
        &self,
        session: &ConnectSession,
        provider: &str,
        connection: &Connection,
        report: Option<CheckReport>,
    ) -> Finished {
        let check = report.as_ref().map(|r| {
            json!({"success": r.success, "error_code": r.error_code, "permissions_missing": r.permissions_missing})
        });
        let success = report.as_ref().is_none_or(|r| r.success);
        let result = json!({
            "provider": provider,
            "connection_id": connection.id,
            "check": check,
        });
        if let Err(error) = self
            .sessions
            .finish(
                &session.tenant_id,
                &session.id,
                SessionStatus::Completed,
                result,
            )
            .await
        {
            tracing::error!(code = error.code(), "could not finish a connect session");
        }
        let entry = AuditEntry::new(
            session.tenant_id,
            context().actor,
            Action::CONNECTION_CONNECT,
            format!("connection:{}", connection.id),
        );
        if let Err(error) = self.audit.record(entry).await {
            tracing::error!(%error, "could not audit a connection made through a connect session");
        }
        let message = if success {
            format!("Your {provider} account is connected.")
        } else {
            let reason = report
                .as_ref()
                .and_then(|r| r.error_message.clone().or(r.error_code.clone()))
                .unwrap_or_default();
            format!("Your {provider} account is connected, but its check failed: {reason}")
        };
        Finished {
            success,
            provider: provider.to_owned(),
            connection_id: Some(connection.id),
            error: (!success).then(|| "check_failed".to_owned()),
            message,
            redirect: redirect_with(
                session,
                "completed",
                Some(connection.id),
                (!success).then_some("check_failed"),
            ),
        }
    }

    async fn failed(
        &self,
        session: &ConnectSession,
        provider: &str,
        code: &str,
        message: &str,
    ) -> Finished {
        let result = json!({"provider": provider, "error": code, "message": message});
        if let Err(error) = self
            .sessions
            .finish(
                &session.tenant_id,
                &session.id,
                SessionStatus::Failed,
                result,
            )
            .await
        {
            tracing::error!(code = error.code(), "could not finish a connect session");
        }
        Finished {
            success: false,
            provider: provider.to_owned(),
            connection_id: None,
            error: Some(code.to_owned()),
            message: message.to_owned(),
            redirect: redirect_with(session, "failed", None, Some(code)),
        }
    }

    /// An API-key or basic form posted from the connect page. The connection is kept only
    /// if its check passes; otherwise the form is shown again with the reason and the user
    /// may try again in the same session.
    pub async fn submit_form(
        &self,
        connectors: &ConnectorService,
        token: &str,
        provider: &str,
        form: &BTreeMap<String, String>,
    ) -> Result<Result<Finished, FormRejection>, ApiError> {
        let session = self.open(token).await?;
        Self::allowed(&session, provider)?;
        let mode = super::form::form_mode(connectors, provider).ok_or_else(|| {
            ApiError::new(ErrorCode::UnsupportedOperation)
                .with_detail(format!("`{provider}` is not connected with a form"))
        })?;
        let mut config = Self::session_config(&session, provider);
        let mut fields = Map::new();
        let mut rejection = FormRejection::default();
        for (name, value) in form {
            let value = value.trim();
            if let Some(key) = name.strip_prefix("config.") {
                if !value.is_empty() {
                    config.insert(key.to_owned(), Value::String(value.to_owned()));
                }
            } else if let Some(key) = name.strip_prefix("credentials.") {
                if value.is_empty() {
                    rejection
                        .field_errors
                        .insert(name.clone(), "Enter a value.".into());
                } else {
                    fields.insert(key.to_owned(), Value::String(value.to_owned()));
                }
            }
        }
        for field in mode.credential_fields() {
            let name = format!("credentials.{field}");
            if !fields.contains_key(&field) && !rejection.field_errors.contains_key(&name) {
                rejection.field_errors.insert(name, "Enter a value.".into());
            }
        }
        let connector = connectors.connector(provider)?;
        let config = super::form::typed_config(connectors, provider, config);
        if let Err(error) = connector.validate_config(&config) {
            rejection.form_error = Some(format!("Check the settings: {error}"));
        }
        if !rejection.field_errors.is_empty() || rejection.form_error.is_some() {
            rejection
                .form_error
                .get_or_insert_with(|| "Some fields need your attention.".into());
            return Ok(Err(rejection));
        }
        let stored = self
            .store_connection(
                connectors,
                &session,
                provider,
                config,
                Some(mode.kind().to_owned()),
                fields,
                false,
            )
            .await;
        match stored {
            Ok((connection, report)) => {
                if let Some(report) = report.as_ref().filter(|r| !r.success) {
                    let reason = report
                        .error_message
                        .clone()
                        .or(report.error_code.clone())
                        .unwrap_or_default();
                    return Ok(Err(FormRejection {
                        form_error: Some(format!(
                            "{provider} did not accept these credentials: {reason}"
                        )),
                        field_errors: BTreeMap::new(),
                    }));
                }
                Ok(Ok(self
                    .connected(&session, provider, &connection, report)
                    .await))
            }
            Err(error)
                if matches!(
                    error.code(),
                    ErrorCode::ValidationFailed | ErrorCode::ProviderError
                ) =>
            {
                Ok(Err(FormRejection {
                    form_error: Some(error.detail().unwrap_or("Check the fields.").to_owned()),
                    field_errors: BTreeMap::new(),
                }))
            }
            Err(error) => Err(error),
        }
    }
}

/// The name a session's connection gets: one per end user and provider.
fn connection_name(session: &ConnectSession, provider: &str) -> String {
    let user = session
        .end_user
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("user");
    format!("{provider}:{user}")
}

/// The tenant's redirect URL with the outcome in its query.
fn redirect_with(
    session: &ConnectSession,
    status: &str,
    connection: Option<ConnectionId>,
    error: Option<&str>,
) -> Option<String> {
    let mut url = Url::parse(session.redirect_url.as_deref()?).ok()?;
    {
        let mut pairs = url.query_pairs_mut();
        pairs.append_pair("connect_session_id", &session.id.to_string());
        pairs.append_pair("status", status);
        if let Some(connection) = connection {
            pairs.append_pair("connection_id", &connection.to_string());
        }
        if let Some(error) = error {
            pairs.append_pair("error", error);
        }
    }
    Some(url.into())
}
