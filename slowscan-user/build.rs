//! Embeds the XDP object built by `cargo xtask build-ebpf`. When it has not been
//! built, the library still compiles (replay and the engine need no kernel
//! program) and loading fails at run time with a message saying what to run.
use std::{env, fs, path::PathBuf};

fn main() {
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
