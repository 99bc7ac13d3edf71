//! Who is calling: the client's IP address, as far as the server can tell.
//!
//! Behind a reverse proxy the socket peer is the proxy, and the client's address only
//! arrives in `X-Forwarded-For` or `Forwarded` headers, which anyone can send. So the
//! headers are believed only from [`TrustedProxies`], and only as far back as the
//! chain of trusted hops reaches: the rightmost address a trusted proxy vouches for
//! and that is not itself a trusted proxy is the client.

use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

/// The de facto standard header, one address (maybe with a port) per hop.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// How many entries, counted from the right, the walk looks at: no honest deployment
/// has this many proxies, and it bounds the work an attacker's header can cause.
const MAX_HOPS: usize = 64;

/// An IP network: an address and a prefix length, with the host bits cleared.
///
/// IPv4-mapped IPv6 networks (`::ffff:10.0.0.0/104`) are stored as IPv4 (`10.0.0.0/8`),
/// and [`contains`](Cidr::contains) maps addresses the same way, so a dual-stack socket
/// reporting `::ffff:10.1.2.3` matches `10.0.0.0/8`. An IPv6 network shorter than /96
/// never contains an IPv4 address: `::/0` means every IPv6 address, not every address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address, host bits cleared.
    addr: IpAddr,
    /// The prefix length: at most 32 for IPv4, 128 for IPv6.
    len: u8,
}

impl Cidr {
    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask_v4(self.len) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask_v6(self.len) == u128::from(net)
            }
            _ => false,
        }
    }
}

/// The netmask of an IPv4 prefix length (at most 32).
fn mask_v4(len: u8) -> u32 {
    // A shift by the full width is not defined; it means "no network bits".
    u32::MAX
        .checked_shl(32_u32.saturating_sub(len.into()))
        .unwrap_or(0)
}

/// The netmask of an IPv6 prefix length (at most 128).
fn mask_v6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128_u32.saturating_sub(len.into()))
        .unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = String;

    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a /32 or /128).
    /// Host bits may be set (`10.1.2.3/8`) and are cleared.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let not_cidr = || format!("not an IP address or CIDR: '{s}'");
        let (addr, len) = match s.split_once('/') {
            Some((addr, len)) => {
                // Digits only: `u8::from_str` would also take `+8`.
                if len.is_empty() || len.len() > 3 || !len.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(not_cidr());
                }
                let addr: IpAddr = addr.parse().map_err(|_| not_cidr())?;
                let len: u8 = len.parse().map_err(|_| not_cidr())?;
                (addr, Some(len))
            }
            None => (s.parse::<IpAddr>().map_err(|_| not_cidr())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = len.unwrap_or(max);
        if len > max {
            return Err(format!("prefix length out of range (at most {max}): '{s}'"));
        }
        // The mapped range is ::ffff:0:0/96, so only a prefix covering those 96 bits
        // is an IPv4 network in disguise.
        let (addr, len) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if len >= 96 => (IpAddr::V4(v4), len.saturating_sub(96)),
                _ => (addr, len),
            },
            IpAddr::V4(_) => (addr, len),
        };
        let addr = match addr {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & mask_v4(len)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & mask_v6(len)).into()),
        };
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// The reverse proxies whose forwarding headers are believed; empty (the default)
/// means none, so the client is always the socket peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and networks
    /// (`10.0.0.0/8, 2001:db8::/32, 192.0.2.7`); blank items are skipped, so an
    /// empty string trusts no one. The error names the item that is wrong.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::parse::<Cidr>)
            .collect::<Result<Vec<_>, _>>()
            .map(TrustedProxies)
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }

    /// The client's address, given the socket `peer` and the request headers.
    ///
    /// Headers from an untrusted peer are ignored: the client wrote them. Otherwise
    /// the chain is every `X-Forwarded-For` line in order, split on commas, or, only
    /// when there is none, the `for=` values of every `Forwarded` line (RFC 7239).
    /// Walking it from the right, with `peer` as the last trusted hop, trusted
    /// addresses are skipped and the first untrusted one is the client. An entry
    /// that is not an address (`unknown`, an obfuscated `_id`, garbage, non-UTF-8)
    /// ends the walk at the last trusted hop, as do the entries beyond the
    /// rightmost 64; if every entry is trusted, the leftmost one is the answer.
    /// IPv4-mapped IPv6 addresses are returned as IPv4.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        // Proxies append on the right, so the rightmost entries are the ones a
        // trusted hop wrote, and the walk goes right to left across header lines.
        if headers.contains_key(X_FORWARDED_FOR) {
            let entries = headers
                .get_all(X_FORWARDED_FOR)
                .iter()
                .rev()
                .flat_map(|value| value.as_bytes().split(|b| *b == b',').rev())
                .map(|entry| std::str::from_utf8(entry).ok());
            self.walk(peer, entries)
        } else {
            // Commas inside quoted strings are not honoured: no valid `for` value has
            // one, and a quote a client left open must not swallow the elements the
            // proxies appended after it.
            let entries = headers
                .get_all(header::FORWARDED)
                .iter()
                .rev()
                .flat_map(|value| value.as_bytes().split(|b| *b == b',').rev())
                .map(|element| std::str::from_utf8(element).ok().and_then(forwarded_for));
            self.walk(peer, entries)
        }
    }

    /// Walks the chain right to left from `peer` (trusted); `None` is an entry that
    /// is not an address, an empty entry is an empty list element and is skipped.
    fn walk<'a>(&self, peer: IpAddr, entries: impl Iterator<Item = Option<&'a str>>) -> IpAddr {
        let mut last_trusted = peer;
        for entry in entries.take(MAX_HOPS) {
            let Some(entry) = entry.map(str::trim) else {
                return last_trusted;
            };
            // HTTP lists may have empty elements (`a, , b`); they name no hop.
            if entry.is_empty() {
                continue;
            }
            let Some(ip) = parse_node(entry) else {
                return last_trusted;
            };
            if !self.contains(ip) {
                return ip;
            }
            last_trusted = ip;
        }
        last_trusted
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// The same as [`TrustedProxies::parse`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cidrs = self.0.iter();
        let Some(first) = cidrs.next() else {
            return f.write_str("none");
        };
        write!(f, "{first}")?;
        cidrs.try_for_each(|cidr| write!(f, ", {cidr}"))
    }
}

