//! Embeds the XDP object built by `cargo xtask build-ebpf`. When it has not been
//! built, the library still compiles (replay and the engine need no kernel
//! program) and loading fails at run time with a message saying what to run.
//!
//! Also sets `SLOWSCAN_GIT_COMMIT` for `slowscan --version`: the
//! `SLOWSCAN_GIT_COMMIT` environment variable if set (a build from a source
//! tarball), else `git rev-parse --short HEAD`, else `unknown`.
use std::{env, fs, path::PathBuf, process::Command};

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn commit() -> String {
    println!("cargo:rerun-if-env-changed=SLOWSCAN_GIT_COMMIT");
    if let Some(c) = env::var("SLOWSCAN_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
    {
        return c;
    }
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    // Rebuild when HEAD moves: HEAD itself, the branch it names, packed refs
    // (paths from git, since a worktree's HEAD is not under ./.git).
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for w in watch {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &w]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    commit
}

fn main() {
    println!("cargo:rustc-env=SLOWSCAN_GIT_COMMIT={}", commit());
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let obj = env::var_os("SLOWSCAN_EBPF_OBJECT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            manifest.join("../slowscan-ebpf/target/bpfel-unknown-none/release/slowscan")
        });
    println!("cargo:rerun-if-env-changed=SLOWSCAN_EBPF_OBJECT");
    println!("cargo:rerun-if-changed={}", obj.display());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("slowscan.bpf.o");
    match fs::read(&obj) {
        Ok(bytes) => fs::write(&out, bytes).unwrap(),
        Err(_) => fs::write(&out, b"").unwrap(),
    }
}
