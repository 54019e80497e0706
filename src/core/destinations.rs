//! Where the operator may send the requests a tenant's object names (a
//! verification step's Prometheus; later, notification webhooks): the
//! operator-level allow-list of `--allow-destination` entries, read, and the
//! decision on one destination after its host name was resolved.
//!
//! The decision is made on the addresses the controller resolved, and the
//! controller connects only to the address it returns (pinned, no second
//! resolution, no redirects), so a name cannot resolve once to an allowed
//! address and then to another one.
//!
//! Addresses of special ranges are admitted only by an entry that names
//! them: the host name the URL uses, the address itself, or a CIDR within
//! the range. A broad entry such as `0.0.0.0/0` admits public addresses
//! only. Link-local addresses (with the cloud metadata endpoints
//! 169.254.169.254 and fd00:ec2::254) are admitted by an address or CIDR
//! entry within their range and never through a host name; unspecified,
//! multicast and broadcast addresses never are. IPv4 addresses written as
//! IPv6 (`::ffff:a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are judged as the IPv4
//! address they reach.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;
use url::{Host, Url};

/// What an operator admin changes to admit a destination.
pub const FLAG: &str = "--allow-destination (chart value verification.allowedDestinations)";

/// One allow-list entry: `HOST`, `HOST:PORT`, an address, `ADDRESS:PORT`
/// (`[v6]:PORT`) or a CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// A host name as URLs write it (lowercase, no trailing dot), on any
    /// port or on one.
    Host { name: String, port: Option<u16> },
    /// An address (a /32 or /128) or a network, on any port or on one.
    Network { net: IpNet, port: Option<u16> },
}

/// Why an allow-list entry cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "allow-list entry {entry:?}: {problem}; write HOST, HOST:PORT, an IP address, ADDRESS:PORT or a CIDR"
)]
pub struct EntryError {
    entry: String,
    problem: &'static str,
}

impl FromStr for Allowed {
    type Err = EntryError;

    fn from_str(entry: &str) -> Result<Self, EntryError> {
        let problem = |problem| EntryError {
            entry: entry.to_owned(),
            problem,
        };
        if entry.contains('/') {
            let net = entry
                .parse::<IpNet>()
                .map_err(|_| problem("not a CIDR such as 10.0.0.0/8 or fd00::/8"))?;
            return Ok(Allowed::Network {
                net: net.trunc(),
                port: None,
            });
        }
        if let Ok(ip) = entry.parse::<IpAddr>() {
            return Ok(Allowed::Network {
                net: IpNet::from(ip),
                port: None,
            });
        }
        if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
            return Ok(Allowed::Network {
                net: IpNet::from(socket.ip()),
                port: Some(socket.port()),
            });
        }
        let (host, port) = match entry.rsplit_once(':') {
            Some((host, port)) => (
                host,
                Some(
                    port.parse::<u16>()
                        .map_err(|_| problem("the port is not a number up to 65535"))?,
                ),
            ),
            None => (entry, None),
        };
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        let valid = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !valid {
            return Err(problem("not a host name"));
        }
        Ok(Allowed::Host { name, port })
    }
}

impl fmt::Display for Allowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Allowed::Host { name, port: None } => write!(f, "{name}"),
            Allowed::Host {
                name,
                port: Some(port),
            } => write!(f, "{name}:{port}"),
            Allowed::Network { net, port: None } => write!(f, "{net}"),
            Allowed::Network {
                net,
                port: Some(port),
            } => write!(f, "{net} port {port}"),
        }
    }
}

/// The operator's allow-list: the configured entries and the host of the
/// operator's own `--prometheus-address`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Allowed>,
}

