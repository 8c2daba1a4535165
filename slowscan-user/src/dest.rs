//! A destination (IP address, TCP port): a whitelist entry (R4.2) as users
//! write it, `198.51.100.7:80` or `[2001:db8::7]:443`.
use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use slowscan_common::{AF_INET, AF_INET6, WhitelistKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub ip: IpAddr,
    pub port: u16,
}

impl Destination {
    pub fn key(&self) -> WhitelistKey {
        let mut addr = [0u8; 16];
        let family = match self.ip {
            IpAddr::V4(v4) => {
                addr[..4].copy_from_slice(&v4.octets());
                AF_INET
            }
            IpAddr::V6(v6) => {
                addr = v6.octets();
                AF_INET6
            }
        };
        WhitelistKey::new(family, addr, self.port)
    }

    pub fn from_key(k: &WhitelistKey) -> Self {
        Self {
            ip: ip_from(k.family, &k.addr),
            port: k.port,
        }
    }
}

/// The address a record or key holds (IPv4 in the first 4 bytes).
pub fn ip_from(family: u8, addr: &[u8; 16]) -> IpAddr {
    if family == AF_INET {
        IpAddr::from([addr[0], addr[1], addr[2], addr[3]])
    } else {
        IpAddr::from(*addr)
    }
}

impl FromStr for Destination {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let sa: SocketAddr = s.parse().map_err(|_| {
            format!("`{s}` is not a destination: write ADDR:PORT, e.g. 198.51.100.7:80 or [2001:db8::7]:443")
        })?;
        if sa.port() == 0 {
            return Err(format!("`{s}`: port 0 is not a TCP service port"));
        }
        Ok(Self {
            ip: sa.ip(),
            port: sa.port(),
        })
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", SocketAddr::new(self.ip, self.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips() {
        for s in ["198.51.100.7:80", "[2001:db8::7]:443"] {
            let d: Destination = s.parse().unwrap();
            assert_eq!(d.to_string(), s);
            assert_eq!(Destination::from_key(&d.key()), d);
        }
        assert_eq!(
            "198.51.100.7:80"
                .parse::<Destination>()
                .unwrap()
                .key()
                .family,
            AF_INET
        );
    }

    #[test]
    fn rejects_bad_input_with_a_reason() {
        for bad in [
            "198.51.100.7",
            "198.51.100.7:0",
            "198.51.100.7:70000",
            "host:80",
            "[2001:db8::1:80",
        ] {
            let e = bad.parse::<Destination>().unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
