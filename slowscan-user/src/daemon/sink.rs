//! Where alert lines go (R8): stdout or a file appended to. A line counts as
//! written only once it is flushed (a file: on disk, `fdatasync`). A write
//! that fails half-way is cut back off the file, so a retry never leaves a
//! torn line in front of the whole one.
use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;

/// The alert sink: `-` (stdout) or an append-only file.
pub enum AlertSink {
    Stdout(io::Stdout),
    File { file: File, path: PathBuf },
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().append(true).create(true).open(path)
}

impl AlertSink {
    /// `-` is stdout; anything else a file opened for appending (created if
    /// missing).
    pub fn open(spec: &Path) -> anyhow::Result<Self> {
        if spec.as_os_str() == "-" {
            return Ok(Self::Stdout(io::stdout()));
        }
        let file = open_append(spec)
            .with_context(|| format!("opening the alerts file {} for appending", spec.display()))?;
        Ok(Self::File {
            file,
            path: spec.to_path_buf(),
        })
    }

    /// Writes one line (with its newline) and flushes it; on failure nothing
    /// of it is left in a file.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Self::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            Self::File { file, .. } => {
                let before = file.metadata()?.len();
                let r = file
                    .write_all(line.as_bytes())
                    .and_then(|()| file.sync_data());
                if r.is_err() {
                    // Only cut what this write appended (logrotate's
                    // copytruncate may have emptied the file meanwhile).
                    if file.metadata().is_ok_and(|m| m.len() > before) {
                        let _ = file.set_len(before);
                    }
                }
                r
            }
        }
    }

    /// SIGHUP: the file opened again by its path (logrotate's `create`
    /// renamed the old one away). On failure the old file stays in use.
    pub fn reopen(&mut self) -> anyhow::Result<()> {
        if let Self::File { file, path } = self {
            *file = open_append(path).with_context(|| {
                format!(
                    "reopening the alerts file {} (still writing to the file opened before)",
                    path.display()
                )
            })?;
        }
        Ok(())
    }

    /// Human name for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Stdout(_) => "stdout".into(),
            Self::File { path, .. } => path.display().to_string(),
        }
    }
}
