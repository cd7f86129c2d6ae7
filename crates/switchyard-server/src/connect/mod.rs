//! The hosted connect pages an end user's browser visits: the session's page, the start of
//! an OAuth flow, the provider's callback, and the credentials form. They carry no bearer
//! authentication: the session token in the URL is the capability (see
//! [`crate::oauth::connect`]).
//!
//! Answers are HTML pages, or Problem Details for a client that asks for JSON only. Every
//! page is sent with a strict Content-Security-Policy (no scripts at all), `no-store`, and
//! `Referrer-Policy: no-referrer` so that the token in the URL never leaves in a Referer.
//!
//! - [`page`]: the HTML itself.

pub mod page;

use std::collections::{BTreeMap, BTreeSet};

use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection as AxumFormRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use switchyard_core::ErrorCode;

use crate::AppState;
use crate::error::ApiError;
use crate::oauth::connect::{Finished, cookie_path, state_cookie_name};
use crate::oauth::form::{self, Resubmission};

/// Security headers of every connect page.
fn page_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(page::CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

fn html(status: StatusCode, body: String) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response();
    page_headers(&mut response);
    response
}

/// A client that asks for JSON and not HTML gets the problem; a browser gets a page.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("json") && !accept.contains("text/html")
}

fn error_page(headers: &HeaderMap, error: ApiError) -> Response {
    if wants_json(headers) {
        return error.into_response();
    }
    let code = error.code();
    let status = StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let detail = match code {
        // Internal causes are logged by ApiError, never shown.
        ErrorCode::Internal | ErrorCode::Unavailable => {
            "Something went wrong on our side. Try again in a moment.".to_owned()
        }
        _ => error.detail().unwrap_or(code.title()).to_owned(),
    };
    if status.is_server_error() {
        // Let ApiError log the cause with the request id.
        drop(error.into_response());
    }
    let message = format!("{detail} (error code: {})", code.as_str());
    html(
        status,
        page::result_page(&page::ResultPage {
            success: false,
            heading: "We could not connect your account",
            message: &message,
            continue_url: None,
        }),
    )
}

/// After the OAuth callback (a plain GET) the browser is sent on to the tenant's app. After a
/// form POST it is not: the page's `form-action 'self'` would block a redirect elsewhere, so
/// the result page links to it instead.
fn finished_response(finished: Finished, clear_cookie: Option<String>, redirect: bool) -> Response {
    let mut response = match &finished.redirect {
        Some(url) if redirect => Redirect::to(url).into_response(),
        _ => html(
            StatusCode::OK,
            page::result_page(&page::ResultPage {
                success: finished.success,
                heading: if finished.success {
                    "Account connected"
                } else {
                    "We could not connect your account"
                },
                message: &finished.message,
                continue_url: finished.redirect.as_deref(),
            }),
        ),
    };
    page_headers(&mut response);
    if let Some(cookie) = clear_cookie
        && let Ok(value) = HeaderValue::from_str(&cookie)
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn oauth_ready(
    state: &AppState,
    session: &switchyard_connectors::store::ConnectSession,
) -> BTreeSet<String> {
    let mut ready = BTreeSet::new();
    for provider in &session.allowed_providers {
        if let Ok(Some(_)) = state
            .oauth
            .flows
            .clients
            .store
            .for_provider(&session.tenant_id, provider)
            .await
        {
            ready.insert(provider.clone());
        }
    }
    ready
}

async fn render_page(
    state: &AppState,
    token: &str,
    session: &switchyard_connectors::store::ConnectSession,
    resubmission: Option<Resubmission<'_>>,
) -> String {
    let ready = oauth_ready(state, session).await;
    let tenant = state
        .store
        .get_tenant(session.tenant_id)
        .await
        .ok()
        .flatten();
    let intro = tenant.map(|t| format!("{} asks you to connect one of your accounts.", t.name));
    form::render(
        &state.connectors,
        &state.oauth.flows,
        session,
        token,
        &ready,
        intro.as_deref(),
        resubmission,
    )
}

/// `GET /connect/{token}`: the session's page.
pub async fn connect_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.oauth.flows.open(&token).await {
        Ok(session) => html(
            StatusCode::OK,
            render_page(&state, &token, &session, None).await,
        ),
        Err(error) => error_page(&headers, error),
    }
}

/// `GET /connect/{token}/oauth/{provider}`: to the provider, with the state's cookie.
pub async fn start_oauth(
    State(state): State<AppState>,
    Path((token, provider)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match state.oauth.flows.start(&token, &provider).await {
        Ok(started) => {
            let mut response = Redirect::to(started.authorization_url.as_str()).into_response();
            page_headers(&mut response);
            let cookie = started.cookie.header(state.oauth.flows.settings.state_ttl);
            match HeaderValue::from_str(&cookie) {
                Ok(cookie) => {
                    response.headers_mut().append(header::SET_COOKIE, cookie);
                    response
                }
                Err(error) => error_page(&headers, ApiError::internal(error)),
            }
        }
        Err(error) => error_page(&headers, error),
    }
}

fn cookies(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|line| line.split(';'))
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// `GET /oauth/callback`: the provider sent the user back.
pub async fn oauth_callback(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let jar = cookies(&headers);
    match state
        .oauth
        .flows
        .callback(&state.connectors, &query, &jar)
        .await
    {
        Ok(finished) => {
            // Expire the binding cookie where it was set (the configured callback's path).
            let cookie = query.get("state").map(|s| {
                let path = cookie_path(&state.oauth.flows.settings.callback_url);
                format!(
                    "{}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Lax",
                    state_cookie_name(&crate::oauth::connect::hash(s))
                )
            });
            finished_response(finished, cookie, true)
        }
        Err(error) => error_page(&headers, error),
    }
}

/// `POST /connect/{token}/credentials/{provider}`: the API-key or basic form.
pub async fn submit_credentials(
    State(state): State<AppState>,
    Path((token, provider)): Path<(String, String)>,
    headers: HeaderMap,
    form: Result<Form<BTreeMap<String, String>>, AxumFormRejection>,
) -> Response {
    let Ok(Form(values)) = form else {
        return error_page(
            &headers,
            ApiError::new(ErrorCode::InvalidBody).with_detail("send the connect page's form"),
        );
    };
    match state
        .oauth
        .flows
        .submit_form(&state.connectors, &token, &provider, &values)
        .await
    {
        Ok(Ok(finished)) => finished_response(finished, None, false),
        Ok(Err(rejection)) => match state.oauth.flows.open(&token).await {
            Ok(session) => {
                // Typed values come back, secrets never do (the page drops them too).
                let kept: BTreeMap<String, String> = values
                    .into_iter()
                    .filter(|(name, _)| name.starts_with("config."))
                    .collect();
                let body = render_page(
                    &state,
                    &token,
                    &session,
                    Some(Resubmission {
                        provider: &provider,
                        rejection: &rejection,
                        values: &kept,
                    }),
                )
                .await;
                html(StatusCode::UNPROCESSABLE_ENTITY, body)
            }
            Err(error) => error_page(&headers, error),
        },
        Err(error) => error_page(&headers, error),
    }
}
