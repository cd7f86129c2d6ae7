use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::ranges::{DENY_V4, DENY_V6};
use super::*;

fn class_of(policy: &SsrfPolicy, ip: &str) -> Option<RangeClass> {
    let ip: IpAddr = ip
        .parse()
        .unwrap_or_else(|e| panic!("bad test address {ip}: {e}"));
    match policy.check_ip(ip) {
        Ok(()) => None,
        Err(Denied::Address { class, .. }) => Some(class),
        Err(other) => panic!("unexpected denial {other:?}"),
    }
}

fn assert_cases(policy: &SsrfPolicy, cases: &[(&str, Option<RangeClass>)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(ip, want)| {
            let got = class_of(policy, ip);
            (got != *want).then(|| format!("{ip}: want {want:?}, got {got:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

use RangeClass::*;

#[test]
fn ipv4_boundaries() {
    assert_cases(
        &SsrfPolicy::strict(),
        &[
            ("0.0.0.0", Some(Unspecified)),
            ("0.0.0.1", Some(Reserved)),
            ("0.255.255.255", Some(Reserved)),
            ("1.0.0.0", None),
            ("9.255.255.255", None),
            ("10.0.0.0", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("11.0.0.0", None),
            ("100.63.255.255", None),
            ("100.64.0.0", Some(SharedAddressSpace)),
            ("100.127.255.255", Some(SharedAddressSpace)),
            ("100.128.0.0", None),
            ("126.255.255.255", None),
            ("127.0.0.0", Some(Loopback)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.255", Some(Loopback)),
            ("128.0.0.0", None),
            ("168.63.129.15", None),
            ("168.63.129.16", Some(CloudMetadata)),
            ("168.63.129.17", None),
            ("169.253.255.255", None),
            ("169.254.0.0", Some(LinkLocal)),
            ("169.254.169.253", Some(LinkLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.169.255", Some(LinkLocal)),
            ("169.254.255.255", Some(LinkLocal)),
            ("169.255.0.0", None),
            ("172.15.255.255", None),
            ("172.16.0.0", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", None),
            ("191.255.255.255", None),
            ("192.0.0.0", Some(Reserved)),
            ("192.0.0.255", Some(Reserved)),
            ("192.0.1.0", None),
            ("192.0.1.255", None),
            ("192.0.2.0", Some(Documentation)),
            ("192.0.2.255", Some(Documentation)),
            ("192.0.3.0", None),
            ("192.88.98.255", None),
            ("192.88.99.0", Some(Reserved)),
            ("192.88.99.255", Some(Reserved)),
            ("192.88.100.0", None),
            ("192.167.255.255", None),
            ("192.168.0.0", Some(Private)),
            ("192.168.255.255", Some(Private)),
            ("192.169.0.0", None),
            ("198.17.255.255", None),
            ("198.18.0.0", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.20.0.0", None),
            ("198.51.99.255", None),
            ("198.51.100.0", Some(Documentation)),
            ("198.51.100.255", Some(Documentation)),
            ("198.51.101.0", None),
            ("203.0.112.255", None),
            ("203.0.113.0", Some(Documentation)),
            ("203.0.113.255", Some(Documentation)),
            ("203.0.114.0", None),
            ("223.255.255.255", None),
            ("224.0.0.0", Some(Multicast)),
            ("239.255.255.255", Some(Multicast)),
            ("240.0.0.0", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
        ],
    );
}

#[test]
fn ipv6_boundaries() {
    assert_cases(
        &SsrfPolicy::strict(),
        &[
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("100::", Some(Reserved)),
            ("100::ffff:ffff:ffff:ffff", Some(Reserved)),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("2000::", None),
            ("2001::", Some(Reserved)),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("2001:1::", Some(Reserved)),
            ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("2001:200::", None),
            ("2001:1:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("2001:2::", Some(Benchmarking)),
            ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Some(Benchmarking)),
            ("2001:2:1::", Some(Reserved)),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("2001:db8::", Some(Documentation)),
            (
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                Some(Documentation),
            ),
            ("2001:db9::", None),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("3fff::", Some(Documentation)),
            (
                "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
                Some(Documentation),
            ),
            ("3fff:1000::", None),
            ("3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
            ("4000::", Some(Reserved)),
            ("5f00::", Some(Reserved)),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("fc00::", Some(UniqueLocal)),
            ("fd00:ec2::253", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("fd00:ec2::255", Some(UniqueLocal)),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(UniqueLocal)),
            ("fe00::", Some(Reserved)),
            ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Reserved)),
            ("fe80::", Some(LinkLocal)),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(LinkLocal)),
            ("fec0::", Some(LinkLocal)),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(LinkLocal)),
            ("ff00::", Some(Multicast)),
            ("ff02::1", Some(Multicast)),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some(Multicast)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::200e", None),
        ],
    );
}

#[test]
fn embedded_ipv4_is_judged_as_ipv4() {
    assert_cases(
        &SsrfPolicy::strict(),
        &[
            // IPv4-mapped.
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.0.0.1", Some(Private)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            // IPv4-compatible (deprecated) and IPv4-translated.
            ("::127.0.0.1", Some(Loopback)),
            ("::2", Some(Reserved)),
            ("::192.168.1.1", Some(Private)),
            ("::8.8.8.8", None),
            ("::ffff:0:127.0.0.1", Some(Loopback)),
            // NAT64 well-known prefix, and the local-use one.
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::10.1.2.3", Some(Private)),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::8.8.8.8", Some(Reserved)),
            // 6to4.
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:a9fe:a9fe::1", Some(CloudMetadata)),
            ("2002:c0a8:101::", Some(Private)),
            ("2002:808:808::1", None),
        ],
    );
}

#[test]
fn first_and_last_address_of_every_table_range_is_denied() {
    let policy = SsrfPolicy::strict();
    for (net, _) in DENY_V4 {
        for ip in [net.network(), net.broadcast()] {
            assert!(policy.check_ip(IpAddr::V4(ip)).is_err(), "{ip} of {net}");
        }
    }
    for (net, _) in DENY_V6 {
        for ip in [net.network(), net.broadcast()] {
            assert!(policy.check_ip(IpAddr::V6(ip)).is_err(), "{ip} of {net}");
        }
    }
}

#[test]
fn denial_names_the_range_and_class() {
    let err = SsrfPolicy::strict()
        .check_ip(
            "::ffff:169.254.169.254"
                .parse()
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        )
        .err();
    let Some(Denied::Address { ip, range, class }) = err else {
        panic!("expected an address denial, got {err:?}");
    };
    assert_eq!(
        ip,
        IpAddr::V6(Ipv4Addr::new(169, 254, 169, 254).to_ipv6_mapped())
    );
    assert_eq!(range.to_string(), "169.254.169.254/32");
    assert_eq!(class, CloudMetadata);
    let err = Denied::Address { ip, range, class };
    assert_eq!(err.code(), "ssrf_denied");
    assert_eq!(err.class_label(), "cloud_metadata");
    assert_eq!(
        err.to_string(),
        "destination ::ffff:169.254.169.254 is in a denied range: 169.254.169.254/32 (cloud_metadata)"
    );
}

#[test]
fn allow_list_overrides_deny_ranges() {
    let policy = SsrfPolicy::strict().with_allow_cidrs([
        "127.0.0.1/32".parse().unwrap(),
        "10.20.0.0/16".parse().unwrap(),
        "fd12::/16".parse().unwrap(),
        "169.254.169.254/32"
            .parse()
            .unwrap_or_else(|_| unreachable!()),
    ]);
    assert_cases(
        &policy,
        &[
            ("127.0.0.1", None),
            ("127.0.0.2", Some(Loopback)),
            ("::ffff:127.0.0.1", None),
            ("::127.0.0.1", None),
            ("64:ff9b::127.0.0.1", None),
            ("::1", Some(Loopback)),
            ("10.20.255.255", None),
            ("10.21.0.0", Some(Private)),
            ("fd12::1", None),
            ("fd13::1", Some(UniqueLocal)),
            ("169.254.169.254", None),
            ("169.254.169.253", Some(LinkLocal)),
        ],
    );
    let v6_only = SsrfPolicy::strict().with_allow_cidrs(["::1/128".parse().unwrap()]);
    assert_eq!(v6_only.check_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)), Ok(()));
}

#[test]
fn parse_allow_list_accepts_cidrs_and_bare_addresses() {
    let nets = SsrfPolicy::parse_allow_list(" 127.0.0.1, 10.1.2.3/8\n::1 ,, fd00::/8 ").unwrap();
    let shown: Vec<String> = nets.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"]);
    assert_eq!(SsrfPolicy::parse_allow_list("").map(|v| v.len()), Ok(0));
    assert_eq!(
        SsrfPolicy::parse_allow_list("10.0.0.0/8, localhost"),
        Err(InvalidCidr {
            entry: "localhost".into()
        })
    );
    assert!(SsrfPolicy::parse_allow_list("10.0.0.0/33").is_err());
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn check_url_requires_https_unless_http_allowed() {
    let strict = SsrfPolicy::strict();
    assert_eq!(strict.check_url(&url("https://example.com/hook")), Ok(()));
    let err = strict.check_url(&url("http://example.com/hook?token=s3cret"));
    assert_eq!(
        err,
        Err(Denied::Scheme {
            scheme: "http".into()
        })
    );
    assert_eq!(err.err().map(|e| e.code()), Some("scheme_not_allowed"));
    for other in ["ftp://example.com/", "file:///etc/passwd", "gopher://x/"] {
        assert!(
            matches!(strict.check_url(&url(other)), Err(Denied::Scheme { .. })),
            "{other}"
        );
    }
    assert!(matches!(
        strict.check_url(&url("data:text/plain,hi")),
        Err(Denied::Scheme { .. })
    ));
    let lax = SsrfPolicy::strict().with_allow_http(true);
    assert_eq!(lax.check_url(&url("http://example.com/")), Ok(()));
    assert!(lax.check_url(&url("ws://example.com/")).is_err());
}

#[test]
fn check_url_checks_literal_hosts_in_every_spelling() {
    let strict = SsrfPolicy::strict();
    for literal in [
        "https://127.0.0.1/",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://0177.0.0.1/",
        "https://127.1/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://0.0.0.0:8080/",
    ] {
        let err = strict.check_url(&url(literal));
        assert!(
            matches!(err, Err(Denied::Address { .. })),
            "{literal}: {err:?}"
        );
    }
    // Names are the resolver's job: they pass here and are checked on resolved addresses.
    assert_eq!(strict.check_url(&url("https://localhost/")), Ok(()));
    assert_eq!(strict.check_url(&url("https://8.8.8.8/")), Ok(()));
}

#[test]
fn denials_never_carry_the_url() {
    let strict = SsrfPolicy::strict();
    for u in [
        "https://user:pa55@127.0.0.1/path/secret-path?token=s3cret",
        "http://user:pa55@example.com/secret-path?token=s3cret",
    ] {
        let shown = strict
            .check_url(&url(u))
            .err()
            .map(|e| format!("{e} {e:?}"))
            .unwrap_or_default();
        assert!(!shown.is_empty(), "{u} should be denied");
        for secret in ["s3cret", "pa55", "secret-path", "user"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
}
