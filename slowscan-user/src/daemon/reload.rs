//! SIGHUP with a `--config` file: the file is read and parsed again, and its
//! options are compared with the running ones key by key (config keys are
//! the flags' long names). A changed key in [`RELOADABLE`] is applied and
//! logged (`detector: 1h:9 -> 1h:6, 1d:16`); any other changed key is
//! logged as `restart needed for: …` and keeps its running value, so no
//! edit is ever ignored silently — a key nobody listed here needs a restart.
//!
//! Detection options are applied by checkpointing the engine and restoring
//! the checkpoint into an engine of the new configuration (as at a restart
//! with changed options): failed pairs, pending attempts, live services,
//! totals and the re-alert state of the detectors that stay carry over. What
//! cannot: a detector the old configuration did not have counts only the
//! failed pairs the old one still kept (none older than its longest
//! window), and starts armed. The log says so, detector by detector.
use std::{collections::BTreeMap, fmt, sync::Arc};

use tracing::{error, info, warn};

use super::{
    DaemonConfig,
    sensor::{Phase, Sensor, detection_engine_config},
};
use crate::engine::{DetectorConfig, Engine, SECOND_NS};

/// A sensor's options as text by config key, defaults included (the
/// values of several are joined by `, `; flags are `true` or `false`).
pub type Options = BTreeMap<String, String>;

/// What applying a changed key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Effect {
    /// The engine rebuilt from a checkpoint of itself.
    Engine,
    /// The `--whitelist` file reread into the kernel map.
    Whitelist,
    /// The ignore list (or file) loaded into the kernel maps.
    Ignore,
    /// The alerts go to another path.
    Alerts,
    /// The sensor's own timers.
    Timers,
}

/// Keys a reload applies. Every other key needs a restart.
pub const RELOADABLE: &[(&str, Effect)] = &[
    ("detector", Effect::Engine),
    ("window", Effect::Engine),
    ("threshold", Effect::Engine),
    ("window-mode", Effect::Engine),
    ("handshake-timeout", Effect::Engine),
    ("service-memory", Effect::Engine),
    ("no-service-map", Effect::Engine),
    ("service-map", Effect::Engine),
    ("max-services", Effect::Engine),
    ("eligible-high-ports", Effect::Engine),
    ("max-pending", Effect::Engine),
    ("max-sources", Effect::Engine),
    ("home-nets", Effect::Engine),
    ("outside-prefix", Effect::Engine),
    ("count-by", Effect::Engine),
    ("source-totals", Effect::Engine),
    ("no-source-totals", Effect::Engine),
    ("whitelist", Effect::Whitelist),
    ("ignore-sources", Effect::Ignore),
    ("alerts", Effect::Alerts),
    ("summary-every", Effect::Timers),
    ("checkpoint-every", Effect::Timers),
];

/// Keys that shape the fleet's shared counts: with `--fleet`, a restart.
const FLEET_KEYS: &[&str] = &["detector", "window", "threshold", "window-mode"];

/// What `key` takes when it changes; None: a restart.
pub fn effect(key: &str) -> Option<Effect> {
    RELOADABLE.iter().find(|(k, _)| *k == key).map(|&(_, e)| e)
}

/// Parses the config file again: the sensor's configuration and options.
#[derive(Clone)]
pub struct Reloader(Arc<dyn Fn() -> anyhow::Result<(DaemonConfig, Options)> + Send + Sync>);

impl Reloader {
    pub fn new(
        f: impl Fn() -> anyhow::Result<(DaemonConfig, Options)> + Send + Sync + 'static,
    ) -> Self {
        Self(Arc::new(f))
    }

    fn load(&self) -> anyhow::Result<(DaemonConfig, Options)> {
        (self.0)()
    }
}

impl fmt::Debug for Reloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Reloader")
    }
}

/// One key whose value differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    pub old: String,
    pub new: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} -> {}", self.key, self.old, self.new)
    }
}

