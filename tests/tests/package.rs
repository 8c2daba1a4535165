//! The Debian package of `cargo xtask package` (xtask/src/package.rs),
//! installed for real with dpkg: `cargo xtask test` builds it first and
//! passes its path in `SLOWSCAN_DEB`. Checks the installed binary's version
//! (with the commit), the systemd unit (`systemd-analyze verify` on an
//! instance, with a broken unit as a control that verify does catch
//! errors here), the logrotate snippet, the example config (read by the
//! installed binary), man pages and completions; then removes and purges it.
//!
//! Root, and under `CI=true` the package path, are required (no skipping).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use slowscan_tests::{is_ci, privileged, sh, tools_present};

const TOOLS: &[&str] = &[
    "dpkg",
    "dpkg-query",
    "systemd-analyze",
    "logrotate",
    "bash",
    "gzip",
];

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("running {args:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn installed(pkg: &str) -> bool {
    let o = run(&["dpkg-query", "-W", "-f=${Status}", pkg]);
    String::from_utf8_lossy(&o.stdout).contains("install ok installed")
}

/// Purges the package when the test ends, passing or not.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = run(&["dpkg", "--purge", "slowscan"]);
    }
}

/// The commit `slowscan --version` must name: the source tree's HEAD.
fn head_commit() -> String {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

#[test]
fn debian_package_installs_verifies_and_purges() {
    let name = "debian_package_installs_verifies_and_purges";
    if !privileged(name) || !tools_present(name, TOOLS) {
        return;
    }
    let deb = match std::env::var_os("SLOWSCAN_DEB") {
        Some(p) => PathBuf::from(p),
        None if is_ci() => {
            panic!("{name}: SLOWSCAN_DEB is not set; run it through `cargo xtask test`")
        }
        None => {
            eprintln!("SKIP {name}: set SLOWSCAN_DEB (`cargo xtask package` prints the path)");
            return;
        }
    };
    assert!(deb.is_file(), "{} is not a file", deb.display());
    if installed("slowscan") {
        // Someone's real installation: not ours to remove.
        assert!(
            !is_ci(),
            "{name}: a slowscan package is already installed on a CI machine"
        );
        eprintln!("SKIP {name}: a slowscan package is installed here; remove it first");
        return;
    }

    // The control data.
    let deb_s = deb.to_str().unwrap();
    let info = text(&sh(&["dpkg-deb", "--field", deb_s]));
    for want in [
        "Package: slowscan",
        "Depends: libc6 (>= 2.",
        "Recommends: logrotate",
    ] {
        assert!(info.contains(want), "no `{want}` in:\n{info}");
    }
    let conffiles = text(&sh(&["dpkg-deb", "--info", deb_s, "conffiles"]));
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        [
            "/etc/slowscan/slowscan.toml.example",
            "/etc/logrotate.d/slowscan"
        ]
    );

    sh(&["dpkg", "-i", deb_s]);
    let _purge = Installed;
    assert!(installed("slowscan"));

    // The binary, with the commit it was built from.
    let v = sh(&["/usr/bin/slowscan", "--version"]);
    let v = String::from_utf8_lossy(&v.stdout).trim().to_string();
    let commit = head_commit();
    assert_eq!(
        v,
        format!("slowscan {} (commit {commit})", env!("CARGO_PKG_VERSION")),
        "installed binary's version"
    );

    // Every file the package promises.
    let files = text(&sh(&["dpkg", "-L", "slowscan"]));
    for want in [
        "/usr/bin/slowscan",
        "/lib/systemd/system/slowscan@.service",
        "/etc/slowscan/slowscan.toml.example",
        "/etc/logrotate.d/slowscan",
        "/usr/share/man/man1/slowscan.1.gz",
        "/usr/share/man/man1/slowscan-run.1.gz",
        "/usr/share/man/man1/slowscan-replay.1.gz",
        "/usr/share/bash-completion/completions/slowscan",
        "/usr/share/zsh/vendor-completions/_slowscan",
        "/usr/share/fish/vendor_completions.d/slowscan.fish",
        "/usr/share/doc/slowscan/alerts.md",
        "/usr/share/doc/slowscan/alert.schema.json",
        "/usr/share/doc/slowscan/grafana/slowscan.json",
        "/usr/share/doc/slowscan/copyright",
    ] {
        assert!(
            files.lines().any(|l| l == want),
            "{want} not installed:\n{files}"
        );
        assert!(Path::new(want).exists(), "{want} listed but missing");
    }

    // The unit, as an instance: clean (no warning at all) …
    let verify = run(&[
        "systemd-analyze",
        "verify",
        "--man=no",
        "slowscan@eth1.service",
    ]);
    assert!(
        verify.status.success() && text(&verify).trim().is_empty(),
        "systemd-analyze verify slowscan@eth1.service:\n{}",
        text(&verify)
    );
    let unit = std::fs::read_to_string("/lib/systemd/system/slowscan@.service").unwrap();
    for want in [
        "ExecStart=/usr/bin/slowscan run --config /etc/slowscan/%i.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "StateDirectory=slowscan",
        "LogsDirectory=slowscan",
    ] {
        assert!(unit.lines().any(|l| l == want), "unit lacks `{want}`");
    }
    // … and the same check catches a broken one here (a missing binary, an
    // unknown directive), so its silence above means something.
    let broken = Path::new("/etc/systemd/system/slowscan-broken@.service");
    std::fs::write(
        broken,
        unit.replace("/usr/bin/slowscan run", "/usr/bin/slowscan-missing run")
            .replace("Restart=on-failure", "Restart=on-failure\nRestartt=always"),
    )
    .unwrap();
    let bad = run(&[
        "systemd-analyze",
        "verify",
        "--man=no",
        "slowscan-broken@eth1.service",
    ]);
    std::fs::remove_file(broken).unwrap();
    let bad_text = text(&bad);
    assert!(!bad.status.success(), "broken unit verified: {bad_text}");
    assert!(
        bad_text.contains("slowscan-missing") && bad_text.contains("Restartt"),
        "verify did not name both faults:\n{bad_text}"
    );

    // logrotate reads the snippet (debug mode: nothing is rotated).
    let lr = run(&["logrotate", "--debug", "/etc/logrotate.d/slowscan"]);
    let lr_text = text(&lr);
    assert!(lr.status.success(), "logrotate -d:\n{lr_text}");
    assert!(
        lr_text.contains("/var/log/slowscan/*.jsonl") && !lr_text.contains("error"),
        "logrotate -d:\n{lr_text}"
    );

    // The example config, read by the installed binary: every key is known
    // and every value valid, so it gets as far as looking for the interface.
    let dir = std::env::temp_dir().join(slowscan_tests::unique("ssdeb"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("none0.toml");
    let example = std::fs::read_to_string("/etc/slowscan/slowscan.toml.example").unwrap();
    let state = dir.join("none0.state");
    let alerts = dir.join("none0.alerts.jsonl");
    std::fs::write(
        &cfg,
        example
            .replace("iface = \"eth0\"", "iface = \"ssnone0\"")
            .replace("/var/lib/slowscan/eth0.state", state.to_str().unwrap())
            .replace(
                "/var/log/slowscan/eth0.alerts.jsonl",
                alerts.to_str().unwrap(),
            ),
    )
    .unwrap();
    let out = run(&[
        "/usr/bin/slowscan",
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--metrics",
        "off",
    ]);
    let err = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("ssnone0") && err.contains("does not exist") && !err.contains("config file"),
        "the example config was refused, or the wrong error:\n{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // Man pages (roff, with every option) and completions that load.
    let man = text(&sh(&[
        "gzip",
        "-dc",
        "/usr/share/man/man1/slowscan-run.1.gz",
    ]));
    assert!(
        man.contains(".TH slowscan-run 1"),
        "{}",
        &man[..200.min(man.len())]
    );
    for opt in ["iface", "detector", "state", "checkpoint\\-every"] {
        assert!(
            man.contains(&format!("\\-\\-{opt}")),
            "slowscan-run.1 lacks --{opt}"
        );
    }
    let top = text(&sh(&["gzip", "-dc", "/usr/share/man/man1/slowscan.1.gz"]));
    assert!(
        top.contains(&commit),
        "slowscan.1 does not name the commit {commit}"
    );
    let complete = sh(&[
        "bash",
        "-c",
        "source /usr/share/bash-completion/completions/slowscan && complete -p slowscan",
    ]);
    assert!(
        String::from_utf8_lossy(&complete.stdout).contains("slowscan"),
        "{}",
        text(&complete)
    );
    let zsh = std::fs::read_to_string("/usr/share/zsh/vendor-completions/_slowscan").unwrap();
    assert!(
        zsh.starts_with("#compdef slowscan"),
        "{}",
        &zsh[..40.min(zsh.len())]
    );
    let fish =
        std::fs::read_to_string("/usr/share/fish/vendor_completions.d/slowscan.fish").unwrap();
    assert!(fish.contains("complete -c slowscan"), "fish completions");

    // Removal takes the binary; purge the configuration too.
    sh(&["dpkg", "-r", "slowscan"]);
    assert!(!Path::new("/usr/bin/slowscan").exists());
    assert!(
        Path::new("/etc/slowscan/slowscan.toml.example").exists(),
        "dpkg -r keeps conffiles"
    );
    sh(&["dpkg", "--purge", "slowscan"]);
    assert!(!installed("slowscan"));
    assert!(!Path::new("/etc/slowscan/slowscan.toml.example").exists());
    assert!(!Path::new("/lib/systemd/system/slowscan@.service").exists());
}
