//! Conn-log files: plain or gzipped (by magic bytes, not by name), TSV or
//! JSON lines (by content), one line at a time.

use std::{
    fs::File,
    io::{self, BufRead, BufReader, Read},
    path::{Path, PathBuf},
};

use flate2::read::MultiGzDecoder;

use super::parse::{NEEDED, Parsed, Problem, TsvLayout, parse_json};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a file cannot be read as a conn.log (or stopped being readable).
#[derive(Debug, thiserror::Error)]
pub enum ConnLogError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a Zeek conn.log ({why})")]
    NotConnLog { path: PathBuf, why: String },
    #[error(
        "{path}: a Zeek log without the fields this method needs: missing {}",
        missing.join(", ")
    )]
    MissingFields {
        path: PathBuf,
        missing: Vec<&'static str>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Tsv,
    Json,
}

/// Opens `path`, gunzipping when it starts with gzip's magic bytes.
pub fn open_decoded(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    let mut f = BufReader::with_capacity(1 << 16, File::open(path)?);
    let gz = f.fill_buf()?.starts_with(&GZIP_MAGIC);
    Ok(if gz {
        Box::new(BufReader::with_capacity(1 << 18, MultiGzDecoder::new(f)))
    } else {
        Box::new(BufReader::with_capacity(1 << 18, f))
    })
}

/// The first bytes of a file, decoded (for telling conn logs from captures).
pub fn sniff(path: &Path) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(64);
    open_decoded(path)?.take(64).read_to_end(&mut head)?;
    Ok(head)
}

/// One conn.log being read.
pub struct ConnLogFile {
    path: PathBuf,
    src: Box<dyn BufRead + Send>,
    pub format: Format,
    layout: TsvLayout,
    line: Vec<u8>,
    /// JSON: which needed keys any line has carried (bit per [`NEEDED`]).
    json_seen: u8,
    json_tcp: bool,
}

/// A line read: a record or a problem (`None` at the end of the file).
pub type Next = Result<Option<Parsed>, ConnLogError>;

impl ConnLogFile {
    /// Opens `path` and reads up to its first record: the format, and for
    /// TSV the header, which must name every needed field.
    pub fn open(path: &Path) -> Result<ConnLogFile, ConnLogError> {
        let io = |source| ConnLogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut src = open_decoded(path).map_err(io)?;
        let first = loop {
            let buf = src.fill_buf().map_err(io)?;
            match buf.iter().position(|c| !c.is_ascii_whitespace()) {
                Some(i) => break buf[i],
                None if buf.is_empty() => break 0,
                None => {
                    let n = buf.len();
                    src.consume(n);
                }
            }
        };
        let format = match first {
            b'#' | 0 => Format::Tsv,
            b'{' => Format::Json,
            _ => {
                return Err(ConnLogError::NotConnLog {
                    path: path.to_path_buf(),
                    why: "neither a `#` header of Zeek's TSV logs nor a JSON object".into(),
                });
            }
        };
        let mut f = ConnLogFile {
            path: path.to_path_buf(),
            src,
            format,
            layout: TsvLayout::default(),
            line: Vec::with_capacity(512),
            json_seen: 0,
            json_tcp: false,
        };
        if format == Format::Tsv {
            f.read_header()?;
        }
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_line(&mut self) -> Result<bool, ConnLogError> {
        self.line.clear();
        let n = self
            .src
            .read_until(b'\n', &mut self.line)
            .map_err(|source| ConnLogError::Io {
                path: self.path.clone(),
                source,
            })?;
        while matches!(self.line.last(), Some(b'\n' | b'\r')) {
            self.line.pop();
        }
        Ok(n > 0)
    }

    /// Reads header lines up to the first record (left unread).
    fn read_header(&mut self) -> Result<(), ConnLogError> {
        loop {
            let buf = self.src.fill_buf().map_err(|source| ConnLogError::Io {
                path: self.path.clone(),
                source,
            })?;
            if buf.is_empty() || buf[0] != b'#' {
                break;
            }
            self.read_line()?;
            self.layout.header(&self.line);
        }
        let empty = self.src.fill_buf().map(<[u8]>::is_empty).unwrap_or(false);
        if !self.layout.has_fields() {
            if empty {
                return Ok(());
            }
            return Err(ConnLogError::NotConnLog {
                path: self.path.clone(),
                why: format!(
                    "no `#fields` header before the first record, so the fields it needs \
                     ({}) cannot be located",
                    NEEDED.join(", ")
                ),
            });
        }
        let missing = self.layout.missing();
        if !missing.is_empty() {
            return Err(ConnLogError::MissingFields {
                path: self.path.clone(),
                missing,
            });
        }
        Ok(())
    }

    /// The next record line, read.
    pub fn next_line(&mut self) -> Next {
        loop {
            if !self.read_line()? {
                return self.end();
            }
            if self.line.is_empty() {
                continue;
            }
            match self.format {
                Format::Tsv => {
                    if self.line[0] == b'#' {
                        self.layout.header(&self.line);
                        if self.line.starts_with(b"#fields") {
                            let missing = self.layout.missing();
                            if !missing.is_empty() {
                                return Err(ConnLogError::MissingFields {
                                    path: self.path.clone(),
                                    missing,
                                });
                            }
                        }
                        continue;
                    }
                    if !self.layout.has_fields() {
                        return Ok(Some(Err(Problem::Malformed)));
                    }
                    return Ok(Some(self.layout.parse(&self.line)));
                }
                Format::Json => {
                    let (present, parsed) = parse_json(&self.line);
                    self.json_seen |= present;
                    self.json_tcp |= !matches!(parsed, Err(Problem::NotTcp | Problem::Malformed));
                    return Ok(Some(parsed));
                }
            }
        }
    }

    /// JSON leaves unset keys out, so a JSON file is judged whole: one whose
    /// TCP lines never carried a needed key is not a conn.log.
    fn end(&mut self) -> Next {
        if self.format == Format::Json && self.json_tcp && self.json_seen != 0x7f {
            let missing = NEEDED
                .iter()
                .enumerate()
                .filter(|(i, _)| self.json_seen & (1 << i) == 0)
                .map(|(_, n)| *n)
                .collect();
            return Err(ConnLogError::MissingFields {
                path: self.path.clone(),
                missing,
            });
        }
        Ok(None)
    }
}
