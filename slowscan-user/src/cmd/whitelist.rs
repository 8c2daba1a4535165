//! `slowscan whitelist add|remove|list|load --iface IF`: edits the running
//! sensor's kernel map at once, through the maps it pinned under bpffs, and
//! keeps the sensor's `--whitelist` file in step so a restart keeps the change.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::{Args as ClapArgs, Subcommand};
use slowscan::{
    daemon::runtime,
    dest::Destination,
    whitelist::{Whitelist, WhitelistEntry},
};
use slowscan_common::WhitelistKey;
use tracing::{info, warn};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Whitelist destinations: ADDR:PORT (IPv6 as [ADDR]:PORT).
    Add {
        #[arg(long)]
        iface: String,
        #[arg(required = true)]
        destinations: Vec<Destination>,
    },
    /// Remove destinations from the whitelist.
    Remove {
        #[arg(long)]
        iface: String,
        #[arg(required = true)]
        destinations: Vec<Destination>,
    },
    /// Add every entry of a whitelist file (`slowscan learn` output).
    Load {
        #[arg(long)]
        iface: String,
        file: PathBuf,
    },
    /// List the kernel whitelist, one ADDR:PORT a line.
    List {
        #[arg(long)]
        iface: String,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Add {
            iface,
            destinations,
        } => {
            let keys: Vec<WhitelistKey> = destinations.iter().map(Destination::key).collect();
            let mut maps = runtime::live_maps(&iface)?;
            let mut map = maps.whitelist()?;
            change(&iface, |wl| {
                for k in &keys {
                    wl.insert(*k, WhitelistEntry::default());
                }
            })?;
            for k in &keys {
                map.insert(*k)?;
            }
            info!("{} whitelist entries added on {iface}", keys.len());
        }
        Action::Remove {
            iface,
            destinations,
        } => {
            let mut maps = runtime::live_maps(&iface)?;
            let mut map = maps.whitelist()?;
            for d in &destinations {
                if !map.remove(&d.key())? {
                    warn!("{d} was not whitelisted on {iface}");
                }
            }
            change(&iface, |wl| {
                for d in &destinations {
                    wl.remove(&d.key());
                }
            })?;
        }
        Action::Load { iface, file } => {
            let new = Whitelist::load(&file)?;
            let mut maps = runtime::live_maps(&iface)?;
            let mut map = maps.whitelist()?;
            change(&iface, |wl| {
                for (k, e) in new.iter() {
                    wl.insert(*k, *e);
                }
            })?;
            for k in new.sorted_keys() {
                map.insert(k)?;
            }
            info!(
                "{} whitelist entries from {} loaded on {iface}",
                new.len(),
                file.display()
            );
        }
        Action::List { iface } => {
            let mut maps = runtime::live_maps(&iface)?;
            for k in maps.whitelist()?.keys()? {
                println!("{}", Destination::from_key(&k));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies `edit` to the sensor's on-disk whitelist, if it has one; the file
/// is written before the kernel map changes on add and after it on remove, so
/// a crash in between never leaves the file short of what the kernel drops.
fn change(iface: &str, edit: impl FnOnce(&mut Whitelist)) -> anyhow::Result<()> {
    let Some(path) = runtime::read(iface)?.and_then(|r| r.whitelist_file) else {
        warn!(
            "the sensor on {iface} was started without --whitelist FILE: this change lasts until it restarts"
        );
        return Ok(());
    };
    let mut wl = if path.exists() {
        Whitelist::load(&path)?
    } else {
        Whitelist::new()
    };
    edit(&mut wl);
    wl.save(&path)
        .with_context(|| format!("keeping {} in step", path.display()))?;
    info!("{} updated ({} entries)", path.display(), wl.len());
    Ok(())
}
