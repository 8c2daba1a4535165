//! Following a live conn.log like `tail -F` (`slowscan follow-zeek`).
//!
//! Zeek appends lines to `current/conn.log` and rotates it every hour: the
//! file is closed, renamed (`conn.HH:MM:SS-HH:MM:SS.log`, later moved and
//! gzipped) and a new `conn.log` with a fresh header is created. [`Follow`]
//! reads the open file to its end and, only there, looks at the path: a
//! different file there (device and inode) is a rotation — the old file,
//! still open, is read to its end once more, then the new one from its
//! start; a file shorter than what was read is a truncation (read again
//! from the start); no file there means the rotation is under way (the old
//! one is kept). A line is handed on only once its newline came; a partial
//! line left at a rotation is dropped and counted.
//!
//! TSV (`#fields` of each file) and JSON lines are told apart per file by
//! its first byte, as in [`super::read`]. Gzipped files are not followed
//! (Zeek writes the live log plain).

use std::{
    fs::File,
    io,
    os::unix::fs::{FileExt, MetadataExt},
    path::{Path, PathBuf},
};

use serde::Serialize;

use super::{
    parse::{Parsed, Problem, TsvLayout, parse_json},
    read::{ConnLogError, Format},
};

/// What following did besides reading lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FollowStats {
    /// Files opened (the first, and one per rotation or truncation).
    pub files: u64,
    /// The file was replaced by a new one (Zeek's rotation).
    pub rotations: u64,
    /// The file became shorter than what was read (truncated in place).
    pub truncations: u64,
    /// Partial last lines dropped when their file was left.
    pub partial_dropped: u64,
    /// Bytes read.
    pub bytes: u64,
}

/// One open file being read.
struct Tail {
    file: File,
    dev: u64,
    ino: u64,
    /// Bytes consumed from `file`.
    offset: u64,
    /// The bytes after the last newline.
    partial: Vec<u8>,
    format: Option<Format>,
    layout: TsvLayout,
    /// Drop everything up to the first newline (started mid-line).
    skip_fragment: bool,
}

