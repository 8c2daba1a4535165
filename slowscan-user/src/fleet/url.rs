//! `--fleet redis://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…]` (or `rediss://`
//! for TLS): the seeds of a Redis Cluster, or one Redis server. Which of the
//! two it is, the store says when the sensor connects.

use std::fmt;

/// A parsed `--fleet` value.
#[derive(Clone, PartialEq, Eq)]
pub struct FleetUrl {
    /// `rediss://`: TLS to every node.
    pub tls: bool,
    /// `#insecure` (TLS without certificate verification; for tests).
    pub insecure: bool,
    /// ACL user (`default` when only a password is given).
    pub username: Option<String>,
    pub password: Option<String>,
    /// `host:port` of each seed, as given (IPv6 in brackets).
    pub seeds: Vec<String>,
}

impl fmt::Debug for FleetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Without the password.
impl fmt::Display for FleetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "rediss" } else { "redis" };
        write!(f, "{scheme}://")?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => write!(f, ":***@")?,
            (None, None) => {}
        }
        write!(f, "{}", self.seeds.join(","))
    }
}

const EXAMPLE: &str =
    "e.g. redis://10.0.0.5:6379,10.0.0.6:6379 or rediss://user:secret@store.example:6380";

impl FleetUrl {
    pub fn parse(s: &str) -> Result<FleetUrl, String> {
        let bad = |why: &str| format!("--fleet {s:?}: {why} ({EXAMPLE})");
        let (tls, rest) = if let Some(r) = s.strip_prefix("redis://") {
            (false, r)
        } else if let Some(r) = s.strip_prefix("rediss://") {
            (true, r)
        } else {
            return Err(bad("the store URL must start with redis:// or rediss://"));
        };
        let (rest, fragment) = match rest.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (rest, None),
        };
        let insecure = match fragment {
            None | Some("") => false,
            Some("insecure") if tls => true,
            Some("insecure") => return Err(bad("#insecure applies to rediss:// only")),
            Some(f) => return Err(bad(&format!("unknown option #{f} (only #insecure)"))),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('?') {
            return Err(bad(
                "a fleet store URL has no database number or options: give hosts only",
            ));
        }
        let (userinfo, hosts) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    (!user.is_empty()).then(|| user.to_string()),
                    Some(pass.to_string()),
                ),
                None if u.is_empty() => (None, None),
                None => (Some(u.to_string()), None),
            },
        };
        let mut seeds = Vec::new();
        for h in hosts.split(',') {
            let h = h.trim();
            if h.is_empty() {
                return Err(bad("an empty host in the list"));
            }
            seeds.push(host_port(h).map_err(|e| bad(&e))?);
        }
        Ok(FleetUrl {
            tls,
            insecure,
            username,
            password,
            seeds,
        })
    }

    /// The URL of one node (a seed or a node the cluster named), with the
    /// credentials and TLS settings of this URL, for the Redis client.
    pub fn node_url(&self, addr: &str) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let enc = |s: &str| percent_encode(s);
        let auth = match (&self.username, &self.password) {
            (Some(u), Some(p)) => format!("{}:{}@", enc(u), enc(p)),
            (Some(u), None) => format!("{}@", enc(u)),
            (None, Some(p)) => format!(":{}@", enc(p)),
            (None, None) => String::new(),
        };
        let frag = if self.insecure { "#insecure" } else { "" };
        format!("{scheme}://{auth}{addr}/{frag}")
    }
}

/// `HOST:PORT`, `[V6]:PORT`; the port is required (a cluster's nodes rarely
/// listen on 6379 alone, and a missing port is a common slip).
fn host_port(h: &str) -> Result<String, String> {
    let (host, port) = if let Some(r) = h.strip_prefix('[') {
        let (v6, port) = r
            .split_once("]:")
            .ok_or_else(|| format!("{h:?} must be [IPV6]:PORT"))?;
        v6.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("{v6:?} is not an IPv6 address"))?;
        (format!("[{v6}]"), port)
    } else {
        let (host, port) = h
            .rsplit_once(':')
            .ok_or_else(|| format!("{h:?} has no port: write HOST:PORT"))?;
        if host.is_empty() || host.contains(':') {
            return Err(format!("{h:?}: write HOST:PORT (IPv6 as [ADDRESS]:PORT)"));
        }
        (host.to_string(), port)
    };
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(format!("{host}:{p}")),
        _ => Err(format!("{port:?} is not a port (1-65535)")),
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_credentials_and_tls() {
        let u = FleetUrl::parse("redis://127.0.0.1:7000,127.0.0.1:7001").unwrap();
        assert!(!u.tls);
        assert_eq!(u.seeds, ["127.0.0.1:7000", "127.0.0.1:7001"]);
        assert_eq!(u.node_url("127.0.0.1:7002"), "redis://127.0.0.1:7002/");

        let u = FleetUrl::parse("rediss://sensor:p@ss@store.example:6380#insecure").unwrap();
        assert!(u.tls && u.insecure);
        assert_eq!(u.username.as_deref(), Some("sensor"));
        assert_eq!(u.password.as_deref(), Some("p@ss"));
        assert_eq!(u.to_string(), "rediss://sensor:***@store.example:6380");
        assert_eq!(
            u.node_url("[2001:db8::1]:6380"),
            "rediss://sensor:p%40ss@[2001:db8::1]:6380/#insecure"
        );

        let u = FleetUrl::parse("redis://:secret@[2001:db8::5]:7000/").unwrap();
        assert_eq!(u.username, None);
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.seeds, ["[2001:db8::5]:7000"]);
    }

    #[test]
    fn errors_say_what_to_write() {
        for (s, want) in [
            ("http://h:1", "must start with redis://"),
            ("redis://h", "has no port"),
            ("redis://h:0", "is not a port"),
            ("redis://h:1,", "empty host"),
            ("redis://h:1/0", "no database number"),
            ("redis://h:1#insecure", "rediss:// only"),
            ("redis://2001:db8::1:7000", "IPv6 as [ADDRESS]:PORT"),
        ] {
            let e = FleetUrl::parse(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
