//! `slowscan learn FILE... --out whitelist.json`: offline whitelist learning
//! (R4.1–R4.3). The capture files are the whitelist-creation period (the
//! paper: one working day); every destination (address, port) with at least
//! one Established connection (R5) on an eligible port (below 1024, or listed
//! in `--eligible-high-ports`) becomes an entry, with its count and first and
//! last time seen. A terminating signal (SIGINT, SIGTERM, …) stops the
//! reading: what was learned so far is written, and the exit says it is
//! partial (docs/operations.md, "Learning never loses its result").
use std::{path::PathBuf, process::ExitCode};

use std::time::Duration;

use clap::Args as ClapArgs;
use slowscan::{
    daemon,
    engine::{Engine, Whitelist},
};

use super::options::{EngineArgs, HumanDuration};
use super::replay::Progress;
use slowscan::capture::{Input, check_inputs, feed_engine};

#[derive(ClapArgs)]
pub struct Args {
    /// Capture files of the learning period (pcap or pcapng, gzipped or not),
    /// read in the order given as one continuous stream.
    #[arg(value_name = "FILE", required_unless_present = "iface")]
    files: Vec<PathBuf>,
    /// Where to write the whitelist (JSON; `slowscan run --whitelist` and
    /// `slowscan replay --whitelist` read it).
    #[arg(long, value_name = "FILE", required_unless_present = "iface")]
    out: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Learn on this live interface instead of from capture files (R4.1, as
    /// the paper does: attach, watch for `--for`, write `--out`, detach).
    #[arg(long, value_name = "IF", conflicts_with = "files", requires_all = ["learn_for", "out"])]
    iface: Option<String>,
    /// With --iface: how long the whitelist-creation period lasts (e.g. 9h).
    #[arg(long = "for", value_name = "DURATION", requires = "iface")]
    learn_for: Option<HumanDuration>,
    /// With --iface: how the program attaches.
    #[command(flatten)]
    attach: super::run::AttachArgs,
    #[command(flatten)]
    maps: super::run::MapArgs,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        a.iface.is_some() || !a.attach.any(),
        "--mirror and --generic apply to live learning only (add --iface IF)"
    );
    if let Some(iface) = a.iface.clone() {
        return learn_live(a, iface);
    }
    // First: a stop (SIGINT, SIGTERM, …) from here on ends the reading and
    // writes what was learned, instead of losing it.
    daemon::signals::install(daemon::signals::Reads::Interrupt)?;
    let out = a.out.expect("clap requires --out without --iface");
    // Before reading hours of captures: the result must have somewhere to go.
    daemon::learning::check_output(&out, "--out")?;
    let mut cfg = a.engine.engine_config()?;
    // The detectors are not needed, but they cost little; learning needs R5 only.
    cfg.learn = Some(a.engine.learn_config());
    // A given whitelist is kept: its destinations are not analysed (R4.4) and
    // stay in the output beside the newly learned ones.
    let start = cfg.whitelist.clone().unwrap_or_default();
    let total_bytes = check_inputs(&a.files)?;
    let mut engine = Engine::new(cfg);
    let mut progress = Progress::new(total_bytes);
    let mut input = Input::default();
    let damage = feed_engine(
        &a.files,
        &mut engine,
        &mut input,
        &mut progress,
        |_| {},
        |_| Ok(()),
    )?;
    progress.finish();

    if input.frames.frames == 0 && damage.is_none() && input.stopped_by.is_none() {
        // A whitelist learned from nothing is not a whitelist: writing it
        // would let `learn && run` start with nothing whitelisted.
        anyhow::bail!(
            "no packets in {}: there is nothing to learn from, so {} was not written; \
             give the captures of a normal working day (R4.1)",
            a.files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            out.display()
        );
    }
    let learned = engine.learned().expect("learning was configured");
    let connections: u64 = learned.iter().map(|(_, e)| e.established).sum();
    let new_entries = learned.len();
    let mut whitelist: Whitelist = start;
    for (key, entry) in learned.iter() {
        whitelist.insert(*key, *entry);
    }
    whitelist.save(&out)?;
    let stats = engine.stats();
    tracing::info!(
        "learned {} from {} to eligible ports ({} attempts, {} established in all; {} packets \
         in {}); wrote {} to {}",
        slowscan::count(new_entries as u64, "destination"),
        slowscan::count(connections, "Established connection"),
        stats.attempts,
        stats.established,
        input.frames.frames,
        slowscan::count(input.files.len() as u64, "file"),
        slowscan::count(whitelist.len() as u64, "entry"),
        out.display()
    );
    if let Some(sig) = input.stopped_by {
        // A partial whitelist must not pass for a day's: `learn && run` stops.
        anyhow::bail!(
            "learning interrupted by {} after {} ({}, capture time {}): the {} learned so far \
             were written to {} (a partial whitelist)",
            daemon::signals::name(sig),
            slowscan::count(input.frames.frames, "packet"),
            match input.files.last() {
                Some(f) => format!(
                    "{} of {}, reading {}",
                    input.files.len(),
                    slowscan::count(a.files.len() as u64, "file"),
                    f.path.display()
                ),
                None => "before any file was open".into(),
            },
            input
                .last_ts_ns
                .map_or_else(|| "none".into(), |t| slowscan::rfc3339::format(t as i64)),
            slowscan::count(new_entries as u64, "destination"),
            out.display()
        );
    }
    match damage {
        None => Ok(ExitCode::SUCCESS),
        Some(e) => Err(anyhow::Error::new(e).context(format!(
            "learning stopped early: {} was written from the {} packets read before this point",
            out.display(),
            input.frames.frames
        ))),
    }
}

/// `slowscan learn --iface IF --for DURATION --out FILE`: the sensor's
/// learning phase alone (`slowscan run --learn-for` then goes on to detect).
fn learn_live(a: Args, iface: String) -> anyhow::Result<ExitCode> {
    let learn_for = a
        .learn_for
        .map(|d| d.0)
        .expect("clap requires --for with --iface");
    anyhow::ensure!(!learn_for.is_zero(), "--for must be longer than 0 s");
    let engine = a.engine.engine_config()?;
    let cfg = daemon::DaemonConfig {
        iface,
        attach: a.attach.mode(),
        mirror: a.attach.mirror(),
        engine: engine.clone(),
        alerts: "-".into(),
        sensor_name: daemon::hostname(),
        fleet: None,
        metrics: None,
        learn_for: Some(learn_for),
        learn: a.engine.learn_config(),
        learn_out: a.out,
        learn_only: true,
        whitelist_file: None,
        summary_every: None,
        run_for: None,
        sweep_every: Duration::from_secs(5),
        state: None,
        state_reset: false,
        checkpoint_every: Duration::from_secs(60),
        ignore: engine.ignore.clone(),
        ignore_file: a.engine.ignore_file(),
        whitelist_max: a.maps.whitelist_max,
        pending_max: a.maps.kernel_pending_max,
        ring_bytes: a.maps.ring_bytes,
        reload: None,
        options: Default::default(),
    };
    let summary = daemon::run(cfg)?;
    eprint!("{summary}");
    match summary.learning_interrupted {
        // A partial whitelist must not pass for a day's: `learn && run` stops.
        Some(msg) => anyhow::bail!("{msg}"),
        None => Ok(ExitCode::SUCCESS),
    }
}
