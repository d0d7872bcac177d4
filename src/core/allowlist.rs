//! IP allowlists: IPv4/IPv6 addresses and CIDR ranges.

use std::net::IpAddr;

use ipnet::IpNet;

/// One allowlist entry: a single address or a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpRule {
    Addr(IpAddr),
    Net(IpNet),
}

impl IpRule {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        match self {
            // IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) match as the IPv4 address.
            IpRule::Addr(a) => a.to_canonical() == ip.to_canonical(),
            IpRule::Net(n) => n.contains(&ip.to_canonical()),
        }
    }
}

impl std::fmt::Display for IpRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IpRule::Addr(a) => a.fmt(f),
            IpRule::Net(n) => n.fmt(f),
        }
    }
}

/// Parses one client address (`10.0.0.1`, `2001:db8::1`), canonical: an IPv4-mapped
/// IPv6 address is the IPv4 address, so blocking, logging and `logs --ip` see one IP.
pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.trim().parse::<IpAddr>().map(|ip| ip.to_canonical()).map_err(|_| {
        format!("invalid IP address '{text}': use an IPv4 or IPv6 address like 203.0.113.7 or 2001:db8::1")
    })
}

/// Parses one entry: an address or a CIDR range whose host bits are zero.
pub fn parse_rule(text: &str) -> Result<IpRule, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(
            "empty IP entry: use an address like 203.0.113.7 or a range like 10.0.0.0/8".into(),
        );
    }
    if t.contains('/') {
        let net: IpNet = t.parse().map_err(|_| {
            format!("invalid IP range '{t}': use CIDR notation like 10.0.0.0/8 or 2001:db8::/32")
        })?;
        if net.trunc() != net {
            return Err(format!(
                "invalid IP range '{t}': it has host bits set; did you mean {}?",
                net.trunc()
            ));
        }
        Ok(IpRule::Net(net))
    } else {
        t.parse::<IpAddr>().map(IpRule::Addr).map_err(|_| {
            format!("invalid IP address '{t}': use an address like 203.0.113.7 or a range like 10.0.0.0/8")
        })
    }
}

/// Parses comma-separated lists (the flag is repeatable, so several lists), dropping
/// duplicates and keeping first-seen order.
pub fn parse_lists<S: AsRef<str>>(lists: &[S]) -> Result<Vec<IpRule>, String> {
    let mut rules: Vec<IpRule> = Vec::new();
    for list in lists {
        for entry in list.as_ref().split(',') {
            let rule = parse_rule(entry)?;
            if !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    Ok(rules)
}

/// True when `ip` matches any rule. An empty allowlist allows every address.
pub fn allows(rules: &[IpRule], ip: &IpAddr) -> bool {
    rules.is_empty() || rules.iter().any(|r| r.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_ranges() {
        let rules = parse_lists(&["10.0.0.0/8, 203.0.113.7", "2001:db8::/32,10.0.0.0/8"]).unwrap();
        let shown: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
        assert_eq!(shown, ["10.0.0.0/8", "203.0.113.7", "2001:db8::/32"]);
    }

    #[test]
    fn rejects_bad_entries_naming_them() {
        for bad in [
            "10.0.0.300",
            "10.0.0.0/33",
            "fe80::/129",
            "abc",
            "10.0.0.5/8",
            "",
            "1.2.3.4/",
        ] {
            let err = parse_lists(&[bad]).unwrap_err();
            assert!(err.contains(bad.trim()) || bad.is_empty(), "{err}");
        }
        assert!(parse_rule("10.0.0.5/8").unwrap_err().contains("10.0.0.0/8"));
    }

    #[test]
    fn matching() {
        let rules = parse_lists(&["10.0.0.0/8,2001:db8::/32,192.0.2.1"]).unwrap();
        for ok in ["10.1.2.3", "2001:db8::5", "192.0.2.1", "::ffff:10.9.9.9"] {
            assert!(allows(&rules, &parse_ip(ok).unwrap()), "{ok}");
        }
        for no in ["11.0.0.1", "2001:db9::1", "192.0.2.2"] {
            assert!(!allows(&rules, &parse_ip(no).unwrap()), "{no}");
        }
        assert!(allows(&[], &parse_ip("1.1.1.1").unwrap()));
        assert_eq!(parse_ip("::ffff:10.9.9.9").unwrap().to_string(), "10.9.9.9");
    }
}