impl AllowList {
    /// `entries`, and the host of `configured` (the operator-wide Prometheus
    /// address) when it is a URL with a host: an admin who configured it
    /// meant the operator to reach it.
    pub fn new(entries: Vec<Allowed>, configured: Option<&str>) -> Self {
        let mut entries = entries;
        if let Some(Ok(destination)) = configured.map(Destination::parse) {
            entries.push(match destination.host {
                Host::Domain(name) => Allowed::Host { name, port: None },
                Host::Ipv4(ip) => Allowed::Network {
                    net: IpNet::from(IpAddr::V4(ip)),
                    port: None,
                },
                Host::Ipv6(ip) => Allowed::Network {
                    net: IpNet::from(IpAddr::V6(ip)),
                    port: None,
                },
            });
        }
        AllowList { entries }
    }

    /// The address to connect to for `destination`, whose host resolved to
    /// `resolved` (the host itself when it is an address): the first one,
    /// when every one is admitted. A name that resolves to one refused
    /// address among admitted ones is refused: which one a client would
    /// pick is not the operator's to guess.
    pub fn admit(&self, destination: &Destination, resolved: &[IpAddr]) -> Result<IpAddr, Refusal> {
        let first = *resolved.first().ok_or_else(|| Refusal::NoAddress {
            target: destination.target(),
        })?;
        for &ip in resolved {
            let range = Range::of(ip);
            if let Some(range) = range.filter(|range| range.kind.never_admitted()) {
                return Err(Refusal::Unroutable {
                    target: destination.target(),
                    ip,
                    range: range.kind,
                });
            }
            if !self
                .entries
                .iter()
                .any(|entry| admits(entry, destination, ip, range))
            {
                return Err(Refusal::NotAllowed {
                    target: destination.target(),
                    ip,
                    range: range.map(|range| range.kind),
                });
            }
        }
        Ok(first)
    }
}

/// Whether `entry` admits connecting to `ip` (of `range`) for `destination`.
fn admits(entry: &Allowed, destination: &Destination, ip: IpAddr, range: Option<Range>) -> bool {
    let port_matches = |port: &Option<u16>| port.is_none_or(|port| port == destination.port);
    match entry {
        Allowed::Host { name, port } => {
            port_matches(port)
                && matches!(&destination.host, Host::Domain(host) if host == name)
                && range.is_none_or(|range| {
                    range.kind != RangeKind::LinkLocal && range.kind != RangeKind::Metadata
                })
        }
        Allowed::Network { net, port } => {
            port_matches(port)
                && net.contains(&canonical(ip))
                && range.is_none_or(|range| range.net.contains(net))
        }
    }
}

/// A URL the operator is asked to send a request to: its host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The host: a name to resolve, or an address.
    pub host: Host<String>,
    /// The port, explicit or the scheme's.
    pub port: u16,
}

impl Destination {
    /// `address`, an http or https URL with a host.
    pub fn parse(address: &str) -> Result<Self, Refusal> {
        let not_a_url = || Refusal::NotAUrl {
            address: address.to_owned(),
        };
        let url = Url::parse(address).map_err(|_| not_a_url())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(not_a_url());
        }
        let host = match url.host().ok_or_else(not_a_url)? {
            Host::Domain(name) => Host::Domain(name.trim_end_matches('.').to_ascii_lowercase()),
            Host::Ipv4(ip) => Host::Ipv4(ip),
            Host::Ipv6(ip) => Host::Ipv6(ip),
        };
        let port = url.port_or_known_default().ok_or_else(not_a_url)?;
        Ok(Destination { host, port })
    }

    /// `host:port` (`[v6]:port`), as messages name a destination.
    pub fn target(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// The address of the host when it is one (nothing to resolve).
    pub fn ip(&self) -> Option<IpAddr> {
        match self.host {
            Host::Domain(_) => None,
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        }
    }
}

