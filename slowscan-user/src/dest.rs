//! A destination (IP address, TCP port): a whitelist entry (R4.2) as users
//! write it, `198.51.100.7:80` or `[2001:db8::7]:443`.
use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use slowscan_common::WhitelistKey;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Destination {
    pub ip: IpAddr,
    pub port: u16,
}

impl Destination {
    pub fn key(&self) -> WhitelistKey {
        crate::whitelist::key_of(self.ip, self.port)
    }

    pub fn from_key(k: &WhitelistKey) -> Self {
        Self {
            ip: crate::whitelist::ip_of(k),
            port: k.port,
        }
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
            slowscan_common::AF_INET
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
