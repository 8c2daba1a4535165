//! Alerts (R8): one JSON line each, Elastic Common Schema style. Every field
//! is described in docs/alerts.md and checked by docs/alert.schema.json.
//!
//! ```json
//! {"@timestamp":"2014-06-25T10:05:00.000000000Z","ecs":{"version":"8.11"},
//!  "observer":{"name":"sensor-1","ingress":{"interface":{"name":"eth1"}}},
//!  "event":{"kind":"alert","category":["network","intrusion_detection"],
//!           "action":"slow-scan-detected","dataset":"slowscan.alert"},
//!  "rule":{"name":"slowscan.failed_attempts"},
//!  "source":{"ip":"192.0.2.9"},"network":{"transport":"tcp"},
//!  "slowscan":{"failed_pairs":10,"count_estimated":false,"threshold":9,
//!              "detector":"1h:9","detector_index":0,
//!              "window":{"mode":"sliding","seconds":3600,"start":"…","end":"…"},
//!              "first_failure":"…","last_failure":"…","shape":"vertical",
//!              "distinct_hosts":1,"distinct_ports":10,
//!              "targets":[{"ip":"192.0.2.1","port":22}],"alert_seq":1}}
//! ```

use std::net::IpAddr;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::identity::{Identity, mac_label};
use super::{Window, rfc3339};

/// The ECS version the alert's field names follow.
pub const ECS_VERSION: &str = "8.11";

/// The sensor that wrote an alert (ECS `observer.*`): its name (a host name,
/// or one set in the configuration) and the interface it watched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observer {
    /// `observer.name`.
    pub name: String,
    /// `observer.ingress.interface.name`; none for a replay.
    pub interface: Option<String>,
}

/// Scan shape of the failed pairs in the window (R1 targets both kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// One destination port, any number of hosts (an address scan).
    Horizontal,
    /// One host, several ports (a port scan).
    Vertical,
    /// Several hosts and several ports.
    Mixed,
}

impl Shape {
    /// The name alerts and logs use (as serialised).
    pub fn name(&self) -> &'static str {
        match self {
            Shape::Horizontal => "horizontal",
            Shape::Vertical => "vertical",
            Shape::Mixed => "mixed",
        }
    }

    /// One port → horizontal (also for a single pair); else one host →
    /// vertical; else mixed.
    pub fn classify(hosts: usize, ports: usize) -> Shape {
        if ports <= 1 {
            Shape::Horizontal
        } else if hosts <= 1 {
            Shape::Vertical
        } else {
            Shape::Mixed
        }
    }
}

/// One failed destination in an alert's bounded sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
}

/// A source seen scanning: its distinct failed pairs in a detector's window
/// exceeded the detector's threshold (R6), or doubled since its previous
/// alert (R8, see [`crate::engine`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// When the alert was decided, wall-clock Unix nanoseconds (`@timestamp`).
    pub timestamp_ns: i64,
    /// The address of the deciding attempt (`source.ip`).
    pub source: IpAddr,
    /// What the failures were counted under (R9): the address, a MAC or a
    /// prefix.
    pub identity: Identity,
    /// The distinct addresses the identity used in the window, most recent
    /// first, at most `identity::ADDRESSES_KEPT`.
    pub addresses: Vec<IpAddr>,
    /// How many distinct addresses it used in all (≥ `addresses.len()`).
    pub addresses_total: u32,
    /// Index of the detector in `EngineConfig::detectors`.
    pub detector: usize,
    /// Distinct failed (destination IP, destination port) pairs in the window.
    pub failed_pairs: u32,
    /// `failed_pairs` is a sketch's estimate (the source failed more pairs
    /// than the exact cap, R6.3); shape, hosts and ports then describe the
    /// targets sample.
    pub estimated: bool,
    pub threshold: u32,
    pub window: Window,
    /// Start of the window (wall clock, Unix ns; `None` for `none`); it ends
    /// at `last_failure_ns`.
    pub window_start_ns: Option<i64>,
    /// SYN times (wall clock, Unix ns) of the first and latest failure in the
    /// window.
    pub first_failure_ns: i64,
    pub last_failure_ns: i64,
    pub shape: Shape,
    pub distinct_hosts: u32,
    pub distinct_ports: u32,
    /// The most recent failed pairs, at most `max_targets_in_alert`.
    pub targets: Vec<Target>,
    /// 1 for the first crossing, 2, 3 … for re-alerts (R8).
    pub alert_seq: u32,
}

