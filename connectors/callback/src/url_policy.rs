//! Which report URLs a webhook may go to (SSRF protection). Production: https only, and every
//! address a host resolves to must be public: loopback, private, link-local (cloud metadata
//! lives there), shared, multicast and unspecified ranges are refused unless an operator
//! allow-list names them. Dev mode (`make up`) also allows http and loopback. No I/O: the
//! resolver in `guarded_dns.rs` applies `address_allowed` to what DNS answers at send time.

use std::net::IpAddr;

use ipnet::IpNet;

/// How strict the webhook policy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookMode {
    /// https only; public addresses only (plus the allow-list).
    #[default]
    Production,
    /// http or https; loopback allowed too (a local demo or test).
    Dev,
}

impl std::str::FromStr for WebhookMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "production" => Ok(WebhookMode::Production),
            "dev" => Ok(WebhookMode::Dev),
            other => Err(format!("{other:?} is not production or dev")),
        }
    }
}

/// The policy: a mode and the networks an operator allows although they are not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookPolicy {
    pub mode: WebhookMode,
    pub allow: Vec<IpNet>,
}

/// Why a URL or address is refused (permanent: sending again will not help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0} is not an absolute http(s) URL")]
    NotHttp(String),
    #[error("{0} is not https (webhooks are https in production mode)")]
    NotHttps(String),
    #[error("{0} is a {1} address, not allowed for webhooks")]
    Address(IpAddr, &'static str),
}

impl WebhookPolicy {
    /// Check a URL's scheme, and its host if the host is an IP address (a name is checked
    /// when it is resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), Refused> {
        match (url.scheme(), self.mode) {
            ("https", _) | ("http", WebhookMode::Dev) => {}
            ("http", WebhookMode::Production) => return Err(Refused::NotHttps(url.to_string())),
            _ => return Err(Refused::NotHttp(url.to_string())),
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.address_allowed(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.address_allowed(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(Refused::NotHttp(url.to_string())),
        }
    }

    /// Whether a webhook may connect to `ip`.
    pub fn address_allowed(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match special_range(ip) {
            None => Ok(()),
            Some("loopback") if self.mode == WebhookMode::Dev => Ok(()),
            Some(kind) => Err(Refused::Address(ip, kind)),
        }
    }
}

/// An IPv4 address written as IPv6 (`::ffff:10.0.0.1`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The kind of non-public range `ip` is in, if any.
fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("shared (carrier-grade NAT)")
            } else if v4.is_unspecified() || a == 0 {
                Some("unspecified")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("multicast or reserved")
            } else if v4.is_documentation() || (a == 198 && (b == 18 || b == 19)) {
                Some("documentation or benchmarking")
            } else if a == 192
                && ((b == 0 && v4.octets()[2] == 0) || (b == 88 && v4.octets()[2] == 99))
            {
                Some("protocol assignment or 6to4 relay")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (first & 0xfe00) == 0xfc00 {
                Some("private (unique local; includes fd00:ec2::254 metadata)")
            } else if (first & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast or reserved")
            } else if first == 0x64 && v6.segments()[1] == 0xff9b {
                Some("NAT64 (may reach private IPv4)")
            } else if v6.segments()[..6] == [0; 6] || v6.segments()[..6] == [0, 0, 0, 0, 0xffff, 0]
            {
                Some("IPv4-compatible or translated (embeds an IPv4 address)")
            } else if first == 0x2002 {
                Some("6to4 (embeds an IPv4 address)")
            } else if first == 0x2001 && v6.segments()[1] == 0 {
                Some("Teredo (embeds an IPv4 address)")
            } else if (first & 0xffc0) == 0xfec0 {
                Some("site-local")
            } else if first == 0x0100 && v6.segments()[1..4] == [0, 0, 0] {
                Some("discard-only")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> WebhookPolicy {
        WebhookPolicy::default()
    }

    fn url(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).expect("a URL")
    }

    #[test]
    fn production_refuses_every_non_public_address() {
        let policy = production();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::127.0.0.1",
            "::ffff:0:7f00:1",
            "2002:a9fe:a9fe::",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "fec0::1",
            "100::1",
            "192.0.0.8",
            "192.88.99.1",
        ] {
            let ip: IpAddr = refused.parse().expect("an address");
            assert!(policy.address_allowed(ip).is_err(), "{refused} allowed");
        }
        for allowed in ["8.8.8.8", "203.0.114.1", "2606:4700::1111"] {
            let ip: IpAddr = allowed.parse().expect("an address");
            assert_eq!(policy.address_allowed(ip), Ok(()), "{allowed}");
        }
    }

    #[test]
    fn dev_allows_loopback_only_and_the_allow_list_opens_a_range() {
        let dev = WebhookPolicy {
            mode: WebhookMode::Dev,
            allow: Vec::new(),
        };
        assert_eq!(
            dev.address_allowed("127.0.0.1".parse().expect("ip")),
            Ok(())
        );
        assert_eq!(dev.address_allowed("::1".parse().expect("ip")), Ok(()));
        assert!(
            dev.address_allowed("10.0.0.1".parse().expect("ip"))
                .is_err()
        );
        assert!(
            dev.address_allowed("169.254.169.254".parse().expect("ip"))
                .is_err()
        );
        let allowed = WebhookPolicy {
            mode: WebhookMode::Production,
            allow: vec!["10.20.0.0/16".parse().expect("a network")],
        };
        assert_eq!(
            allowed.address_allowed("10.20.3.4".parse().expect("ip")),
            Ok(())
        );
        assert!(
            allowed
                .address_allowed("10.21.3.4".parse().expect("ip"))
                .is_err()
        );
    }

    #[test]
    fn production_needs_https_and_checks_literal_hosts() {
        let policy = production();
        assert!(matches!(
            policy.check_url(&url("http://example.com/hook")),
            Err(Refused::NotHttps(_))
        ));
        assert!(matches!(
            policy.check_url(&url("ftp://example.com/hook")),
            Err(Refused::NotHttp(_))
        ));
        assert!(matches!(
            policy.check_url(&url("https://169.254.169.254/latest/meta-data")),
            Err(Refused::Address(..))
        ));
        assert!(matches!(
            policy.check_url(&url("https://[::1]:8443/")),
            Err(Refused::Address(..))
        ));
        assert_eq!(policy.check_url(&url("https://example.com/hook")), Ok(()));
        let dev = WebhookPolicy {
            mode: WebhookMode::Dev,
            allow: Vec::new(),
        };
        assert_eq!(dev.check_url(&url("http://127.0.0.1:8090/")), Ok(()));
    }
}
