//! TCP flag rules shared by the kernel pre-filter and the userspace engine.

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;
pub const URG: u8 = 0x20;
pub const ECE: u8 = 0x40;
pub const CWR: u8 = 0x80;

/// R1: a connection attempt has SYN set and ACK, RST, FIN clear; PSH, URG,
/// ECE and CWR are ignored (so an ECN-setup SYN counts).
#[inline(always)]
pub const fn is_attempt(flags: u8) -> bool {
    flags & (SYN | ACK | RST | FIN) == SYN
}

/// R5: the flags of a segment that can establish an attempt: exactly one of
/// ACK, PSH+ACK, FIN, FIN+ACK once ECE, CWR and URG are ignored.
#[inline(always)]
pub const fn is_follow_up(flags: u8) -> bool {
    let f = flags & !(ECE | CWR | URG);
    f == ACK || f == PSH | ACK || f == FIN || f == FIN | ACK
}

/// R5: the follow-up's sequence number is the SYN's plus one, mod 2^32.
#[inline(always)]
pub const fn is_next_seq(syn_seq: u32, seq: u32) -> bool {
    seq == syn_seq.wrapping_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r1_attempt_flags() {
        assert!(is_attempt(SYN));
        assert!(is_attempt(SYN | ECE | CWR), "ECN-setup SYN counts (R1)");
        assert!(is_attempt(SYN | PSH | URG));
        assert!(!is_attempt(SYN | ACK));
        assert!(!is_attempt(SYN | RST));
        assert!(!is_attempt(SYN | FIN));
        assert!(!is_attempt(ACK));
    }

    #[test]
    fn r5_follow_up_flags() {
        for ok in [
            ACK,
            PSH | ACK,
            FIN,
            FIN | ACK,
            ACK | ECE,
            FIN | ACK | URG | CWR,
        ] {
            assert!(is_follow_up(ok), "{ok:#x}");
        }
        for bad in [
            RST,
            RST | ACK,
            SYN,
            SYN | ACK,
            PSH,
            0,
            PSH | FIN,
            FIN | PSH | ACK,
        ] {
            assert!(!is_follow_up(bad), "{bad:#x}");
        }
    }

    #[test]
    fn r5_sequence_wraps() {
        assert!(is_next_seq(u32::MAX, 0));
        assert!(is_next_seq(41, 42));
        assert!(!is_next_seq(41, 41));
    }
}
