//! The directories of the files a sensor writes (alerts, state). Under
//! systemd the unit creates the packaged ones, /var/log/slowscan and
//! /var/lib/slowscan (`LogsDirectory=` mode 0750 group adm,
//! `StateDirectory=` mode 0700); run by hand (a lab, a container, another
//! init) nothing does, so the sensor creates them itself, the same way. Any other missing directory is
//! an operator's choice of path: it is named, with the fix, instead of a
//! bare "No such file or directory".
use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use anyhow::bail;
use tracing::info;

/// The directories the package's unit creates, with the mode it gives
/// them (`LogsDirectoryMode=`, `StateDirectoryMode=`); the logs' group is
/// adm (docs/operations.md, alert rotation).
pub const PACKAGED: [(&str, u32); 2] = [("/var/log/slowscan", 0o750), ("/var/lib/slowscan", 0o700)];

/// Makes sure the directory of `path` (given as `option`, e.g. `--alerts`)
/// exists: a packaged directory is created, any other missing one is an
/// error that names it and says what to do.
pub fn prepare(path: &Path, option: &str) -> anyhow::Result<()> {
    prepare_with(path, option, &PACKAGED.map(|(p, m)| (PathBuf::from(p), m)))
}

/// [`prepare`] with the packaged directories given (tests).
pub fn prepare_with(path: &Path, option: &str, packaged: &[(PathBuf, u32)]) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => return Ok(()),
    };
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        bail!(
            "{option} {}: {} is not a directory; give a path in a directory",
            path.display(),
            dir.display()
        );
    }
    if let Some(&(_, mode)) = packaged.iter().find(|(p, _)| p == dir) {
        std::fs::DirBuilder::new()
            .mode(mode)
            .create(dir)
            .map_err(|e| {
                anyhow::anyhow!(
                    "{option} {}: cannot create its directory {} ({e}); create it: \
                     `install -d -m {mode:04o} {}`",
                    path.display(),
                    dir.display(),
                    dir.display()
                )
            })?;
        // Log readers (group adm) may enter the log directory, as the unit
        // sets it up; without such a group it stays root's.
        if mode & 0o050 != 0
            && let Ok(Some(g)) = nix::unistd::Group::from_name("adm")
        {
            let _ = std::os::unix::fs::chown(dir, None, Some(g.gid.as_raw()));
        }
        info!(
            "created {} (mode {mode:04o}) for {option} {}, as the systemd unit would",
            dir.display(),
            path.display()
        );
        return Ok(());
    }
    bail!(
        "{option} {}: its directory {} does not exist; create it (`mkdir -p {}`) or give \
         another path",
        path.display(),
        dir.display(),
        dir.display()
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_packaged_directory_is_created_and_any_other_is_named() {
        let root = std::env::temp_dir().join(format!("slowscan-dirs-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let packaged = [(root.join("log-slowscan"), 0o750)];
        // The packaged directory: created, 0750.
        let alerts = packaged[0].0.join("eth1.alerts.jsonl");
        prepare_with(&alerts, "--alerts", &packaged).unwrap();
        let mode = std::fs::metadata(&packaged[0].0)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        // Existing: nothing to do.
        prepare_with(&alerts, "--alerts", &packaged).unwrap();
        // Anywhere else: the directory named, with the fix; nothing created.
        let state = root.join("elsewhere/eth1.state");
        let e = prepare_with(&state, "--state", &packaged)
            .unwrap_err()
            .to_string();
        let dir = root.join("elsewhere");
        assert!(
            e.contains(&format!("its directory {} does not exist", dir.display()))
                && e.contains(&format!("mkdir -p {}", dir.display()))
                && e.starts_with("--state "),
            "{e}"
        );
        assert!(!dir.exists());
        // A file where the directory should be.
        std::fs::write(root.join("file"), b"").unwrap();
        let e = prepare_with(&root.join("file/x"), "--alerts", &packaged)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a directory"), "{e}");
        // A bare file name is in the working directory.
        prepare_with(Path::new("alerts.jsonl"), "--alerts", &packaged).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
    }
}