/// The keys whose values differ between `old` and `new`, in key order.
pub fn diff(old: &Options, new: &Options) -> Vec<Change> {
    let unset = || "(not set)".to_string();
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (o, n) = (old.get(k), new.get(k));
            (o != n).then(|| Change {
                key: k.clone(),
                old: o.cloned().unwrap_or_else(unset),
                new: n.cloned().unwrap_or_else(unset),
            })
        })
        .collect()
}

impl Sensor {
    /// SIGHUP: the config file's edits applied (with one), then the alerts
    /// file reopened (logrotate) and the whitelist and ignore files reread.
    pub(super) fn reload(&mut self) {
        match self.cfg.reload.clone() {
            None => info!(
                "SIGHUP: reopening the alerts file, rereading the whitelist and ignore files \
                 (no --config file to reload)"
            ),
            Some(r) => match r.load() {
                Ok((new, options)) => self.apply(new, options),
                Err(e) => error!(
                    "SIGHUP: the config file is not applied, the sensor goes on as it was: {e:#}"
                ),
            },
        }
        self.alerts.reopen();
        self.reread_whitelist();
        self.reread_ignore();
    }

    fn apply(&mut self, new: DaemonConfig, options: Options) {
        let changes = diff(&self.cfg.options, &options);
        if changes.is_empty() {
            info!("SIGHUP: the config file is unchanged");
            return;
        }
        let mut restart = Vec::new();
        let mut by_effect: BTreeMap<Effect, Vec<&Change>> = BTreeMap::new();
        for c in &changes {
            match effect(&c.key) {
                Some(_) if self.cfg.fleet.is_some() && FLEET_KEYS.contains(&c.key.as_str()) => {
                    restart.push(format!("{} ({} -> {}; with --fleet)", c.key, c.old, c.new))
                }
                Some(e) => by_effect.entry(e).or_default().push(c),
                None => restart.push(format!("{} ({} -> {})", c.key, c.old, c.new)),
            }
        }
        for (e, cs) in by_effect {
            let said: Vec<String> = cs.iter().map(|c| c.to_string()).collect();
            info!("SIGHUP: {}", said.join("; "));
            let applied = match e {
                Effect::Engine => self.apply_engine(&new),
                Effect::Whitelist => {
                    self.cfg.whitelist_file = new.whitelist_file.clone();
                    self.record_runtime();
                    true
                }
                Effect::Ignore => {
                    self.cfg.ignore = new.ignore.clone();
                    self.cfg.ignore_file = new.ignore_file.clone();
                    self.record_runtime();
                    self.load_ignore_list();
                    true
                }
                Effect::Alerts => match self.alerts.retarget(&new.alerts) {
                    Ok(()) => {
                        self.cfg.alerts = new.alerts.clone();
                        true
                    }
                    Err(e) => {
                        warn!(
                            "SIGHUP: alerts still go to {}: {e:#}",
                            self.alerts.describe()
                        );
                        false
                    }
                },
                Effect::Timers => {
                    self.cfg.summary_every = new.summary_every;
                    self.cfg.checkpoint_every = new.checkpoint_every;
                    if let Some(c) = &mut self.checkpointer {
                        c.every = new.checkpoint_every;
                    }
                    true
                }
            };
            // Applied: the running value. Not: tried again at the next SIGHUP.
            if applied {
                for c in cs {
                    self.cfg.options.insert(c.key.clone(), c.new.clone());
                }
            }
        }
        if !restart.is_empty() {
            warn!(
                "SIGHUP: restart needed for: {} (they keep their running values until then)",
                restart.join(", ")
            );
        }
    }

