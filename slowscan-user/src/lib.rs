//! slowscan: detects slow TCP SYN scans with the NICT 2014 method (docs/method.md).
//!
//! The engine knows nothing about where records come from: the XDP ring
//! buffer (`kernel`) and offline captures (`capture` + `frame`) feed it the
//! same [`slowscan_common::PacketRecord`].

pub mod addr;
pub mod atomic;
pub mod capture;
pub mod daemon;
pub mod dirs;
pub mod engine;
pub mod fleet;
pub mod flows;
pub mod frame;
pub mod ignore;
pub mod ignore_file;
pub mod kernel;
pub mod netns;
pub mod rfc3339;
pub mod stop;
pub mod whitelist;
pub mod whitelist_file;
pub mod zeek;

/// `1 destination`, `2 destinations`, `3 entries`: counts in messages.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    match noun.strip_suffix('y') {
        _ if n == 1 => format!("1 {noun}"),
        Some(stem) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        _ => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_pluralised() {
        assert_eq!(super::count(1u64, "alert"), "1 alert");
        assert_eq!(super::count(0u64, "alert"), "0 alerts");
        assert_eq!(super::count(2u64, "entry"), "2 entries");
        assert_eq!(super::count(2u64, "day"), "2 days");
    }
}
