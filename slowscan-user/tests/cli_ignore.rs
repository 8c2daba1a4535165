//! `slowscan ignore …` (R4.6) error messages, run as the real binary. These
//! need no sensor and no privileges; the live path (a second process editing
//! a sensor's pinned maps) is `tests/tests/xdp_attach.rs` in slowscan-tests.

use slowscan_testkit::Cli;

const SLOWSCAN: Cli = Cli(env!("CARGO_BIN_EXE_slowscan"));

fn failing(args: &[&str]) -> String {
    SLOWSCAN.failing(args)
}

#[test]
fn ignore_without_a_sensor_names_the_interface() {
    for args in [
        &["ignore", "list", "--iface", "ssnosuchif0"][..],
        &["ignore", "add", "198.51.100.0/24", "--iface", "ssnosuchif0"][..],
        &[
            "ignore",
            "remove",
            "2001:db8::/32",
            "--iface",
            "ssnosuchif0",
        ][..],
    ] {
        let err = failing(args);
        assert!(
            err.contains("no slowscan sensor is running on ssnosuchif0"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn ignore_bad_prefixes_say_what_to_write() {
    let err = failing(&["ignore", "add", "198.51.100.7/24", "--iface", "ssnosuchif0"]);
    assert!(
        err.contains("198.51.100.7/24")
            && err.contains("host bits")
            && err.contains("198.51.100.0/24")
            && err.contains("198.51.100.7/32"),
        "{err}"
    );
    let err = failing(&["ignore", "add", "2001:db8::/129", "--iface", "ssnosuchif0"]);
    assert!(err.contains("longer than 128"), "{err}");
    let err = failing(&[
        "ignore",
        "remove",
        "scanner.example",
        "--iface",
        "ssnosuchif0",
    ]);
    assert!(
        err.contains("\"scanner.example\" is not an IPv4 or IPv6 address"),
        "{err}"
    );
    // Nothing to add is a usage error, not a silent success.
    let err = failing(&["ignore", "add", "--iface", "ssnosuchif0"]);
    assert!(err.contains("PREFIXES"), "{err}");
}
