//! The deny tables: IANA special-purpose ranges and the addresses that embed an IPv4 address.
//!
//! Tables are ordered most specific first: the first match names the class, so the metadata
//! address reports `cloud_metadata`, not the `link_local` range around it.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// Why a range is denied; the label of the `switchyard_http_ssrf_denied_total` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RangeClass {
    /// 127/8, ::1.
    Loopback,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    /// 169.254/16, fe80::/10 (and the deprecated site-local fec0::/10).
    LinkLocal,
    /// Carrier-grade NAT, 100.64/10.
    SharedAddressSpace,
    /// Instance metadata services (AWS, GCP, Azure, Alibaba answer on these).
    CloudMetadata,
    /// IPv6 unique-local, fc00::/7.
    UniqueLocal,
    /// 0.0.0.0 and :: (Linux connects them to the local host).
    Unspecified,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18/15, 2001:2::/48.
    Benchmarking,
    /// Everything else that is not globally routable: 0/8, 192.0.0/24, 240/4, Teredo, IPv6
    /// outside 2000::/3, …
    Reserved,
}

impl RangeClass {
    /// Stable snake_case name, used in metrics and error text.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link_local",
            Self::SharedAddressSpace => "shared_address_space",
            Self::CloudMetadata => "cloud_metadata",
            Self::UniqueLocal => "unique_local",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for RangeClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

use RangeClass as C;

/// Denied IPv4 ranges, most specific first.
pub(crate) const DENY_V4: &[(Ipv4Net, RangeClass)] = &[
    (v4(0, 0, 0, 0, 32), C::Unspecified),
    (v4(255, 255, 255, 255, 32), C::Broadcast),
    (v4(169, 254, 169, 254, 32), C::CloudMetadata),
    // Azure's WireServer: a public address that only means something inside Azure, where it
    // hands out VM configuration.
    (v4(168, 63, 129, 16, 32), C::CloudMetadata),
    (v4(0, 0, 0, 0, 8), C::Reserved),
    (v4(10, 0, 0, 0, 8), C::Private),
    (v4(100, 64, 0, 0, 10), C::SharedAddressSpace),
    (v4(127, 0, 0, 0, 8), C::Loopback),
    (v4(169, 254, 0, 0, 16), C::LinkLocal),
    (v4(172, 16, 0, 0, 12), C::Private),
    (v4(192, 0, 0, 0, 24), C::Reserved),
    (v4(192, 0, 2, 0, 24), C::Documentation),
    (v4(192, 88, 99, 0, 24), C::Reserved),
    (v4(192, 168, 0, 0, 16), C::Private),
    (v4(198, 18, 0, 0, 15), C::Benchmarking),
    (v4(198, 51, 100, 0, 24), C::Documentation),
    (v4(203, 0, 113, 0, 24), C::Documentation),
    (v4(224, 0, 0, 0, 4), C::Multicast),
    (v4(240, 0, 0, 0, 4), C::Reserved),
];

/// Denied IPv6 ranges, most specific first. Ranges that embed an IPv4 address are not here:
/// [`embedded_v4`] unwraps them and the IPv4 table decides.
pub(crate) const DENY_V6: &[(Ipv6Net, RangeClass)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), C::Unspecified),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), C::Loopback),
    (
        v6([0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254], 128),
        C::CloudMetadata,
    ),
    // Discard-only (RFC 6666).
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), C::Reserved),
    // Local-use NAT64 (RFC 8215): the IPv4 side is whatever the operator's translator says.
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), C::Reserved),
    (v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48), C::Benchmarking),
    // Teredo tunnels through an arbitrary IPv4 relay: nothing an endpoint needs.
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), C::Reserved),
    // IETF protocol assignments (ORCHID, AMT, …).
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), C::Reserved),
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), C::Documentation),
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), C::Documentation),
    // SRv6 segment identifiers (RFC 9602).
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16), C::Reserved),
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), C::UniqueLocal),
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), C::LinkLocal),
    // Deprecated site-local: still routed inside some networks.
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), C::LinkLocal),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), C::Multicast),
];

/// The only IPv6 block IANA allocates as global unicast; anything outside it that no table
/// entry names is denied as reserved.
const GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);

pub(crate) fn deny_v4(ip: Ipv4Addr) -> Option<(IpNet, RangeClass)> {
    DENY_V4
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(net, class)| (IpNet::V4(*net), *class))
}

pub(crate) fn deny_v6(ip: Ipv6Addr) -> Option<(IpNet, RangeClass)> {
    if let Some((net, class)) = DENY_V6.iter().find(|(net, _)| net.contains(&ip)) {
        return Some((IpNet::V6(*net), *class));
    }
    if GLOBAL_UNICAST.contains(&ip) {
        return None;
    }
    // Report the IANA-sized block (/3) around it rather than an unhelpful ::/0.
    let block = Ipv6Net::new(ip, 3)
        .map(|n| n.trunc())
        .unwrap_or(GLOBAL_UNICAST);
    Some((IpNet::V6(block), C::Reserved))
}

/// The IPv4 address an IPv6 address really leads to, when it embeds one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-translated (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`,
/// deprecated), NAT64 well-known prefix (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::/48`).
/// `::` and `::1` are not treated as compatible addresses: they have their own meaning.
pub(crate) fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        [0, 0, 0, 0, 0, 0, 0, 0] | [0, 0, 0, 0, 0, 0, 0, 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}
