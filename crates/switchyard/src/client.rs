//! The management API client used by the CLI commands.

use anyhow::{Context, anyhow};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::Value;

use crate::cli::ClientArgs;

/// Talks to a running server with one bearer token.
pub struct ApiClient {
    base_url: String,
    token: String,
    http: reqwest::Client,
}

impl ApiClient {
    /// Uses `--token`/`SWITCHYARD_TOKEN`, or else the generated admin token file.
    pub fn from_args(args: &ClientArgs) -> anyhow::Result<Self> {
        let token = match &args.token {
            Some(token) => token.clone(),
            None => {
                let path = args.data_dir.join("admin-token");
                std::fs::read_to_string(&path)
                    .map(|text| text.trim().to_owned())
                    .map_err(|_| {
                        anyhow!(
                            "no token: pass --token or set SWITCHYARD_TOKEN (no admin token file at `{}`)",
                            path.display()
                        )
                    })?
            }
        };
        Ok(Self {
            base_url: args.url.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::builder()
                .user_agent(concat!("switchyard-cli/", env!("CARGO_PKG_VERSION")))
                .build()?,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(Method::PUT, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Value> {
        self.send(Method::DELETE, path, None).await
    }

    /// Every item of a paginated list, following `next_cursor`.
    pub async fn list_all(&self, path: &str) -> anyhow::Result<Vec<Value>> {
        self.list_all_with(path, &[]).await
    }

    /// Every item of a paginated list with extra `name=value` query parameters.
    pub async fn list_all_with(&self, path: &str, query: &[String]) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        let mut base_query = vec!["limit=200".to_owned()];
        base_query.extend(query.iter().cloned());
        loop {
            let mut parameters = base_query.clone();
            if let Some(cursor) = &cursor {
                parameters.push(format!("cursor={cursor}"));
            }
            let page_path = format!("{path}?{}", parameters.join("&"));
            let page = self.get(&page_path).await?;
            if let Some(data) = page["data"].as_array() {
                items.extend(data.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(items),
            }
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base_url);
        let mut request = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", self.base_url))?;
        let status = response.status();
        let body: Value = response.json().await.with_context(|| {
            format!("the server answered {status} with a body that is not JSON")
        })?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(problem_error(&body, status))
        }
    }
}

/// Characters left as they are in a path segment or query value: RFC 3986's unreserved set.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An API path from its segments and query parameters, each percent-encoded (a stream name
/// or a cursor may hold any character); parameters whose value is `None` are left out.
pub fn api_path(segments: &[&str], query: &[(&str, Option<&str>)]) -> String {
    let mut path = String::new();
    for segment in segments {
        path.push('/');
        path.extend(utf8_percent_encode(segment, UNRESERVED));
    }
    let mut separator = '?';
    for (name, value) in query {
        if let Some(value) = value {
            path.push(separator);
            path.push_str(name);
            path.push('=');
            path.extend(utf8_percent_encode(value, UNRESERVED));
            separator = '&';
        }
    }
    path
}

/// "title: detail (code `x`, request `y`)" from a problem body.
fn problem_error(problem: &Value, status: reqwest::StatusCode) -> anyhow::Error {
    let title = problem["title"].as_str().unwrap_or("request failed");
    let code = problem["code"].as_str().unwrap_or("unknown");
    let request_id = problem["request_id"].as_str().unwrap_or("-");
    match problem["detail"].as_str() {
        Some(detail) => {
            anyhow!("{title}: {detail} (HTTP {status}, code `{code}`, request `{request_id}`)")
        }
        None => anyhow!("{title} (HTTP {status}, code `{code}`, request `{request_id}`)"),
    }
}
