use super::*;

fn list(entries: &[&str]) -> AllowList {
    AllowList::new(
        entries
            .iter()
            .map(|entry| entry.parse().expect("entry"))
            .collect(),
        None,
    )
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("address")
}

/// The decision for `address` resolving to `resolved` (its own address when empty).
fn decide(list: &AllowList, address: &str, resolved: &[&str]) -> Result<IpAddr, Refusal> {
    let destination = Destination::parse(address)?;
    let resolved: Vec<IpAddr> = if resolved.is_empty() {
        destination.ip().into_iter().collect()
    } else {
        resolved.iter().map(|text| ip(text)).collect()
    };
    list.admit(&destination, &resolved)
}

#[test]
fn entries_read_as_hosts_addresses_ports_and_networks() {
    let read = |entry: &str| entry.parse::<Allowed>().map(|allowed| allowed.to_string());
    assert_eq!(
        read("Prometheus.Monitoring.svc."),
        Ok("prometheus.monitoring.svc".into())
    );
    assert_eq!(read("prometheus:9090"), Ok("prometheus:9090".into()));
    assert_eq!(read("10.1.2.3"), Ok("10.1.2.3/32".into()));
    assert_eq!(read("10.1.2.3:9090"), Ok("10.1.2.3/32 port 9090".into()));
    assert_eq!(read("[fd00::1]:9090"), Ok("fd00::1/128 port 9090".into()));
    assert_eq!(read("fd00::1"), Ok("fd00::1/128".into()));
    // Host bits of a CIDR are dropped, as `ip route` does.
    assert_eq!(read("10.1.2.3/8"), Ok("10.0.0.0/8".into()));
    for bad in [
        "",
        "10.0.0.0/33",
        "host:99999",
        "host:",
        "a..b",
        "http://host",
        "under_score",
    ] {
        assert!(bad.parse::<Allowed>().is_err(), "{bad:?}");
    }
    assert_eq!(
        "10.0.0.0/33".parse::<Allowed>().map_err(|e| e.to_string()),
        Err("allow-list entry \"10.0.0.0/33\": not a CIDR such as 10.0.0.0/8 or fd00::/8; write HOST, HOST:PORT, an \
             IP address, ADDRESS:PORT or a CIDR"
            .into())
    );
}

#[test]
fn the_configured_prometheus_host_is_admitted_without_entries() {
    let configured = AllowList::new(Vec::new(), Some("http://prometheus.monitoring:9090/"));
    assert_eq!(
        decide(&configured, "http://prometheus.monitoring:9090", &["10.96.0.12"]),
        Ok(ip("10.96.0.12"))
    );
    assert_eq!(
        decide(&configured, "http://grafana.monitoring:3000", &["10.96.0.13"]),
        Err(Refusal::NotAllowed {
            target: "grafana.monitoring:3000".into(),
            ip: ip("10.96.0.13"),
            range: Some(RangeKind::Private),
        })
    );
    let none = AllowList::new(Vec::new(), None);
    assert!(decide(&none, "http://203.0.113.9", &[]).is_err());
    let by_address = AllowList::new(Vec::new(), Some("http://127.0.0.1:9090"));
    assert_eq!(
        decide(&by_address, "http://127.0.0.1:9091", &[]),
        Ok(ip("127.0.0.1"))
    );
}

#[test]
fn ports_are_the_urls_or_the_schemes() {
    let allowed = list(&["prometheus:9090", "metrics.example.com:443", "10.0.0.5:80"]);
    assert!(decide(&allowed, "http://prometheus:9090", &["10.0.0.7"]).is_ok());
    assert!(decide(&allowed, "http://prometheus:9091", &["10.0.0.7"]).is_err());
    assert!(decide(&allowed, "http://prometheus", &["10.0.0.7"]).is_err());
    assert!(decide(&allowed, "https://metrics.example.com/prom", &["198.51.100.4"]).is_ok());
    assert!(decide(&allowed, "http://metrics.example.com", &["198.51.100.4"]).is_err());
    assert!(decide(&allowed, "http://10.0.0.5", &[]).is_ok());
    assert!(decide(&allowed, "https://10.0.0.5", &[]).is_err());
}

#[test]
fn a_cidr_admits_its_bounds_and_nothing_past_them() {
    let allowed = list(&["203.0.113.0/24", "2001:db8::/126"]);
    for inside in ["203.0.113.0", "203.0.113.255", "2001:db8::", "2001:db8::3"] {
        let address = format!(
            "http://{}",
            if inside.contains(':') {
                format!("[{inside}]")
            } else {
                inside.into()
            }
        );
        assert_eq!(decide(&allowed, &address, &[]), Ok(ip(inside)), "{inside}");
    }
    for outside in ["203.0.112.255", "203.0.114.0", "2001:db8::4"] {
        let address = format!(
            "http://{}",
            if outside.contains(':') {
                format!("[{outside}]")
            } else {
                outside.into()
            }
        );
        assert!(decide(&allowed, &address, &[]).is_err(), "{outside}");
    }
}

