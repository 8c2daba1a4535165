//! The network namespace a sensor runs in, as a key for its runtime file and
//! pins: two sensors on same-named interfaces in different namespaces must
//! never share either (a `whitelist add` meant for one would reach the
//! other). The key is the namespace's inode number (`/proc/thread-self/ns/net`),
//! stable for the namespace's lifetime and the same for every process in it.
use std::os::unix::fs::MetadataExt;

use anyhow::Context;

/// The calling thread's network namespace inode (a thread may have entered
/// another namespace than its process with setns).
pub fn current() -> anyhow::Result<u64> {
    let p = "/proc/thread-self/ns/net";
    Ok(std::fs::metadata(p)
        .with_context(|| format!("reading {p} (is /proc mounted?)"))?
        .ino())
}

/// `net<inode>`: the directory name that keys a namespace's runtime files and pins.
pub fn key() -> anyhow::Result<String> {
    Ok(format!("net{}", current()?))
}
