//! The SSRF policy: which addresses and URLs outbound calls may reach.
//!
//! Pure decisions only; [`crate::client`] applies them where it matters (every resolved
//! address at connect time, and IP-literal hosts before the request starts).

mod ranges;

use std::net::IpAddr;

use ipnet::IpNet;
use url::{Host, Url};

pub use ranges::RangeClass;

/// Deny by default; the operator's allow list wins over every deny range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsrfPolicy {
    /// Ranges the operator trusts (for example an internal service, or `127.0.0.1/32` in tests).
    pub allow_cidrs: Vec<IpNet>,
    /// Allow plain `http://` (off by default: a webhook body is worth protecting in transit).
    pub allow_http: bool,
}

/// Why a destination was refused. Carries no URL, path or query, so it is safe to log and to
/// show to the tenant who configured the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The address (a literal host, or one the name resolved to) is in a denied range.
    #[error("destination {ip} is in a denied range: {range} ({class})")]
    Address {
        ip: IpAddr,
        range: IpNet,
        class: RangeClass,
    },
    /// Only `https` (and `http` when the policy allows it) may be called.
    #[error("URL scheme `{scheme}` is not allowed")]
    Scheme { scheme: String },
    /// A URL without a host (`data:`, `unix:` …) cannot be a destination.
    #[error("URL has no host")]
    NoHost,
}

impl Denied {
    /// Stable machine-readable code, for problem bodies and delivery attempt records.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Address { .. } => "ssrf_denied",
            Self::Scheme { .. } => "scheme_not_allowed",
            Self::NoHost => "invalid_url",
        }
    }

    /// The metrics label: the range class, or the kind of URL refusal.
    pub fn class_label(&self) -> &'static str {
        match self {
            Self::Address { class, .. } => class.as_str(),
            Self::Scheme { .. } => "scheme",
            Self::NoHost => "no_host",
        }
    }
}

/// An allow-list entry that is neither a CIDR nor an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid CIDR in allow list: `{entry}`")]
pub struct InvalidCidr {
    pub entry: String,
}

impl SsrfPolicy {
    /// The production default: https only, nothing private allowed.
    pub fn strict() -> Self {
        Self::default()
    }

    pub fn new(allow_cidrs: Vec<IpNet>, allow_http: bool) -> Self {
        Self {
            allow_cidrs,
            allow_http,
        }
    }

    pub fn with_allow_cidrs(mut self, cidrs: impl IntoIterator<Item = IpNet>) -> Self {
        self.allow_cidrs.extend(cidrs);
        self
    }

    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Parses a comma- or whitespace-separated allow list (`"10.1.0.0/16, 127.0.0.1"`); a bare
    /// address means just that address. The caller decides where the text comes from.
    pub fn parse_allow_list(text: &str) -> Result<Vec<IpNet>, InvalidCidr> {
        text.split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| InvalidCidr {
                        entry: entry.to_owned(),
                    })
            })
            .collect()
    }

    fn is_allowed(&self, ip: IpAddr) -> bool {
        self.allow_cidrs.iter().any(|net| net.contains(&ip))
    }

    /// May a connection go to `ip`?
    ///
    /// An IPv6 address that embeds an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by
    /// the IPv4 address, since that is where the packets end up; the allow list is consulted
    /// for both forms.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Denied> {
        if self.is_allowed(ip) {
            return Ok(());
        }
        let hit = match ip {
            IpAddr::V4(v4) => ranges::deny_v4(v4),
            IpAddr::V6(v6) => match ranges::embedded_v4(v6) {
                Some(inner) if self.is_allowed(IpAddr::V4(inner)) => None,
                Some(inner) => ranges::deny_v4(inner),
                None => ranges::deny_v6(v6),
            },
        };
        match hit {
            None => Ok(()),
            Some((range, class)) => Err(Denied::Address { ip, range, class }),
        }
    }

    /// Scheme and literal-address check of a URL, before any connection. Host names pass
    /// here; their addresses are checked when they are resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Denied> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => {
                return Err(Denied::Scheme {
                    scheme: other.to_owned(),
                });
            }
        }
        match url.host() {
            None => Err(Denied::NoHost),
            Some(Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