#[test]
fn the_metadata_address_is_refused_even_when_every_network_is_listed() {
    let permissive = list(&["0.0.0.0/0", "::/0", "169.254.169.254.nip.io", "10.0.0.0/8"]);
    let refused = |address: &str, resolved: &[&str]| decide(&permissive, address, resolved).err();
    assert_eq!(
        refused("http://169.254.169.254/latest/meta-data/", &[]).map(|r| r.to_string()),
        Some(
            "169.254.169.254:80 resolves to 169.254.169.254, not in the operator's allow-list (link-local address: \
             list it by address or CIDR); add it with --allow-destination (chart value \
             verification.allowedDestinations)"
                .into()
        )
    );
    // Through a listed name that resolves to it, and written as IPv6.
    assert!(refused("http://169.254.169.254.nip.io/", &["169.254.169.254"]).is_some());
    assert!(refused("http://[::ffff:169.254.169.254]/", &[]).is_some());
    assert!(refused("http://[::ffff:a9fe:a9fe]/", &[]).is_some());
    assert!(refused("http://[64:ff9b::a9fe:a9fe]/", &[]).is_some());
    assert!(refused("http://[fd00:ec2::254]/", &[]).is_some());
    assert!(refused("http://[fe80::1]/", &[]).is_some());
    // A private network entry does not cover the IPv6 metadata address within fc00::/7.
    assert!(decide(&list(&["fc00::/7"]), "http://[fd00:ec2::254]/", &[]).is_err());
    assert!(decide(&list(&["fc00::/7"]), "http://[fd00:ec2::253]/", &[]).is_ok());
    // Only an entry naming it admits it.
    assert!(decide(&list(&["169.254.169.254"]), "http://169.254.169.254/", &[]).is_ok());
    assert!(decide(&list(&["169.254.0.0/16"]), "http://169.254.169.254/", &[]).is_ok());
    assert!(decide(&list(&["169.254.0.0/15"]), "http://169.254.169.254/", &[]).is_err());
}

#[test]
fn loopback_and_private_addresses_need_an_entry_naming_them() {
    let public = list(&["0.0.0.0/0", "::/0"]);
    assert_eq!(decide(&public, "https://203.0.113.9", &[]), Ok(ip("203.0.113.9")));
    assert_eq!(
        decide(&public, "http://localhost:9090", &["127.0.0.1", "::1"]),
        Err(Refusal::NotAllowed {
            target: "localhost:9090".into(),
            ip: ip("127.0.0.1"),
            range: Some(RangeKind::Loopback),
        })
    );
    for address in [
        "http://[::1]",
        "http://[::ffff:127.0.0.1]",
        "http://10.0.0.1",
        "http://192.168.1.1",
        "http://[fd12::1]",
    ] {
        assert!(decide(&public, address, &[]).is_err(), "{address}");
    }
    assert!(
        decide(
            &list(&["localhost"]),
            "http://localhost:9090",
            &["127.0.0.1", "::1"]
        )
        .is_ok()
    );
    assert!(decide(&list(&["127.0.0.0/8"]), "http://localhost:9090", &["127.0.0.1"]).is_ok());
    // Every address a name resolves to must be admitted.
    assert!(
        decide(
            &list(&["127.0.0.0/8"]),
            "http://localhost:9090",
            &["127.0.0.1", "::1"]
        )
        .is_err()
    );
}

#[test]
fn unspecified_multicast_and_broadcast_addresses_are_never_admitted() {
    let everything = list(&["0.0.0.0/0", "::/0", "0.0.0.0", "::", "anything"]);
    for (address, range) in [
        ("http://0.0.0.0:9090", RangeKind::Unspecified),
        ("http://[::]:9090", RangeKind::Unspecified),
        ("http://[::ffff:0.0.0.0]:9090", RangeKind::Unspecified),
        ("http://224.0.0.1", RangeKind::Multicast),
        ("http://255.255.255.255", RangeKind::Broadcast),
    ] {
        assert!(
            matches!(decide(&everything, address, &[]), Err(Refusal::Unroutable { range: r, .. }) if r == range),
            "{address}"
        );
    }
    assert!(matches!(
        decide(&everything, "http://anything", &["0.0.0.0"]),
        Err(Refusal::Unroutable { .. })
    ));
}

#[test]
fn only_http_urls_with_a_host_are_destinations() {
    let everything = list(&["0.0.0.0/0"]);
    for address in [
        "file:///etc/passwd",
        "ftp://203.0.113.9",
        "203.0.113.9:9090",
        "http://",
        "gopher://x",
    ] {
        assert_eq!(
            decide(&everything, address, &["203.0.113.9"]),
            Err(Refusal::NotAUrl {
                address: address.into()
            }),
            "{address}"
        );
    }
    assert_eq!(
        list(&["x"]).admit(&Destination::parse("http://x").expect("url"), &[]),
        Err(Refusal::NoAddress {
            target: "x:80".into()
        })
    );
}