    /// Detection options: the engine goes on from a checkpoint of itself,
    /// restored into an engine of the new configuration.
    fn apply_engine(&mut self, new: &DaemonConfig) -> bool {
        let old_detectors = self.cfg.engine.detectors.clone();
        self.cfg.engine = crate::engine::EngineConfig {
            wall_clock_offset_ns: self.cfg.engine.wall_clock_offset_ns,
            ..new.engine.clone()
        };
        self.cfg.learn = new.learn.clone();
        self.housekeeper
            .set_timeout(self.cfg.engine.handshake_timeout_ns);
        let e = &self.cfg.engine;
        let names =
            |d: &[DetectorConfig]| d.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ");
        let now = format!(
            "detectors now {} ({}); handshake timeout {} s",
            names(&e.detectors),
            e.detectors.first().map_or("sliding", |d| d.window.mode()),
            e.handshake_timeout_ns as f64 / SECOND_NS as f64
        );
        if matches!(self.phase, Phase::Learning { .. }) {
            info!("SIGHUP: {now}, from the end of learning on");
            return true;
        }
        // Everything read so far counted, and its alerts sent, under the
        // old configuration.
        self.catch_up();
        self.send_decided();
        let state = self.engine.checkpoint();
        let (engine, r) = Engine::restore(detection_engine_config(&self.cfg), state, 0);
        self.engine = engine;
        info!(
            "SIGHUP: {now}: the engine's state carried over ({} sources, {} pending attempts, \
             {} live services)",
            r.sources, r.pending, r.services
        );
        let longest = old_detectors
            .iter()
            .filter_map(|d| d.window.length_ns())
            .max();
        let kept_all = old_detectors.iter().any(|d| d.window.length_ns().is_none());
        for d in &r.new_detectors {
            // The old detectors kept no failed pair older than their
            // longest window: a longer new window starts short of them.
            let short = match (kept_all, longest, d.window.length_ns()) {
                (true, ..) => None,
                (false, Some(old), Some(new)) if new <= old => None,
                (false, old, _) => Some(old.map_or("none".into(), crate::engine::duration_label)),
            };
            let counts = match short {
                None => "counts the failed pairs kept, as it would have".to_string(),
                Some(old) => format!(
                    "counts the failed pairs of the last {old} only (the old detectors kept none \
                     older): it may count less than it would have, until its window has passed"
                ),
            };
            warn!(
                "SIGHUP: detector {} is new: it {counts}, and starts armed (its first crossing \
                 alerts, unless R8 withholds it)",
                d.name()
            );
        }
        for d in old_detectors
            .iter()
            .filter(|d| !self.cfg.engine.detectors.contains(d))
        {
            info!("SIGHUP: detector {} removed", d.name());
        }
        true
    }

    /// The runtime file follows the whitelist and ignore files, which
    /// `slowscan whitelist|ignore` keep in step.
    fn record_runtime(&self) {
        if let Err(e) = super::runtime::write(
            &self.cfg.iface,
            self.cfg.whitelist_file.as_deref(),
            self.cfg.ignore_file.as_deref(),
        ) {
            warn!("`slowscan whitelist`/`ignore` cannot reach this sensor: {e:#}");
        }
    }

    /// An ignore list given as prefixes (not a file) goes into the kernel
    /// maps as it is; a file is reread by [`Self::reread_ignore`].
    fn load_ignore_list(&mut self) {
        if self.cfg.ignore_file.is_some() {
            return;
        }
        let list = self.cfg.ignore.clone().unwrap_or_default();
        match self.sync_ignore(&list) {
            Ok((added, removed)) => info!(
                "ignore list: {} prefixes in the kernel maps ({added} added, {removed} removed)",
                list.len()
            ),
            Err(e) => warn!("ignore list changed, but the kernel maps: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> Options {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_diff_is_key_by_key_and_says_what_was_unset() {
        let old = opts(&[("detector", "1h:9"), ("iface", "eth1"), ("mirror", "true")]);
        let new = opts(&[
            ("detector", "1h:6, 1d:16"),
            ("iface", "eth1"),
            ("mirror", "true"),
            ("whitelist", "/etc/slowscan/wl.json"),
        ]);
        let d: Vec<String> = diff(&old, &new).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            d,
            [
                "detector: 1h:9 -> 1h:6, 1d:16",
                "whitelist: (not set) -> /etc/slowscan/wl.json"
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn unlisted_keys_need_a_restart() {
        assert_eq!(effect("detector"), Some(Effect::Engine));
        assert_eq!(effect("alerts"), Some(Effect::Alerts));
        for key in [
            "iface",
            "ring-bytes",
            "whitelist-max",
            "kernel-pending-max",
            "a-new-option",
        ] {
            assert_eq!(effect(key), None, "{key}");
        }
    }
}
