//! Zeek's `history` letters read as the method's rule (docs/method.md R5.4).
//!
//! Uppercase letters are the originator's packets, lowercase the
//! responder's; `^` marks that Zeek flipped the roles, which swaps the
//! logged addresses but not the letters written before it. So a letter
//! followed by an odd number of `^` belongs to the other side than its case
//! says. An Attempt is an `S` (SYN without ACK); it is Established when the
//! same side's `A` (pure ACK), `D` (payload) or `F` (FIN) follows it. `R`,
//! `H`, `Q`, `I` and the rest establish nothing.

/// What one side (as logged: orig or resp) did, in history order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Side {
    /// It sent a SYN without ACK: an Attempt.
    pub syn: bool,
    /// An ACK, payload or FIN followed its SYN: Established.
    pub established: bool,
    /// An ACK, payload or FIN without a SYN in this line (a follow-up that
    /// Zeek logged apart from its SYN).
    pub follow_up: bool,
}

/// The originator's and the responder's sides of one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Judged {
    pub orig: Side,
    pub resp: Side,
}

/// Reads a history string (bytes; non-letters other than `^` are ignored).
pub fn judge(history: &[u8]) -> Judged {
    let mut flips_after = history.iter().filter(|&&c| c == b'^').count();
    let mut j = Judged::default();
    for &c in history {
        if c == b'^' {
            flips_after -= 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            continue;
        }
        let is_orig = c.is_ascii_uppercase() != (flips_after % 2 == 1);
        let side = if is_orig { &mut j.orig } else { &mut j.resp };
        match c.to_ascii_uppercase() {
            b'S' => side.syn = true,
            b'A' | b'D' | b'F' => {
                if side.syn {
                    side.established = true;
                } else {
                    side.follow_up = true;
                }
            }
            _ => {}
        }
    }
    j
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(syn: bool, established: bool, follow_up: bool) -> Side {
        Side {
            syn,
            established,
            follow_up,
        }
    }

    #[test]
    fn r5_4_uppercase_s_is_an_attempt_established_by_a_later_a_d_or_f() {
        let none = Side::default();
        for (h, orig) in [
            ("S", side(true, false, false)),
            ("Sr", side(true, false, false)),
            ("ShR", side(true, false, false)),
            ("SR", side(true, false, false)),
            ("SaR", side(true, false, false)),
            ("ShADad", side(true, true, false)),
            ("SAD", side(true, true, false)),
            // The FIN of a stealth probe's tear-down: Zeek cannot tell.
            ("SaFR", side(true, true, false)),
            ("DAF", side(false, false, true)),
            ("Dr", side(false, false, true)),
            ("R", none),
            ("", none),
        ] {
            assert_eq!(judge(h.as_bytes()).orig, orig, "{h}");
        }
    }

    #[test]
    fn r5_4_a_flip_swaps_the_sides_of_the_letters_before_it() {
        // Flipped first: letters after it are as logged.
        let j = judge(b"^fA");
        assert_eq!(j.orig, side(false, false, true));
        assert_eq!(j.resp, side(false, false, true));
        // The responder as logged sent the SYN and its ACK before the flip.
        let j = judge(b"SA^D");
        assert_eq!(j.resp, side(true, true, false));
        assert_eq!(j.orig, side(false, false, true));
        // Two flips cancel.
        assert_eq!(judge(b"S^^A").orig, side(true, true, false));
        // A responder's SYN without ACK (simultaneous open) is its attempt.
        assert_eq!(judge(b"Ss").resp, side(true, false, false));
        assert_eq!(judge(b"^h").orig, Side::default());
    }
}
