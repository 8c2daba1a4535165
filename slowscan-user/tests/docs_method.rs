//! docs/method.md maps every rule R1–R8 to the code that implements it and
//! the tests that pin it: each path it names exists, and each test it names
//! by function is defined somewhere in the repository.
use std::{
    fs,
    path::{Path, PathBuf},
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `.rs` file below `dir`, skipping build output.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The backquoted words of `text`.
fn quoted(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

#[test]
fn every_rule_maps_to_code_and_tests_that_exist() {
    let root = root();
    let doc = fs::read_to_string(root.join("docs/method.md")).expect("docs/method.md");
    let mut files = Vec::new();
    for d in [
        "slowscan-common",
        "slowscan-ebpf",
        "slowscan-user",
        "tests",
        "xtask",
    ] {
        sources(&root.join(d), &mut files);
    }
    let code: String = files
        .iter()
        .map(|f| fs::read_to_string(f).unwrap())
        .collect();
    let mut problems = Vec::new();
    for n in 1..=8 {
        let start = doc
            .find(&format!("**R{n} "))
            .unwrap_or_else(|| panic!("docs/method.md has no section R{n}"));
        let end = doc[start + 4..]
            .find("\n**R")
            .map_or(doc.len(), |i| start + 4 + i);
        let section = &doc[start..end];
        let line = |tag: &str| -> String {
            // The tagged bullet and its continuation lines.
            let Some(i) = section.find(tag) else {
                return String::new();
            };
            let rest = &section[i..];
            let stop = rest[1..].find("\n- ").map_or(rest.len(), |j| j + 1);
            rest[..stop].to_string()
        };
        let (code_line, tests_line) = (line("- Code:"), line("- Tests:"));
        let paths: Vec<&str> = quoted(&code_line)
            .into_iter()
            .chain(quoted(&tests_line))
            .filter(|w| w.contains('/'))
            .collect();
        if paths.is_empty() {
            problems.push(format!("R{n}: names no source file"));
        }
        for p in paths {
            if !root.join(p).exists() {
                problems.push(format!("R{n}: {p} does not exist"));
            }
        }
        let tests: Vec<&str> = quoted(&tests_line)
            .into_iter()
            .filter(|w| !w.contains('/') && !w.ends_with('*') && w.contains('_'))
            .collect();
        if tests.is_empty() && !tests_line.contains('/') {
            problems.push(format!("R{n}: names no test"));
        }
        for t in tests {
            if !code.contains(&format!("fn {t}(")) {
                problems.push(format!("R{n}: no test function {t}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs/method.md:\n{}",
        problems.join("\n")
    );
}
