//! `slowscan ignore add|remove|list PREFIX… --iface IF`: edits the running
//! sensor's kernel ignore list (R4.6) at once, through the maps it pinned
//! under bpffs, and keeps the sensor's ignore file (`--ignore-sources FILE`)
//! in step so a restart keeps the change.
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use slowscan::{
    daemon::runtime,
    ignore::{IgnoreList, Prefix},
};
use tracing::{info, warn};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Ignore sources: CIDR prefixes or addresses (198.51.100.0/24, 2001:db8::/32, 203.0.113.9).
    Add {
        #[arg(long)]
        iface: String,
        #[arg(required = true)]
        prefixes: Vec<Prefix>,
    },
    /// Stop ignoring prefixes (each exactly as it was added).
    Remove {
        #[arg(long)]
        iface: String,
        #[arg(required = true)]
        prefixes: Vec<Prefix>,
    },
    /// List the kernel ignore list, one prefix a line.
    List {
        #[arg(long)]
        iface: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Add { iface, prefixes } => {
            let mut maps = runtime::live_maps(&iface)?;
            let mut map = maps.ignore()?;
            change(&iface, |l| {
                for p in &prefixes {
                    l.insert(*p);
                }
            })?;
            for p in &prefixes {
                map.insert(p)?;
            }
            info!(
                "{} prefixes added to the ignore list on {iface}",
                prefixes.len()
            );
        }
        Action::Remove { iface, prefixes } => {
            let mut maps = runtime::live_maps(&iface)?;
            let mut map = maps.ignore()?;
            for p in &prefixes {
                if !map.remove(p)? {
                    warn!("{p} was not on the ignore list on {iface}");
                }
            }
            change(&iface, |l| {
                for p in &prefixes {
                    l.remove(p);
                }
            })?;
        }
        Action::List { iface } => {
            let mut maps = runtime::live_maps(&iface)?;
            for p in maps.ignore()?.list()? {
                println!("{p}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies `edit` to the sensor's ignore file, if it has one; the file is
/// written before the kernel map changes on add and after it on remove, so a
/// crash in between never leaves the file short of what the kernel drops.
fn change(iface: &str, edit: impl FnOnce(&mut IgnoreList)) -> anyhow::Result<()> {
    let Some(path) = runtime::read(iface)?.and_then(|r| r.ignore_file) else {
        warn!(
            "the sensor on {iface} was started without an ignore file (--ignore-sources FILE): \
             this change lasts until it restarts"
        );
        return Ok(());
    };
    let mut list = if path.exists() {
        IgnoreList::load(&path)?
    } else {
        IgnoreList::new()
    };
    edit(&mut list);
    list.save(&path)
        .with_context(|| format!("keeping {} in step", path.display()))?;
    info!("{} updated ({} prefixes)", path.display(), list.len());
    Ok(())
}
