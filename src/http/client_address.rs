//! The client address of a request: the socket peer, or the address a
//! trusted reverse proxy forwarded in `X-Forwarded-For`.
//!
//! Throttling, session records and logs all use the address computed here,
//! once per request, by [`record_client_address`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Networks whose connections may set the client address with
/// `X-Forwarded-For` (`CONFAB_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Returns whether `address` belongs to a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|network| network.contains(&address))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns whether one entry covers every IPv4 or every IPv6 address,
    /// which would let any client choose its own address.
    pub fn trusts_everyone(&self) -> bool {
        self.0.iter().any(|network| network.prefix_len() == 0)
    }
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// Parses comma-separated IP addresses and CIDR networks; a bare address
    /// stands for itself alone.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let mut networks = Vec::new();
        for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let network = match entry.parse::<IpNet>() {
                Ok(network) => network.trunc(),
                Err(_) => entry.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                    format!("invalid entry {entry:?}; write an IP address such as 10.0.0.1 or a network such as 10.0.0.0/8")
                })?,
            };
            networks.push(network);
        }
        Ok(Self(networks))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        formatter.write_str(&entries.join(","))
    }
}

/// Returns the client address of a connection from `peer` that carried
/// these `X-Forwarded-For` headers.
///
/// The header is read only when `peer` is a trusted proxy. Its entries are
/// walked from the right, where the nearest proxy appended the address it
/// saw, and the first address that is not a trusted proxy is the client.
/// Entries further left were written by the client and are never used. A
/// malformed entry ends the walk at the last proxy that could be checked,
/// because the hops behind it cannot be trusted either.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    // Several header lines form one list, in order (RFC 9110, section 5.3).
    let values: Vec<&[u8]> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .map(|value| value.as_bytes())
        .collect();
    for value in values.iter().rev() {
        let Ok(text) = std::str::from_utf8(value) else {
            return client;
        };
        for entry in text.rsplit(',') {
            let Some(address) = parse_forwarded_entry(entry) else {
                return client;
            };
            client = address;
            if !trusted.contains(address) {
                return client;
            }
        }
    }
    client
}

/// Parses one `X-Forwarded-For` entry: an IP address, optionally with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`), which some proxies append.
fn parse_forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let address = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|socket| socket.ip()))
        .ok()?;
    Some(address.to_canonical())
}

/// The client address of the current request, as computed by
/// [`record_client_address`]. `None` when the request did not come through
/// a socket, as in router tests without `ConnectInfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddress>()
            .copied()
            .unwrap_or(ClientAddress(None)))
    }
}

/// Middleware that computes the client address once, stores it in the
/// request extensions and records it on the request span as `client`.
pub async fn record_client_address(
    State(trusted): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    let address = peer.map(|peer| client_address(peer, request.headers(), &trusted));
    if let Some(address) = address {
        tracing::Span::current().record("client", tracing::field::display(address));
    }
    request.extensions_mut().insert(ClientAddress(address));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn proxies(list: &str) -> TrustedProxies {
        list.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client() {
        let headers = forwarded(&["198.51.100.9"]);
        let client = client_address(ip("203.0.113.7"), &headers, &proxies("10.0.0.0/8"));
        assert_eq!(client, ip("203.0.113.7"));
    }

    #[test]
    fn no_trusted_proxies_ignores_header() {
        let headers = forwarded(&["198.51.100.9"]);
        let client = client_address(ip("127.0.0.1"), &headers, &TrustedProxies::default());
        assert_eq!(client, ip("127.0.0.1"));
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        // The client forged the first entry; the proxy appended the real address.
        let headers = forwarded(&["1.1.1.1, 198.51.100.9, 10.0.0.2"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.0/8"));
        assert_eq!(client, ip("198.51.100.9"));
    }

    #[test]
    fn header_lines_are_one_list() {
        let headers = forwarded(&["1.1.1.1", "198.51.100.9"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.1"));
        assert_eq!(client, ip("198.51.100.9"));
    }

    #[test]
    fn malformed_entry_stops_at_last_proxy() {
        let headers = forwarded(&["198.51.100.9, unknown, 10.0.0.2"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.0/8"));
        assert_eq!(client, ip("10.0.0.2"));

        let headers = forwarded(&["garbage"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.0/8"));
        assert_eq!(client, ip("10.0.0.1"));
    }

    #[test]
    fn forged_entry_left_of_real_one_is_ignored() {
        let headers = forwarded(&["not an address, 198.51.100.9"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.1"));
        assert_eq!(client, ip("198.51.100.9"));
    }

    #[test]
    fn ports_and_ipv6_are_understood() {
        let headers = forwarded(&["[2001:db8::7]:4711"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.1"));
        assert_eq!(client, ip("2001:db8::7"));

        let headers = forwarded(&["198.51.100.9:4711"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.1"));
        assert_eq!(client, ip("198.51.100.9"));
    }

    #[test]
    fn ipv4_mapped_peer_matches_ipv4_network() {
        let headers = forwarded(&["198.51.100.9"]);
        let client = client_address(ip("::ffff:127.0.0.1"), &headers, &proxies("127.0.0.1"));
        assert_eq!(client, ip("198.51.100.9"));
    }

    #[test]
    fn all_trusted_entries_give_leftmost() {
        let headers = forwarded(&["10.0.0.3, 10.0.0.2"]);
        let client = client_address(ip("10.0.0.1"), &headers, &proxies("10.0.0.0/8"));
        assert_eq!(client, ip("10.0.0.3"));
    }

    #[test]
    fn missing_header_keeps_peer() {
        let client = client_address(ip("10.0.0.1"), &HeaderMap::new(), &proxies("10.0.0.0/8"));
        assert_eq!(client, ip("10.0.0.1"));
    }

    #[test]
    fn trusted_proxies_parse() {
        let parsed = proxies(" 127.0.0.1, 10.0.0.0/8 ,::1,");
        assert!(parsed.contains(ip("127.0.0.1")));
        assert!(parsed.contains(ip("10.200.0.1")));
        assert!(parsed.contains(ip("::1")));
        assert!(!parsed.contains(ip("127.0.0.2")));
        assert!(!parsed.trusts_everyone());
        assert!(proxies("0.0.0.0/0").trusts_everyone());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.internal".parse::<TrustedProxies>().is_err());
        assert!(proxies("").is_empty());
    }
}