impl Alert {
    pub fn source_ip(&self) -> IpAddr {
        self.source
    }

    /// The alert as one line of JSON (no trailing newline), without
    /// `observer` (as `slowscan replay` writes it).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).expect("alert serialises")
    }

    /// The alert as one line of JSON with `observer.name` and, if given,
    /// `observer.ingress.interface.name` (as the live sensor writes it).
    pub fn to_json_line_for(&self, observer: &Observer) -> String {
        serde_json::to_string(&self.json(Some(observer))).expect("alert serialises")
    }

    fn json<'a>(&'a self, observer: Option<&'a Observer>) -> AlertJson<'a> {
        AlertJson {
            timestamp: rfc3339::format(self.timestamp_ns),
            ecs: EcsJson {
                version: ECS_VERSION,
            },
            observer: observer.map(|o| ObserverJson {
                name: &o.name,
                ingress: o.interface.as_deref().map(|name| IngressJson {
                    interface: InterfaceJson { name },
                }),
            }),
            event: EventJson {
                kind: "alert",
                category: ["network", "intrusion_detection"],
                action: "slow-scan-detected",
                dataset: "slowscan.alert",
            },
            rule: NameJson {
                name: "slowscan.failed_attempts",
            },
            source: SourceJson {
                ip: self.source,
                mac: match &self.identity {
                    Identity::Mac(m) => Some(mac_label(m)),
                    _ => None,
                },
            },
            network: TransportJson { transport: "tcp" },
            slowscan: SlowscanJson {
                failed_pairs: self.failed_pairs,
                count_estimated: self.estimated,
                threshold: self.threshold,
                detector: super::DetectorConfig {
                    window: self.window,
                    threshold: self.threshold,
                }
                .name(),
                detector_index: self.detector,
                window: WindowJson {
                    window: self.window,
                    start: self.window_start_ns.map(rfc3339::format),
                    end: rfc3339::format(self.last_failure_ns),
                },
                first_failure: rfc3339::format(self.first_failure_ns),
                last_failure: rfc3339::format(self.last_failure_ns),
                shape: self.shape,
                distinct_hosts: self.distinct_hosts,
                distinct_ports: self.distinct_ports,
                targets: &self.targets,
                alert_seq: self.alert_seq,
                source: IdentityJson {
                    kind: self.identity.kind(),
                    identity: self.identity.to_string(),
                    prefix: match &self.identity {
                        Identity::Prefix(p) => Some(p.to_string()),
                        _ => None,
                    },
                    addresses: &self.addresses,
                    addresses_count: self.addresses_total,
                },
            },
        }
    }
}

#[derive(serde::Serialize)]
struct AlertJson<'a> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    ecs: EcsJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    observer: Option<ObserverJson<'a>>,
    event: EventJson,
    rule: NameJson,
    source: SourceJson,
    network: TransportJson,
    slowscan: SlowscanJson<'a>,
}

#[derive(serde::Serialize)]
struct EcsJson {
    version: &'static str,
}

#[derive(serde::Serialize)]
struct ObserverJson<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ingress: Option<IngressJson<'a>>,
}

#[derive(serde::Serialize)]
struct IngressJson<'a> {
    interface: InterfaceJson<'a>,
}

#[derive(serde::Serialize)]
struct InterfaceJson<'a> {
    name: &'a str,
}

