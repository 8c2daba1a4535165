//! The engine state on disk (`slowscan run --state PATH`): read at start,
//! written atomically every `--checkpoint-every` and at SIGTERM/SIGINT.
//!
//! A write goes to `PATH.tmp`, is fsynced, renamed over `PATH`, and the
//! directory is fsynced: after a crash (even SIGKILL or power loss mid-write)
//! `PATH` holds either the previous checkpoint or the new one, never a torn
//! file. A `PATH.tmp` left by a crash is simply overwritten.

use std::{
    ffi::OsString,
    fs::{self, File},
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};

use crate::engine::EngineState;

/// `PATH.tmp`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".tmp");
    PathBuf::from(s)
}

/// Reads the state at `path`: None when there is none yet, or when `reset`
/// (start afresh, whatever the file holds). A file that cannot be read or is
/// not a state of this format is an error naming the file.
pub fn load(path: &Path, reset: bool) -> anyhow::Result<Option<EngineState>> {
    if reset {
        return Ok(None);
    }
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the engine state {}", path.display()));
        }
    };
    match EngineState::from_bytes(&bytes) {
        Ok(s) => Ok(Some(s)),
        Err(e) => bail!(
            "engine state {}: {e}; move the file away, or start afresh with --state-reset",
            path.display()
        ),
    }
}

/// Writes `state` to `path` atomically (see the module documentation);
/// returns its size in bytes.
pub fn save(path: &Path, state: &EngineState) -> anyhow::Result<usize> {
    save_bytes(path, &state.to_bytes())
}

/// [`save`] of already serialised bytes.
pub fn save_bytes(path: &Path, bytes: &[u8]) -> anyhow::Result<usize> {
    let tmp = tmp_path(path);
    let write = || -> std::io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    write().with_context(|| format!("writing the engine state to {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the directory {}", dir.display()))?;
    Ok(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, EngineConfig};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("slowscan-ckpt-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let d = scratch("roundtrip");
        let p = d.join("state.json");
        assert!(load(&p, false).unwrap().is_none(), "no file: no state");
        // A torn temporary file from a crash is overwritten.
        fs::write(tmp_path(&p), b"{\"kind\":").unwrap();
        let st = Engine::new(EngineConfig::default()).checkpoint();
        save(&p, &st).unwrap();
        assert!(!tmp_path(&p).exists());
        assert_eq!(load(&p, false).unwrap(), Some(st));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_bad_file_is_an_error_naming_it_unless_reset() {
        let d = scratch("bad");
        let p = d.join("state.json");
        fs::write(&p, b"garbage").unwrap();
        let e = format!("{:#}", load(&p, false).unwrap_err());
        assert!(e.contains(&p.display().to_string()), "{e}");
        assert!(e.contains("not a slowscan engine state"), "{e}");
        assert!(e.contains("--state-reset"), "{e}");
        assert!(load(&p, true).unwrap().is_none());
        fs::remove_dir_all(&d).unwrap();
    }
}
