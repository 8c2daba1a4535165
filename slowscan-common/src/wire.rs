//! Wire constants and the bounds of the parsing contract (docs/parsing.md),
//! one definition for the kernel parser and the userspace one.

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86DD;
pub const ETH_P_8021Q: u16 = 0x8100;
pub const ETH_P_8021AD: u16 = 0x88A8;
pub const IPPROTO_TCP: u8 = 6;

/// VLAN tags read before the EtherType must be IP (a third one is NonIp).
pub const MAX_VLAN_TAGS: u8 = 2;
/// IPv6 extension headers walked before the next header must be TCP.
pub const MAX_IPV6_EXT_HEADERS: u8 = 4;