#[derive(serde::Serialize)]
struct EventJson {
    kind: &'static str,
    category: [&'static str; 2],
    action: &'static str,
    dataset: &'static str,
}

#[derive(serde::Serialize)]
struct NameJson {
    name: &'static str,
}

#[derive(serde::Serialize)]
struct SourceJson {
    ip: IpAddr,
    /// ECS notation, when the identity is a MAC (R9).
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

/// `slowscan.source`: the identity the failures were counted under (R9).
#[derive(serde::Serialize)]
struct IdentityJson<'a> {
    /// `address`, `mac` or `prefix`.
    kind: &'static str,
    /// The identity as `slowscan explain` takes it.
    identity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<String>,
    addresses: &'a [IpAddr],
    addresses_count: u32,
}

#[derive(serde::Serialize)]
struct TransportJson {
    transport: &'static str,
}

#[derive(serde::Serialize)]
struct SlowscanJson<'a> {
    failed_pairs: u32,
    count_estimated: bool,
    threshold: u32,
    /// `1h:9`: the detector that fired (window length, threshold).
    detector: String,
    detector_index: usize,
    window: WindowJson,
    first_failure: String,
    last_failure: String,
    shape: Shape,
    distinct_hosts: u32,
    distinct_ports: u32,
    targets: &'a [Target],
    alert_seq: u32,
    source: IdentityJson<'a>,
}

/// `{"mode":"sliding","seconds":3600,"start":"…","end":"…"}`.
struct WindowJson {
    window: Window,
    start: Option<String>,
    end: String,
}

impl Serialize for WindowJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("mode", self.window.mode())?;
        match self.window.length_ns() {
            None => m.serialize_entry("seconds", &None::<u64>)?,
            Some(ns) if ns % 1_000_000_000 == 0 => {
                m.serialize_entry("seconds", &(ns / 1_000_000_000))?
            }
            Some(ns) => m.serialize_entry("seconds", &(ns as f64 / 1e9))?,
        }
        m.serialize_entry("start", &self.start)?;
        m.serialize_entry("end", &self.end)?;
        m.end()
    }
}

impl Serialize for Alert {
    /// Without `observer`: see [`Alert::to_json_line_for`].
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.json(None).serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        Alert {
            timestamp_ns: 1_403_690_700_000_000_001,
            source: "192.0.2.9".parse().unwrap(),
            identity: Identity::Address("192.0.2.9".parse().unwrap()),
            addresses: vec!["192.0.2.9".parse().unwrap()],
            addresses_total: 1,
            detector: 0,
            failed_pairs: 10,
            estimated: false,
            threshold: 9,
            window: Window::Sliding(3600 * 1_000_000_000),
            window_start_ns: Some(1_403_686_800_000_000_000),
            first_failure_ns: 1_403_686_800_000_000_000,
            last_failure_ns: 1_403_690_640_500_000_000,
            shape: Shape::Vertical,
            distinct_hosts: 1,
            distinct_ports: 10,
            targets: vec![Target {
                ip: "192.0.2.1".parse().unwrap(),
                port: 22,
            }],
            alert_seq: 1,
        }
    }

    #[test]
    fn r8_observer_and_ecs_fields() {
        let a = alert();
        let plain: serde_json::Value = serde_json::from_str(&a.to_json_line()).unwrap();
        assert_eq!(plain["ecs"]["version"], "8.11");
        assert!(plain.get("observer").is_none(), "{plain}");
        assert_eq!(plain["@timestamp"], "2014-06-25T10:05:00.000000001Z");
        assert_eq!(
            plain["slowscan"]["last_failure"],
            "2014-06-25T10:04:00.500000000Z"
        );
        let o = Observer {
            name: "sensor-1".into(),
            interface: Some("eth1".into()),
        };
        let line = a.to_json_line_for(&o);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["observer"],
            serde_json::json!({"name": "sensor-1", "ingress": {"interface": {"name": "eth1"}}})
        );
        // Everything else is the plain line's.
        let mut rest = v.clone();
        rest.as_object_mut().unwrap().remove("observer");
        assert_eq!(rest, plain);
        let v: serde_json::Value = serde_json::from_str(&a.to_json_line_for(&Observer {
            name: "replay".into(),
            interface: None,
        }))
        .unwrap();
        assert_eq!(v["observer"], serde_json::json!({"name": "replay"}));
    }
}
