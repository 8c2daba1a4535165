//! What a running process costs, from /proc: CPU time and memory.

/// utime + stime of process `pid` (all its threads), in clock ticks; 0 once
/// it is gone.
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 1)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc_pid_stat(5); `rest` starts at field 3.
    let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    field(11) + field(12)
}

/// A `kB` line of /proc/`pid`/status (`VmRSS`, `VmHWM`, …); 0 once the
/// process is gone.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .strip_prefix(':')?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// Clock ticks per second (`cpu_ticks`' unit).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf cannot fail for _SC_CLK_TCK.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_measured() {
        let me = std::process::id();
        assert!(status_kib(me, "VmRSS") > 0);
        assert!(status_kib(me, "VmHWM") >= status_kib(me, "VmRSS") / 2);
        assert_eq!(status_kib(me, "NoSuchField"), 0);
        let _ = cpu_ticks(me);
        assert!(ticks_per_second() > 0.0);
    }
}
