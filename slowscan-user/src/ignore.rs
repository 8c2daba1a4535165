//! Ignored sources (R4.6): IPv4 and IPv6 prefixes whose traffic is never
//! analysed (interim: the engine-side list; the kernel map comes with it).
use std::net::IpAddr;

use anyhow::{Context, bail};
use slowscan_common::AF_INET;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreList {
    prefixes: Vec<(u8, [u8; 16], u8)>,
}

fn parse_prefix(item: &str) -> Option<(u8, [u8; 16], u8)> {
    let (ip, len) = match item.split_once('/') {
        Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, Some(len.parse::<u8>().ok()?)),
        None => (item.parse::<IpAddr>().ok()?, None),
    };
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            a[..4].copy_from_slice(&v4.octets());
            let len = len.unwrap_or(32);
            (len <= 32).then_some((AF_INET, a, len))
        }
        IpAddr::V6(v6) => {
            let len = len.unwrap_or(128);
            (len <= 128).then_some((slowscan_common::AF_INET6, v6.octets(), len))
        }
    }
}

impl IgnoreList {
    /// `CIDR,CIDR,…`, or a file of prefixes (one per line, `#` comments).
    pub fn parse_spec(spec: &str) -> anyhow::Result<Self> {
        let items: Vec<&str> = spec.split(',').map(str::trim).collect();
        if let Some(p) = items
            .iter()
            .map(|i| parse_prefix(i))
            .collect::<Option<Vec<_>>>()
        {
            return Ok(Self { prefixes: p });
        }
        let text = std::fs::read_to_string(spec).with_context(|| {
            format!("`{spec}` is neither prefixes (CIDR,…) nor a readable file")
        })?;
        let mut prefixes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            match parse_prefix(line) {
                Some(p) => prefixes.push(p),
                None => bail!(
                    "{spec} line {}: `{line}` is not a prefix such as 198.51.100.0/24",
                    n + 1
                ),
            }
        }
        Ok(Self { prefixes })
    }

    pub fn is_empty(&self) -> bool {
        self.prefixes.is_empty()
    }

    pub fn contains(&self, family: u8, addr: &[u8; 16]) -> bool {
        self.prefixes.iter().any(|&(f, p, len)| {
            f == family
                && (0..usize::from(len)).all(|i| (p[i / 8] ^ addr[i / 8]) & (0x80 >> (i % 8)) == 0)
        })
    }
}
