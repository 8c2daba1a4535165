//! A detector joined to a fleet (docs/fleet.md, "In the sensor"): what the
//! packet sensor (`slowscan run`) and the live record inputs (`slowscan
//! collect`, `slowscan follow-zeek`) do after their engine, the same way.
//! The engine's counted failures go to the store; the fleet alerts this
//! detector claimed are written (scope "fleet"); its own alerts are held
//! until the store has answered for their source: dropped if it counted
//! their failures, written (scope "sensor") if it cannot.
use std::time::Duration;

use tracing::info;

use super::alerts::AlertPath;
use crate::{
    engine::{Alert, CountedFailure, Engine},
    fleet::{Fleet, FleetAlert, FleetConfig, HeldAlerts, Scope},
};

/// How long a local alert is held at most while its source's failures are
/// on their way to a master that answers (a push waits up to about 10 s
/// for a replica's confirmation).
const GRACE: Duration = Duration::from_secs(30);
/// At the end, how long what was counted may take to reach the store.
const FLUSH: Duration = Duration::from_secs(3);

pub struct FleetLink {
    fleet: Fleet,
    failures: Vec<CountedFailure>,
    claimed: Vec<FleetAlert>,
    held: HeldAlerts,
}

impl FleetLink {
    /// Joins the fleet (the engine must be built with `export_failures`).
    /// Bad credentials are an error; a store that does not answer is not.
    pub fn start(cfg: FleetConfig) -> anyhow::Result<Self> {
        let (url, sensor) = (cfg.url.to_string(), cfg.sensor.clone());
        let fleet = Fleet::start(cfg)?;
        info!("joined the fleet at {url} as {sensor} (docs/fleet.md)");
        Ok(Self {
            fleet,
            failures: Vec::new(),
            claimed: Vec::new(),
            held: HeldAlerts::new(GRACE),
        })
    }

    /// After the engine: its counted failures pushed, the fleet alerts
    /// claimed meanwhile written, the engine's own alerts (`decided`) held;
    /// `decided` is left with those to write now (scope "sensor").
    pub fn exchange(
        &mut self,
        engine: &mut Engine,
        decided: &mut Vec<Alert>,
        alerts: &mut AlertPath,
    ) {
        engine.drain_failures(&mut self.failures);
        self.fleet.push_all(&mut self.failures);
        self.write_claimed(alerts);
        self.held.hold(decided.drain(..));
        self.held.settle(&self.fleet, decided);
    }

    /// At the end, after the last [`exchange`](Self::exchange): what was
    /// counted goes to the store (for up to 3 s), the alerts that claims are
    /// written, and `decided` is left with the held alerts whose failures
    /// the store did not count.
    pub fn leave(mut self, engine: &mut Engine, decided: &mut Vec<Alert>, alerts: &mut AlertPath) {
        self.exchange(engine, decided, alerts);
        self.fleet.flush(FLUSH);
        self.write_claimed(alerts);
        self.held.finish(&self.fleet, decided);
        let st = self.fleet.shutdown(Duration::from_secs(1));
        info!("left the fleet: {st:?}");
    }

    fn write_claimed(&mut self, alerts: &mut AlertPath) {
        self.fleet.drain_alerts(&mut self.claimed);
        for fa in self.claimed.drain(..) {
            alerts.send_as(&fa.to_alert(), Scope::Fleet, Some(&fa.sensors));
        }
    }
}
