//! Addresses as the data plane carries them: an address family
//! (`AF_INET`, `AF_INET6`) and 16 bytes in network order, IPv4 in the first
//! 4 and the rest zero. One place converts them to and from [`IpAddr`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use slowscan_common::{AF_INET, AF_INET6};

/// The address in a record or key.
pub fn ip_from(family: u8, addr: &[u8; 16]) -> IpAddr {
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*addr))
    }
}

/// The family and 16 bytes of an address.
pub fn addr_of(ip: IpAddr) -> (u8, [u8; 16]) {
    let mut a = [0u8; 16];
    match ip {
        IpAddr::V4(v4) => {
            a[..4].copy_from_slice(&v4.octets());
            (AF_INET, a)
        }
        IpAddr::V6(v6) => (AF_INET6, v6.octets()),
    }
}

/// The bytes with anything past an IPv4 address zeroed (keys compare equal).
pub fn canonical(family: u8, addr: &[u8; 16]) -> [u8; 16] {
    let mut a = *addr;
    if family == AF_INET {
        a[4..].fill(0);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_families() {
        for s in ["198.51.100.7", "2001:db8::7", "::ffff:198.51.100.7"] {
            let ip: IpAddr = s.parse().unwrap();
            let (f, a) = addr_of(ip);
            assert_eq!(ip_from(f, &a), ip);
            assert_eq!(canonical(f, &a), a);
        }
        let mut dirty = addr_of("198.51.100.7".parse().unwrap()).1;
        dirty[9] = 1;
        assert_eq!(canonical(AF_INET, &dirty)[4..], [0; 12]);
        assert_eq!(ip_from(AF_INET, &dirty).to_string(), "198.51.100.7");
    }
}