/// Why the operator does not send a request to a destination. Each names
/// the host and port and, once resolved, the IP address judged; kept short
/// enough for a status message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{address:?} is not an http or https URL with a host")]
    NotAUrl { address: String },

    #[error("{target} resolves to no address")]
    NoAddress { target: String },

    #[error("{target} resolves to {ip}, a {range} address the operator never connects to")]
    Unroutable {
        target: String,
        ip: IpAddr,
        range: RangeKind,
    },

    #[error(
        "{target} resolves to {ip}, not in the operator's allow-list{}; add it with {FLAG}",
        range.map(|range| format!(" ({range} address: list it by {})", range.listed_by())).unwrap_or_default()
    )]
    NotAllowed {
        target: String,
        ip: IpAddr,
        range: Option<RangeKind>,
    },
}

/// The ranges of addresses that are not the public internet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeKind {
    /// 0.0.0.0/8, ::: connecting to them reaches the host itself.
    Unspecified,
    Multicast,
    Broadcast,
    /// The cloud metadata endpoint on IPv6 (AWS: fd00:ec2::254).
    Metadata,
    /// 169.254.0.0/16 (with the metadata endpoint 169.254.169.254), fe80::/10.
    LinkLocal,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, shared address space 100.64.0.0/10, unique local fc00::/7.
    Private,
}

impl RangeKind {
    fn never_admitted(self) -> bool {
        matches!(
            self,
            RangeKind::Unspecified | RangeKind::Multicast | RangeKind::Broadcast
        )
    }

    /// The entries that admit an address of the range.
    fn listed_by(self) -> &'static str {
        match self {
            RangeKind::Metadata | RangeKind::LinkLocal => "address or CIDR",
            _ => "name, address or CIDR",
        }
    }
}

impl fmt::Display for RangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RangeKind::Unspecified => "unspecified",
            RangeKind::Multicast => "multicast",
            RangeKind::Broadcast => "broadcast",
            RangeKind::Metadata => "cloud metadata",
            RangeKind::LinkLocal => "link-local",
            RangeKind::Loopback => "loopback",
            RangeKind::Private => "private",
        })
    }
}

/// A special range an address is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    kind: RangeKind,
    net: IpNet,
}

/// The special ranges, most specific first (the metadata address lies within fc00::/7).
const RANGES: [(RangeKind, &str); 15] = [
    (RangeKind::Unspecified, "0.0.0.0/8"),
    (RangeKind::Unspecified, "::/128"),
    (RangeKind::Broadcast, "255.255.255.255/32"),
    (RangeKind::Multicast, "224.0.0.0/4"),
    (RangeKind::Multicast, "ff00::/8"),
    (RangeKind::Metadata, "fd00:ec2::254/128"),
    (RangeKind::LinkLocal, "169.254.0.0/16"),
    (RangeKind::LinkLocal, "fe80::/10"),
    (RangeKind::Loopback, "127.0.0.0/8"),
    (RangeKind::Loopback, "::1/128"),
    (RangeKind::Private, "10.0.0.0/8"),
    (RangeKind::Private, "172.16.0.0/12"),
    (RangeKind::Private, "192.168.0.0/16"),
    (RangeKind::Private, "100.64.0.0/10"),
    (RangeKind::Private, "fc00::/7"),
];

impl Range {
    /// The special range of `ip`, judged as the IPv4 address it reaches.
    fn of(ip: IpAddr) -> Option<Range> {
        let ip = canonical(ip);
        RANGES.iter().find_map(|(kind, net)| {
            let net = net.parse::<IpNet>().ok()?;
            net.contains(&ip).then_some(Range { kind: *kind, net })
        })
    }
}

/// `ip`, or the IPv4 address an IPv6 one reaches (IPv4-mapped, NAT64).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().or_else(|| nat64(v6)).map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// The IPv4 address in a NAT64 well-known prefix address (64:ff9b::/96).
fn nat64(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [a, b, c, d, e, f, g, h] = ip.segments();
    (a == 0x64 && b == 0xff9b && [c, d, e, f] == [0, 0, 0, 0])
        .then(|| Ipv4Addr::from((u32::from(g) << 16) | u32::from(h)))
}

#[cfg(test)]
mod tests;
