//! docs/alert.schema.json against real alerts: `slowscan replay` (the binary)
//! over a generated capture with a slow scanner, under sliding, tumbling and
//! `none` windows, and the same capture through the library engine with
//! `Alert::to_json_line_for` (observer fields, as the live sensor writes).
//! The lab's live alerts are checked too (tests/tests/e2e_lab.rs). A few
//! broken alerts must fail, so the schema is known to bite.

mod replay_gen;

use std::{ffi::OsStr, fs, path::PathBuf};

use replay_gen::{SCANNER, Traffic, write_capture};
use serde_json::Value;
use slowscan::{
    capture::CaptureReader,
    engine::{Engine, EngineConfig, Observer},
    frame::{FrameOutcome, parse_frame_info},
};
use slowscan_testkit::{Cli, TempDir};

fn schema() -> jsonschema::Validator {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/alert.schema.json");
    let text = fs::read_to_string(path).unwrap();
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("a valid JSON Schema")
}

fn check(v: &jsonschema::Validator, line: &str) -> Value {
    let alert: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    let errors: Vec<String> = v.iter_errors(&alert).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{line}\nfails the schema: {errors:#?}");
    alert
}

const SLOWSCAN: Cli = Cli(env!("CARGO_BIN_EXE_slowscan"));

/// A generated capture with a slow scanner, in a directory of its own.
fn capture(name: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(&format!("schema-{name}"));
    let path = dir.join("generated.pcap");
    let t = Traffic {
        packets: 40_000,
        failed_per_10k: 100,
        ..Traffic::default()
    };
    write_capture(&path, &t).unwrap();
    (dir, path)
}

#[test]
fn r8_replay_alerts_match_the_schema() {
    let v = schema();
    let (_dir, pcap) = capture("replay");
    let mut modes = std::collections::BTreeSet::new();
    for args in [
        &[][..],
        &["--window-mode", "tumbling", "--detector", "1h:9"][..],
        &["--detector", "none:4", "--detector", "10m:2"][..],
    ] {
        let mut argv: Vec<&OsStr> = vec!["replay".as_ref(), pcap.as_ref()];
        argv.extend(args.iter().map(OsStr::new));
        let out = SLOWSCAN.ok(argv);
        let text = String::from_utf8(out.stdout).unwrap();
        let alerts: Vec<Value> = text.lines().map(|l| check(&v, l)).collect();
        assert!(
            alerts
                .iter()
                .any(|a| a["source"]["ip"] == SCANNER.to_string()),
            "{args:?}: the scanner did not alert:\n{text}"
        );
        for a in &alerts {
            assert!(a.get("observer").is_none(), "replay names no observer: {a}");
            modes.insert(a["slowscan"]["window"]["mode"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        modes.into_iter().collect::<Vec<_>>(),
        ["none", "sliding", "tumbling"]
    );
}

#[test]
fn r8_engine_alerts_with_observer_match_the_schema() {
    let v = schema();
    let (_dir, pcap) = capture("engine");
    let mut engine = Engine::new(EngineConfig::default());
    let mut reader = CaptureReader::open(&pcap).unwrap();
    let mut alerts = Vec::new();
    while let Some(p) = reader.next_packet().unwrap() {
        let (outcome, _) = parse_frame_info(p.link, p.data, p.wire_len, p.ts_ns);
        if let FrameOutcome::Record(rec) = outcome {
            engine.process(&rec, &mut alerts);
        }
    }
    engine.finish(&mut alerts);
    assert!(!alerts.is_empty(), "no alert from the generated capture");
    let observer = Observer {
        name: "sensor-1.example".into(),
        interface: Some("eth1".into()),
    };
    let mut first = None;
    for a in &alerts {
        let line = a.to_json_line_for(&observer);
        let json = check(&v, &line);
        assert_eq!(
            json["observer"]["ingress"]["interface"]["name"], "eth1",
            "{line}"
        );
        check(&v, &a.to_json_line());
        first.get_or_insert(json);
    }
    // Broken alerts fail: the schema is not vacuous.
    let good = first.unwrap();
    type Break = fn(&mut Value);
    let broken: [(&str, Break); 6] = [
        ("no ecs", |a| {
            a.as_object_mut().unwrap().remove("ecs");
        }),
        ("millisecond timestamp", |a| {
            a["@timestamp"] = "2014-06-25T09:46:07.010Z".into()
        }),
        ("count as a string", |a| {
            a["slowscan"]["failed_pairs"] = "10".into()
        }),
        ("unknown shape", |a| {
            a["slowscan"]["shape"] = "diagonal".into()
        }),
        ("not an address", |a| a["source"]["ip"] = "10.9.9".into()),
        ("sliding window without a start", |a| {
            a["slowscan"]["window"]["start"] = Value::Null
        }),
    ];
    for (what, f) in broken {
        let mut a = good.clone();
        f(&mut a);
        assert!(!v.is_valid(&a), "{what} passed the schema: {a}");
    }
    let mut a = good.clone();
    a["slowscan"]["targets"] = Value::Array(vec![good["slowscan"]["targets"][0].clone(); 33]);
    assert!(!v.is_valid(&a), "33 targets passed the schema");
}