/// The `for` value of one `Forwarded` element (`for=192.0.2.1;proto=https`),
/// unquoted; `Some("")` for an empty element (skipped), `None` when the element
/// names no `for` (the hop is unknown).
fn forwarded_for(element: &str) -> Option<&str> {
    if element.trim().is_empty() {
        return Some("");
    }
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("for")
            .then_some(value.trim())
    })?;
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    // `for=""` names no hop either, and must not be skipped as an empty element.
    (!value.trim().is_empty()).then_some(value)
}

/// An address as proxies write it: `192.0.2.1`, `2001:db8::1`, `192.0.2.1:4711`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`; IPv4-mapped IPv6 comes back as IPv4.
fn parse_node(node: &str) -> Option<IpAddr> {
    let ip = node
        .parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| {
            let inner = node.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

/// The client's IP address, or `None` when unknown (a router called in process,
/// without a socket).
///
/// A `ClientIp` already in the request extensions wins: middleware that resolved the
/// address through [`TrustedProxies::client_ip`] inserts it there. Otherwise it is the
/// socket peer, when the server was started with connect info
/// (`into_make_service_with_connect_info`). IPv4-mapped IPv6 peers come back as IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(resolved) = parts.extensions.get::<ClientIp>() {
            return Ok(*resolved);
        }
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip().to_canonical()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn trusted(list: &str) -> TrustedProxies {
        TrustedProxies::parse(list).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    const PROXY: &str = "10.0.0.1";

    // --- Cidr ---

    #[test]
    fn an_ipv4_network_contains_its_addresses_only() {
        let net = cidr("10.0.0.0/8");
        assert!(net.contains(ip("10.0.0.0")));
        assert!(net.contains(ip("10.255.255.255")));
        assert!(!net.contains(ip("11.0.0.0")));
        assert!(!net.contains(ip("9.255.255.255")));
        assert!(!net.contains(ip("::a00:1")));
    }

    #[test]
    fn an_ipv6_network_contains_its_addresses_only() {
        let net = cidr("2001:db8::/32");
        assert!(net.contains(ip("2001:db8::1")));
        assert!(net.contains(ip("2001:db8:ffff::1")));
        assert!(!net.contains(ip("2001:db9::1")));
        assert!(!net.contains(ip("10.0.0.1")));
    }

    #[test]
    fn a_bare_address_is_a_single_host_network() {
        assert_eq!(cidr("192.0.2.7"), cidr("192.0.2.7/32"));
        assert_eq!(cidr("2001:db8::7"), cidr("2001:db8::7/128"));
        assert!(cidr("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!cidr("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(cidr("2001:db8::7").contains(ip("2001:db8::7")));
        assert!(!cidr("2001:db8::7").contains(ip("2001:db8::8")));
    }

    #[test]
    fn zero_length_prefixes_cover_their_whole_family() {
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert!(!cidr("::/0").contains(ip("203.0.113.9")));
    }

    #[test]
    fn host_bits_are_cleared() {
        assert_eq!(cidr("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert_eq!(cidr("2001:db8::1/32").to_string(), "2001:db8::/32");
        assert_eq!(cidr("10.1.2.3/8"), cidr("10.0.0.0/8"));
    }

    #[test]
    fn mapped_ipv6_networks_and_addresses_are_ipv4() {
        assert_eq!(cidr("::ffff:10.0.0.0/104"), cidr("10.0.0.0/8"));
        assert_eq!(cidr("::ffff:1.2.3.4"), cidr("1.2.3.4/32"));
        assert!(cidr("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
        assert!(cidr("::ffff:10.0.0.0/104").contains(ip("10.1.2.3")));
        assert_eq!(cidr("::ffff:0.0.0.0/96").to_string(), "0.0.0.0/0");
    }

    #[test]
    fn bad_networks_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "2001:db8::/129",
            "abc",
            "1.2.3.4/",
            "/8",
            "1.2.3.4/+8",
            "1.2.3.4/-1",
            "1.2.3.4/8/8",
            "1.2.3.4/0008",
            "",
            " 1.2.3.4",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn a_prefix_out_of_range_is_named_in_the_error() {
        let err = "10.0.0.0/33".parse::<Cidr>().unwrap_err();
        assert!(err.contains("'10.0.0.0/33'"), "{err}");
    }

    // --- TrustedProxies::parse and Display ---

    #[test]
    fn a_list_is_trimmed_and_blank_items_are_skipped() {
        let list = trusted(" 10.0.0.0/8 ,, 2001:db8::/32 ,");
        assert_eq!(list, trusted("10.0.0.0/8,2001:db8::/32"));
        assert!(list.contains(ip("10.9.9.9")));
        assert!(list.contains(ip("2001:db8::9")));
        assert!(!list.contains(ip("192.0.2.1")));
    }

    #[test]
    fn an_empty_list_trusts_no_one() {
        for empty in ["", " ", ",", " , "] {
            let list = trusted(empty);
            assert!(list.is_empty());
            assert!(!list.contains(ip("10.0.0.1")));
        }
        assert_eq!(TrustedProxies::default().to_string(), "none");
    }

    #[test]
    fn a_bad_item_is_named_in_the_error() {
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8, x").unwrap_err(),
            "not an IP address or CIDR: 'x'"
        );
    }

    #[test]
    fn display_round_trips() {
        let list = trusted("10.1.2.3/8, ::ffff:192.0.2.0/120, 2001:db8::1, 192.0.2.7");
        let shown = list.to_string();
        assert_eq!(
            shown,
            "10.0.0.0/8, 192.0.2.0/24, 2001:db8::1/128, 192.0.2.7/32"
        );
        assert_eq!(TrustedProxies::parse(&shown).unwrap(), list);
        assert_eq!(shown.parse::<TrustedProxies>().unwrap(), list);
        for c in ["10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0", "::/0"] {
            assert_eq!(cidr(c).to_string(), c);
            assert_eq!(cidr(&cidr(c).to_string()), cidr(c));
        }
    }

    // --- client_ip ---

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_headers_say() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        let peer = ip("198.51.100.1");
        assert_eq!(trusted(PROXY).client_ip(peer, &h), peer);
        assert_eq!(TrustedProxies::default().client_ip(peer, &h), peer);
    }

    #[test]
    fn a_trusted_peer_without_headers_is_the_client() {
        assert_eq!(
            trusted(PROXY).client_ip(ip(PROXY), &HeaderMap::new()),
            ip(PROXY)
        );
    }

    #[test]
    fn a_trusted_peer_gives_the_rightmost_untrusted_entry() {
        let h = headers(&[("x-forwarded-for", "198.51.100.1, 203.0.113.9")]);
        assert_eq!(trusted(PROXY).client_ip(ip(PROXY), &h), ip("203.0.113.9"));
    }

    #[test]
    fn a_spoofed_leftmost_entry_is_not_used() {
        // The client sent `XFF: 1.1.1.1`; the one trusted proxy appended the real peer.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9")]);
        assert_eq!(trusted(PROXY).client_ip(ip(PROXY), &h), ip("203.0.113.9"));
    }

    #[test]
    fn two_trusted_hops_are_skipped() {
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2")]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn several_header_lines_form_one_chain_in_order() {
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1, 203.0.113.9"),
            ("x-forwarded-for", "10.0.0.3"),
            ("x-forwarded-for", "10.0.0.2"),
        ]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("203.0.113.9")
        );
        let h = headers(&[
            ("x-forwarded-for", "1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(trusted(PROXY).client_ip(ip(PROXY), &h), ip("203.0.113.9"));
    }

    #[test]
    fn ports_and_brackets_are_understood() {
        let list = trusted("10.0.0.0/8, fd00::/8");
        for (xff, client) in [
            ("203.0.113.9:5678", "203.0.113.9"),
            ("[2001:db8::9]:80", "2001:db8::9"),
            ("[2001:db8::9]", "2001:db8::9"),
            ("2001:db8::9", "2001:db8::9"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("203.0.113.9, [fd00::1]:443, 10.0.0.2:80", "203.0.113.9"),
        ] {
            let h = headers(&[("x-forwarded-for", xff)]);
            assert_eq!(list.client_ip(ip(PROXY), &h), ip(client), "{xff}");
        }
    }

    #[test]
    fn a_mapped_peer_is_trusted_and_returned_as_ipv4() {
        let list = trusted(PROXY);
        assert_eq!(
            list.client_ip(ip("::ffff:10.0.0.1"), &HeaderMap::new()),
            ip(PROXY)
        );
        assert_eq!(
            list.client_ip(ip("::ffff:198.51.100.1"), &HeaderMap::new()),
            ip("198.51.100.1")
        );
    }

    #[test]
    fn an_entry_that_is_not_an_address_stops_at_the_last_trusted_hop() {
        let list = trusted("10.0.0.0/8");
        for (xff, client) in [
            ("203.0.113.9, unknown", PROXY),
            ("203.0.113.9, garbage, 10.0.0.2", "10.0.0.2"),
            ("203.0.113.9, _hidden, 10.0.0.2, 10.0.0.3", "10.0.0.2"),
            ("203.0.113.9, 1.2.3.4:99999", PROXY),
            ("203.0.113.9, [::1", PROXY),
            ("203.0.113.9, 1.2.3.4.5", PROXY),
        ] {
            let h = headers(&[("x-forwarded-for", xff)]);
            assert_eq!(list.client_ip(ip(PROXY), &h), ip(client), "{xff}");
        }
    }

    #[test]
    fn a_non_utf8_entry_stops_at_the_last_trusted_hop() {
        let mut h = HeaderMap::new();
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"203.0.113.9, \xff\xfe, 10.0.0.2").unwrap(),
        );
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn empty_list_elements_are_skipped() {
        let h = headers(&[("x-forwarded-for", "203.0.113.9, , 10.0.0.2,")]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn when_every_entry_is_trusted_the_leftmost_is_the_client() {
        let h = headers(&[("x-forwarded-for", "10.0.0.5, 10.0.0.4, 10.0.0.3")]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn forwarded_is_read_with_quotes_brackets_ports_and_any_case() {
        let h = headers(&[(
            "forwarded",
            r#"for=1.1.1.1, For="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.2"#,
        )]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("2001:db8:cafe::17")
        );
        let h = headers(&[
            ("forwarded", "proto=https;FOR=203.0.113.9:80;by=10.0.0.1"),
            ("forwarded", "for=\"10.0.0.2\""),
        ]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn forwarded_unknown_or_obfuscated_or_missing_for_stops_the_walk() {
        let list = trusted("10.0.0.0/8");
        for value in [
            "for=203.0.113.9, for=unknown",
            "for=203.0.113.9, for=_hidden",
            "for=203.0.113.9, proto=https",
            "for=203.0.113.9, for=\"\"",
            "for=203.0.113.9, for=\"",
        ] {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(list.client_ip(ip(PROXY), &h), ip(PROXY), "{value}");
        }
    }

    #[test]
    fn forwarded_is_used_only_when_x_forwarded_for_is_absent() {
        let h = headers(&[
            ("forwarded", "for=198.51.100.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(trusted(PROXY).client_ip(ip(PROXY), &h), ip("203.0.113.9"));
        let h = headers(&[("forwarded", "for=198.51.100.1")]);
        assert_eq!(trusted(PROXY).client_ip(ip(PROXY), &h), ip("198.51.100.1"));
    }

    #[test]
    fn an_unclosed_quote_does_not_hide_the_entries_after_it() {
        let h = headers(&[("forwarded", "for=\"1.1.1.1, for=203.0.113.9")]);
        assert_eq!(trusted(PROXY).client_ip(ip(PROXY), &h), ip("203.0.113.9"));
    }

    #[test]
    fn entries_beyond_the_rightmost_64_are_ignored() {
        let mut chain = vec!["203.0.113.9"];
        chain.extend(std::iter::repeat_n("10.0.0.2", MAX_HOPS));
        let value = chain.join(",");
        let h = headers(&[("x-forwarded-for", value.as_str())]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("10.0.0.2")
        );
        chain.pop();
        let value = chain.join(",");
        let h = headers(&[("x-forwarded-for", value.as_str())]);
        assert_eq!(
            trusted("10.0.0.0/8").client_ip(ip(PROXY), &h),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn a_very_long_header_does_not_panic() {
        let list = trusted("10.0.0.0/8, ::/0");
        let junk = [
            ",".repeat(100_000),
            "10.0.0.2,".repeat(20_000),
            "[".repeat(100_000),
            "\"".repeat(100_000),
            "for=;".repeat(20_000),
            "9".repeat(100_000),
            ":".repeat(100_000),
        ];
        for value in junk.iter().map(String::as_str) {
            let h = headers(&[("x-forwarded-for", value), ("forwarded", value)]);
            let _ = list.client_ip(ip(PROXY), &h);
            let h = headers(&[("forwarded", value)]);
            let _ = list.client_ip(ip(PROXY), &h);
            let _ = TrustedProxies::parse(value);
            let _ = value.parse::<Cidr>();
        }
    }

    // --- ClientIp ---

    async fn extract(request: Request<()>) -> ClientIp {
        let (mut parts, ()) = request.into_parts();
        ClientIp::from_request_parts(&mut parts, &()).await.unwrap()
    }

    #[tokio::test]
    async fn a_resolved_client_ip_in_the_extensions_wins_over_the_peer() {
        let request = Request::builder()
            .extension(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 443))))
            .extension(ClientIp(Some(ip("203.0.113.9"))))
            .body(())
            .unwrap();
        assert_eq!(extract(request).await, ClientIp(Some(ip("203.0.113.9"))));
    }

    #[tokio::test]
    async fn without_a_resolved_ip_the_peer_is_the_client_as_ipv4_when_mapped() {
        let peer: SocketAddr = "[::ffff:198.51.100.1]:443".parse().unwrap();
        let request = Request::builder()
            .extension(ConnectInfo(peer))
            .body(())
            .unwrap();
        assert_eq!(extract(request).await, ClientIp(Some(ip("198.51.100.1"))));
        let request = Request::builder().body(()).unwrap();
        assert_eq!(extract(request).await, ClientIp(None));
    }
}
