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

/// What [`super::AlertPath`] needs of a sink: the seam that lets its queue
/// be tested on a file with little room left (see the tests).
pub trait LineSink {
    /// Writes one line (with its newline) and flushes it; on failure nothing
    /// of it is left behind.
    fn write_line(&mut self, line: &str) -> io::Result<()>;
    /// SIGHUP: the sink opened again by its name (logrotate). On failure
    /// the old one stays in use.
    fn reopen(&mut self) -> anyhow::Result<()>;
    /// Human name for logs.
    fn describe(&self) -> String;
}

/// The alert sink: `-` (stdout) or an append-only file.
pub enum AlertSink {
    Stdout(io::Stdout),
    File { file: File, path: PathBuf },
}

/// Created 0640 (owner and group read; the unit's group is `adm`, like
/// the files logrotate creates); an existing file keeps its mode.
fn open_append(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// An alerts file this start creates, removed again if the start fails
/// before anything was written to it: an empty file would look like a
/// sensor that ran and saw nothing.
pub struct NewAlertsFile(Option<PathBuf>);

impl NewAlertsFile {
    /// Before the sink is opened: remembers `spec` if it is a file that
    /// does not exist yet.
    pub fn before_open(spec: &Path) -> Self {
        Self((spec.as_os_str() != "-" && !spec.exists()).then(|| spec.to_path_buf()))
    }

    /// The start succeeded: the file stays.
    pub fn keep(mut self) {
        self.0 = None;
    }
}

impl Drop for NewAlertsFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && std::fs::metadata(&p).is_ok_and(|m| m.len() == 0)
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Appends `line` to `file` through `out` (the file itself; in tests, the
/// file with little room left) and syncs it; on failure cuts back what this
/// write appended.
pub(super) fn append_whole(file: &File, out: &mut impl Write, line: &[u8]) -> io::Result<()> {
    let before = file.metadata()?.len();
    let r = out.write_all(line).and_then(|()| file.sync_data());
    // Only cut what this write appended (logrotate's copytruncate may have
    // emptied the file meanwhile).
    if r.is_err() && file.metadata().is_ok_and(|m| m.len() > before) {
        let _ = file.set_len(before);
    }
    r
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
}

impl LineSink for AlertSink {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        match self {
            Self::Stdout(out) => {
                let mut out = out.lock();
                out.write_all(line.as_bytes()).and_then(|()| out.flush())
            }
            Self::File { file, .. } => {
                let f: &File = file;
                append_whole(f, &mut { f }, line.as_bytes())
            }
        }
    }

    fn reopen(&mut self) -> anyhow::Result<()> {
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

    fn describe(&self) -> String {
        match self {
            Self::Stdout(_) => "stdout".into(),
            Self::File { path, .. } => path.display().to_string(),
        }
    }
}

/// A real file on a "disk" of `capacity` bytes: writes past it stop short
/// and then fail with ENOSPC, as on a full filesystem; raising the capacity
/// is space returning. Only the room is simulated: what lands, and what is
/// cut back, is in the real file.
#[cfg(test)]
pub(crate) mod tiny_disk {
    use std::{cell::Cell, rc::Rc};

    use super::*;

    pub struct TinyDisk {
        pub file: File,
        pub path: PathBuf,
        pub capacity: Rc<Cell<u64>>,
    }

    /// The file's writer while the disk has room.
    pub struct Room<'a> {
        pub file: &'a File,
        pub capacity: u64,
    }

    impl Write for Room<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let used = self.file.metadata()?.len();
            let left = self.capacity.saturating_sub(used) as usize;
            if left == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            (&*self.file).write(&buf[..buf.len().min(left)])
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl TinyDisk {
        /// A fresh file `name` in a scratch directory, on a disk of `capacity` bytes.
        pub fn new(name: &str, capacity: u64) -> Self {
            let dir = std::env::temp_dir().join(format!("slowscan-sink-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            let _ = std::fs::remove_file(&path);
            Self {
                file: open_append(&path).unwrap(),
                path,
                capacity: Rc::new(Cell::new(capacity)),
            }
        }

        pub fn contents(path: &Path) -> String {
            std::fs::read_to_string(path).unwrap()
        }
    }

    impl LineSink for TinyDisk {
        fn write_line(&mut self, line: &str) -> io::Result<()> {
            let mut room = Room {
                file: &self.file,
                capacity: self.capacity.get(),
            };
            append_whole(&self.file, &mut room, line.as_bytes())
        }

        fn reopen(&mut self) -> anyhow::Result<()> {
            self.file = open_append(&self.path)?;
            Ok(())
        }

        fn describe(&self) -> String {
            self.path.display().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{tiny_disk::TinyDisk, *};

    #[test]
    fn a_write_that_runs_out_of_space_is_cut_back_whole() {
        let mut d = TinyDisk::new("torn", 6);
        d.write_line("first\n").unwrap();
        // Room for half the next line: the half that landed is cut back.
        d.capacity.set(9);
        let e = d.write_line("second\n").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(TinyDisk::contents(&d.path), "first\n");
        // Space returns: the retry is the whole line, right after the first.
        d.capacity.set(1 << 20);
        d.write_line("second\n").unwrap();
        assert_eq!(TinyDisk::contents(&d.path), "first\nsecond\n");
        std::fs::remove_file(&d.path).unwrap();
    }

    #[test]
    fn a_file_sink_appends_and_reopens_by_name() {
        let dir = std::env::temp_dir().join(format!("slowscan-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        let mut s = AlertSink::open(&path).unwrap();
        assert_eq!(s.describe(), path.display().to_string());
        s.write_line("one\n").unwrap();
        // logrotate's `create`: renamed away, then SIGHUP.
        let rotated = dir.join("alerts.jsonl.1");
        std::fs::rename(&path, &rotated).unwrap();
        s.reopen().unwrap();
        s.write_line("two\n").unwrap();
        assert_eq!(TinyDisk::contents(&rotated), "old\none\n");
        assert_eq!(TinyDisk::contents(&path), "two\n");
        std::fs::remove_file(&path).unwrap();
        std::fs::remove_file(&rotated).unwrap();
    }
}