pub struct Follow {
    path: PathBuf,
    tail: Option<Tail>,
    /// The first file is read from its end (`false`: from its start).
    at_end: bool,
    chunk: Vec<u8>,
    pub stats: FollowStats,
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> ConnLogError + '_ {
    move |source| ConnLogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Follow {
    /// Follows `path`; the file there now is read from its end when
    /// `from_start` is false (its header still read), every later one from
    /// its start. A missing file is waited for.
    pub fn new(path: &Path, from_start: bool) -> Follow {
        Follow {
            path: path.to_path_buf(),
            tail: None,
            at_end: !from_start,
            chunk: vec![0; 1 << 20],
            stats: FollowStats::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads what came, at most about `budget` bytes, handing every
    /// complete line to `on_line`; the bytes read (0: nothing new).
    pub fn poll(
        &mut self,
        budget: usize,
        on_line: &mut dyn FnMut(Parsed),
    ) -> Result<usize, ConnLogError> {
        if self.tail.is_none() && !self.open(on_line)? {
            return Ok(0);
        }
        let mut total = 0;
        while total < budget {
            let n = self.read_some(on_line)?;
            if n == 0 {
                break;
            }
            total += n;
        }
        if total > 0 {
            return Ok(total);
        }
        // At the end of the open file: has the path moved on?
        let tail = self.tail.as_ref().expect("open");
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        if (meta.dev(), meta.ino()) != (tail.dev, tail.ino) {
            // What the writer flushed between our last read and its close.
            while self.read_some(on_line)? > 0 {}
            self.stats.rotations += 1;
            self.leave();
            tracing::info!("{}: rotated; following the new file", self.path.display());
            return self.poll(budget, on_line);
        }
        if meta.len() < tail.offset {
            self.stats.truncations += 1;
            self.leave();
            tracing::warn!(
                "{}: truncated; reading it again from the start",
                self.path.display()
            );
            return self.poll(budget, on_line);
        }
        Ok(0)
    }

    fn leave(&mut self) {
        if let Some(t) = self.tail.take()
            && !t.partial.is_empty()
        {
            self.stats.partial_dropped += 1;
        }
    }

    /// Opens the file at the path (false: none there yet).
    fn open(&mut self, on_line: &mut dyn FnMut(Parsed)) -> Result<bool, ConnLogError> {
        let err = io_err(&self.path);
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(err(e)),
        };
        let meta = file.metadata().map_err(&err)?;
        let mut head = [0u8; 2];
        let n = file.read_at(&mut head, 0).map_err(&err)?;
        if n == 2 && head == [0x1f, 0x8b] {
            return Err(ConnLogError::NotConnLog {
                path: self.path.clone(),
                why: "gzipped: a live conn.log is followed plain; replay rotated gzipped logs"
                    .into(),
            });
        }
        drop(err);
        self.stats.files += 1;
        self.tail = Some(Tail {
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            offset: 0,
            partial: Vec::new(),
            format: None,
            layout: TsvLayout::default(),
            skip_fragment: false,
        });
        if std::mem::take(&mut self.at_end) {
            self.skip_to_end(meta.len(), on_line)?;
        }
        tracing::info!(
            "{}: reading from byte {}",
            self.path.display(),
            self.tail.as_ref().expect("open").offset
        );
        Ok(true)
    }

    /// Reads the header (TSV) and moves to `end`, dropping the records
    /// before it: the state carries the history.
    fn skip_to_end(
        &mut self,
        end: u64,
        on_line: &mut dyn FnMut(Parsed),
    ) -> Result<(), ConnLogError> {
        let err = io_err(&self.path);
        let t = self.tail.as_mut().expect("open");
        // The header lines (TSV), up to the first record or `end`.
        let mut at = 0u64;
        let mut line = Vec::new();
        let mut records = false;
        let mut pos = 0u64;
        'header: while pos < end {
            let want = self.chunk.len().min((end - pos) as usize);
            let n = t.file.read_at(&mut self.chunk[..want], pos).map_err(&err)?;
            if n == 0 {
                break;
            }
            pos += n as u64;
            for &c in &self.chunk[..n] {
                if c != b'\n' {
                    line.push(c);
                    continue;
                }
                let trimmed = line.trim_ascii();
                if !trimmed.is_empty() && trimmed[0] != b'#' {
                    records = true;
                    t.format.get_or_insert(if trimmed[0] == b'{' {
                        Format::Json
                    } else {
                        Format::Tsv
                    });
                    break 'header;
                }
                at += line.len() as u64 + 1;
                if !trimmed.is_empty() {
                    t.handle(&self.path, &line, on_line)?;
                }
                line.clear();
            }
            if n < want {
                break;
            }
        }
        if !records {
            // Only (complete) header lines so far: go on from there.
            t.offset = at;
            return Ok(());
        }
        // A record's line there: from the end, after the newline before it.
        let mut last = [0u8; 1];
        t.file.read_at(&mut last, end - 1).map_err(&err)?;
        t.skip_fragment = last[0] != b'\n';
        t.offset = end;
        Ok(())
    }

    /// One read of the open file; the bytes read.
    fn read_some(&mut self, on_line: &mut dyn FnMut(Parsed)) -> Result<usize, ConnLogError> {
        let t = self.tail.as_mut().expect("open");
        let n = t
            .file
            .read_at(&mut self.chunk, t.offset)
            .map_err(io_err(&self.path))?;
        if n == 0 {
            return Ok(0);
        }
        t.offset += n as u64;
        self.stats.bytes += n as u64;
        let data = &self.chunk[..n];
        let mut start = 0;
        for (i, &c) in data.iter().enumerate() {
            if c != b'\n' {
                continue;
            }
            let piece = &data[start..i];
            start = i + 1;
            if std::mem::take(&mut t.skip_fragment) {
                t.partial.clear();
                continue;
            }
            if t.partial.is_empty() {
                t.handle(&self.path, piece, on_line)?;
            } else {
                let mut whole = std::mem::take(&mut t.partial);
                whole.extend_from_slice(piece);
                t.handle(&self.path, &whole, on_line)?;
            }
        }
        t.partial.extend_from_slice(&data[start..]);
        Ok(n)
    }
}

impl Tail {
    /// One complete line (without its newline).
    fn handle(
        &mut self,
        path: &Path,
        line: &[u8],
        on_line: &mut dyn FnMut(Parsed),
    ) -> Result<(), ConnLogError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(&first) = line.iter().find(|c| !c.is_ascii_whitespace()) else {
            return Ok(());
        };
        let format = *self.format.get_or_insert(if first == b'{' {
            Format::Json
        } else {
            Format::Tsv
        });
        match format {
            Format::Tsv if first == b'#' => {
                self.layout.header(line);
                if line.starts_with(b"#fields") {
                    let missing = self.layout.missing();
                    if !missing.is_empty() {
                        return Err(ConnLogError::MissingFields {
                            path: path.to_path_buf(),
                            missing,
                        });
                    }
                }
            }
            Format::Tsv if !self.layout.has_fields() => on_line(Err(Problem::Malformed)),
            Format::Tsv => on_line(self.layout.parse(line)),
            Format::Json => on_line(parse_json(line).1),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const HEADER: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n\
        #unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\t\
        id.resp_p\tproto\thistory\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\n";

    fn line(ts: u64, port: u16) -> String {
        format!("{ts}.000000\tC1\t203.0.113.5\t40000\t198.51.100.1\t{port}\ttcp\tS\n")
    }

    fn append(p: &Path, s: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(s.as_bytes()).unwrap();
    }

    fn ports(f: &mut Follow) -> Vec<u16> {
        let mut got = Vec::new();
        while f
            .poll(1 << 20, &mut |p| {
                got.push(p.map(|c| c.resp.port).unwrap_or(0))
            })
            .unwrap()
            > 0
        {}
        got
    }

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("slowscan-follow-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn follows_partial_lines_rotation_and_a_new_header() {
        let d = dir("rotate");
        let p = d.join("conn.log");
        append(&p, HEADER);
        append(&p, &line(1_700_000_000, 1));
        // From the end: the line already there is history.
        let mut f = Follow::new(&p, false);
        assert_eq!(ports(&mut f), Vec::<u16>::new());
        let l2 = line(1_700_000_001, 2);
        append(&p, &l2[..10]);
        assert_eq!(ports(&mut f), Vec::<u16>::new(), "a partial line waits");
        append(&p, &l2[10..]);
        append(&p, &line(1_700_000_002, 3));
        assert_eq!(ports(&mut f), vec![2, 3]);
        // Zeek's rotation: rename, a line flushed late into the old file,
        // a new file with its own header (other columns).
        append(&p, &line(1_700_000_003, 4));
        std::fs::rename(&p, d.join("conn.10:00:00-11:00:00.log")).unwrap();
        assert_eq!(ports(&mut f), vec![4]);
        append(
            &d.join("conn.10:00:00-11:00:00.log"),
            &line(1_700_000_004, 5),
        );
        append(
            &p,
            "#separator \\x09\n#fields\tts\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\thistory\n\
             1700000005.0\t203.0.113.5\t40000\t198.51.100.1\t6\ttcp\tS\n",
        );
        assert_eq!(ports(&mut f), vec![5, 6]);
        assert_eq!(f.stats.rotations, 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn json_lines_from_the_start_and_a_truncation() {
        let d = dir("json");
        let p = d.join("conn.log");
        let j = |port: u16| {
            format!(
                "{{\"ts\":1700000000.5,\"id.orig_h\":\"203.0.113.5\",\"id.orig_p\":40000,\
                 \"id.resp_h\":\"198.51.100.1\",\"id.resp_p\":{port},\"proto\":\"tcp\",\"history\":\"S\"}}\n"
            )
        };
        append(&p, &j(1));
        let mut f = Follow::new(&p, true);
        assert_eq!(ports(&mut f), vec![1]);
        std::fs::write(&p, "").unwrap();
        assert_eq!(ports(&mut f), Vec::<u16>::new());
        append(&p, &j(2));
        assert_eq!(ports(&mut f), vec![2]);
        assert_eq!(f.stats.truncations, 1);
        // From the end, at a line's end or mid-line (the fragment dropped).
        let mut g = Follow::new(&p, false);
        assert_eq!(ports(&mut g), Vec::<u16>::new());
        append(&p, &j(3)[..20]);
        let mut h = Follow::new(&p, false);
        assert_eq!(ports(&mut h), Vec::<u16>::new());
        append(&p, &j(3)[20..]);
        append(&p, &j(4));
        assert_eq!(ports(&mut g), vec![3, 4]);
        assert_eq!(ports(&mut h), vec![4]);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
