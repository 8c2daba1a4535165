//! Files replaced whole: written beside the target (`PATH.tmp`), then
//! renamed over it, so a reader sees the old file or the new one, never a
//! torn one. How much survives a crash is the caller's explicit choice.

use std::{
    ffi::OsString,
    fs::{self, File},
    io::{self, Write},
    path::{Path, PathBuf},
};

/// What a completed write survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A crash of the process (rename only): runtime files.
    Process,
    /// Power loss too: the file and its directory are fsynced (state,
    /// whitelists, ignore lists).
    Power,
}

/// `PATH.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".tmp");
    PathBuf::from(s)
}

/// Replaces `path` with `bytes`. On failure the temporary file is removed
/// (a full disk must not keep a torn copy) and `path` is as it was.
pub fn write(path: &Path, bytes: &[u8], durability: Durability) -> io::Result<()> {
    let tmp = tmp_path(path);
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        if durability == Durability::Power {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if durability == Durability::Power {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_and_cleans_up() {
        let d = std::env::temp_dir().join(format!("slowscan-atomic-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        let p = d.join("f");
        for dur in [Durability::Process, Durability::Power] {
            write(&p, b"one", dur).unwrap();
            write(&p, b"two", dur).unwrap();
            assert_eq!(fs::read(&p).unwrap(), b"two");
            assert!(!tmp_path(&p).exists());
        }
        // A directory that does not exist: an error, nothing left behind.
        let q = d.join("missing/f");
        assert!(write(&q, b"x", Durability::Power).is_err());
        assert!(!tmp_path(&q).exists());
        fs::remove_dir_all(&d).unwrap();
    }
}
