//! Where alerts go (R8): JSON lines on stdout or appended to a file. An alert
//! counts as sent only once it is flushed (and, for a file, on disk).
use std::{
    fs::{File, OpenOptions},
    io::{self, Write},
    path::{Path, PathBuf},
};

use anyhow::Context;

use crate::engine::Alert;

/// The alert sink: `-` (stdout) or an append-only file.
pub enum AlertSink {
    Stdout(io::Stdout),
    File { file: File, path: PathBuf },
}

impl AlertSink {
    /// `-` is stdout; anything else a file opened for appending (created if
    /// missing).
    pub fn open(spec: &Path) -> anyhow::Result<Self> {
        if spec.as_os_str() == "-" {
            return Ok(Self::Stdout(io::stdout()));
        }
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(spec)
            .with_context(|| format!("opening the alerts file {} for appending", spec.display()))?;
        Ok(Self::File {
            file,
            path: spec.to_path_buf(),
        })
    }

    /// Writes one alert as a JSON line and flushes it (a file: to disk).
    pub fn send(&mut self, alert: &Alert) -> anyhow::Result<()> {
        let mut line = alert.to_json_line();
        line.push('\n');
        match self {
            Self::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(line.as_bytes())
                    .and_then(|()| out.flush())
                    .context("writing an alert to stdout")
            }
            Self::File { file, path } => file
                .write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
                .with_context(|| format!("writing an alert to {}", path.display())),
        }
    }

    /// Human name for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Stdout(_) => "stdout".into(),
            Self::File { path, .. } => path.display().to_string(),
        }
    }
}
