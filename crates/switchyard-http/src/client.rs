//! The outbound client with the SSRF guard built in.
//!
//! Two checks, because reqwest has two paths to a socket:
//! - host names go through [`GuardedResolver`], so the addresses checked are the addresses
//!   connected to (a name that resolves to a public address for a validation and to
//!   127.0.0.1 a second later gains nothing);
//! - IP-literal hosts never reach a resolver, so [`GuardedClient`] checks the URL before the
//!   request starts. That is why the raw `reqwest::Client` is not handed out.
//!
//! Redirects are never followed (a 3xx is returned as the response) and proxies are off,
//! including the `HTTP(S)_PROXY` environment variables: a proxy would resolve and connect for
//! us, past the guard.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::{Method, Request, RequestBuilder, Response, redirect};
use url::Url;

use crate::metrics::record_ssrf_denial;
use crate::ssrf::{Denied, SsrfPolicy};

/// What an outbound call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The SSRF policy refused the destination (before or at connect time).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The request failed for another reason (DNS, connect, TLS, timeout, body…). The URL
    /// is stripped from the inner error.
    #[error("outbound request failed")]
    Request(#[source] reqwest::Error),
    /// The response body is larger than the caller reads.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The client could not be built (TLS backend initialisation).
    #[error("could not build the outbound HTTP client")]
    Build(#[source] reqwest::Error),
}

impl OutboundError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Denied(denied) => denied.code(),
            Self::Request(e) if e.is_timeout() => "upstream_timeout",
            Self::Request(e) if e.is_connect() => "upstream_connect_failed",
            Self::Request(_) => "upstream_request_failed",
            Self::BodyTooLarge { .. } => "upstream_body_too_large",
            Self::Build(_) => "client_build_failed",
        }
    }
}

impl From<reqwest::Error> for OutboundError {
    /// A denial from the resolver arrives wrapped in reqwest's connect error; unwrap it so the
    /// caller sees the typed reason.
    fn from(err: reqwest::Error) -> Self {
        match find_denial(&err) {
            Some(denied) => Self::Denied(denied.clone()),
            // reqwest puts the URL (query string and all) into its errors; ours never carry it.
            None => Self::Request(err.without_url()),
        }
    }
}

/// The SSRF denial somewhere in an error's cause chain, if any.
pub fn find_denial<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a Denied> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(denied) = e.downcast_ref::<Denied>() {
            return Some(denied);
        }
        current = e.source();
    }
    None
}

/// A `reqwest` resolver that drops every resolved address the policy denies, and fails with
/// the [`Denied`] reason when none is left.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<SsrfPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<SsrfPolicy>) -> Self {
        Self { policy }
    }

    /// Keeps the allowed addresses; the first denial explains an empty result.
    pub fn filter(
        &self,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, Denied> {
        let mut allowed = Vec::new();
        let mut first_denial = None;
        for addr in addrs {
            match self.policy.check_ip(addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(denied) => {
                    record_ssrf_denial(&denied);
                    first_denial.get_or_insert(denied);
                }
            }
        }
        match first_denial {
            Some(denied) if allowed.is_empty() => Err(denied),
            _ => Ok(allowed),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port.
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = guard.filter(resolved)?;
            if allowed.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "host name resolved to no address",
                )
                .into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

type Customize = Box<dyn FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send>;

/// Builds a [`GuardedClient`]; the guard settings are applied last, so nothing set through
/// [`GuardedClientBuilder::customize`] can turn them off.
pub struct GuardedClientBuilder {
    policy: SsrfPolicy,
    timeout: Option<Duration>,
    connect_timeout: Duration,
    user_agent: String,
    customize: Option<Customize>,
}

impl GuardedClientBuilder {
    /// Total deadline per request, from connect to the end of the body. None by default:
    /// callers pick one per kind of call.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Connect deadline (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Any other reqwest setting (pool sizes, HTTP/2, extra root certificates…).
    pub fn customize(
        mut self,
        f: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + 'static,
    ) -> Self {
        self.customize = Some(Box::new(f));
        self
    }

    pub fn build(self) -> Result<GuardedClient, OutboundError> {
        let policy = Arc::new(self.policy);
        let mut builder = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent);
        if let Some(timeout) = self.timeout {
            builder = builder.timeout(timeout);
        }
        if let Some(customize) = self.customize {
            builder = customize(builder);
        }
        let inner = builder
            .tls_backend_rustls()
            .dns_resolver(GuardedResolver::new(Arc::clone(&policy)))
            .redirect(redirect::Policy::none())
            .no_proxy()
            .referer(false)
            .https_only(!policy.allow_http)
            .build()
            .map_err(OutboundError::Build)?;
        Ok(GuardedClient { inner, policy })
    }
}

/// A `reqwest` client that only reaches destinations the [`SsrfPolicy`] allows. Cheap to
/// clone (one connection pool).
#[derive(Debug, Clone)]
pub struct GuardedClient {
    inner: reqwest::Client,
    policy: Arc<SsrfPolicy>,
}

impl GuardedClient {
    pub fn builder(policy: SsrfPolicy) -> GuardedClientBuilder {
        GuardedClientBuilder {
            policy,
            timeout: None,
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("Switchyard/", env!("CARGO_PKG_VERSION")).to_owned(),
            customize: None,
        }
    }

    pub fn policy(&self) -> &SsrfPolicy {
        &self.policy
    }

    /// Checks the URL against the policy (scheme, literal address); names are checked when
    /// the connection resolves them.
    pub fn check_url(&self, url: &Url) -> Result<(), Denied> {
        self.policy.check_url(url).inspect_err(record_ssrf_denial)
    }

    /// A request builder for an allowed URL. Send it with [`RequestBuilder::send`] and map
    /// the error with `OutboundError::from` to see resolver denials typed.
    pub fn request(&self, method: Method, url: Url) -> Result<RequestBuilder, Denied> {
        self.check_url(&url)?;
        Ok(self.inner.request(method, url))
    }

    pub fn get(&self, url: Url) -> Result<RequestBuilder, Denied> {
        self.request(Method::GET, url)
    }

    pub fn post(&self, url: Url) -> Result<RequestBuilder, Denied> {
        self.request(Method::POST, url)
    }

    /// Executes a prepared request (its URL may have been changed after it was built, so it
    /// is checked here again).
    pub async fn execute(&self, request: Request) -> Result<Response, OutboundError> {
        self.check_url(request.url())?;
        Ok(self.inner.execute(request).await?)
    }

    /// Builds and executes a request from [`GuardedClient::request`].
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, OutboundError> {
        let request = request.build()?;
        self.execute(request).await
    }
}
