//! Running a built binary from a test, and a directory of the test's own.
use std::{
    ffi::{OsStr, OsString},
    fs,
    ops::Deref,
    path::{Path, PathBuf},
    process::{Command, Output},
};

/// A binary under test, by path: `Cli(env!("CARGO_BIN_EXE_slowscan"))`.
/// Runs it with `SLOWSCAN_LOG=warn`, so stderr carries only what matters.
pub struct Cli(pub &'static str);

impl Cli {
    pub fn run<S: AsRef<OsStr>>(
        &self,
        args: impl IntoIterator<Item = S>,
    ) -> (Output, Vec<OsString>) {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = Command::new(self.0)
            .args(&args)
            .env("SLOWSCAN_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.0));
        (out, args)
    }

    /// The run's output; it must succeed.
    pub fn ok<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Output {
        let (out, args) = self.run(args);
        assert!(
            out.status.success(),
            "slowscan {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The run's stderr; it must fail.
    pub fn failing<S: AsRef<OsStr>>(&self, args: impl IntoIterator<Item = S>) -> String {
        let (out, args) = self.run(args);
        assert!(!out.status.success(), "slowscan {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// A fresh directory (`slowscan-NAME-PID` under the system's temporary
/// directory), removed when the test passes; kept for a look when it fails,
/// when [`TempDir::keep`] was called, or with `SLOWSCAN_KEEP_TEMP` set.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("slowscan-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        Self { path, keep: false }
    }

    /// Keeps the directory (a failure found without panicking).
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep || std::thread::panicking() || std::env::var_os("SLOWSCAN_KEEP_TEMP").is_some()
        {
            eprintln!("kept {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}
