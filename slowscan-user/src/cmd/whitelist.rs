//! `slowscan whitelist add|remove|list --iface IF`: edits the running
//! sensor's kernel map at once, through the maps it pinned under bpffs.
use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use slowscan::{dest::Destination, kernel::PinnedMaps};

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
            let mut maps = PinnedMaps::open(&iface)?;
            let mut wl = maps.whitelist()?;
            for d in &destinations {
                wl.insert(d.key())?;
            }
            tracing::info!("{} whitelist entries added on {iface}", destinations.len());
        }
        Action::Remove {
            iface,
            destinations,
        } => {
            let mut maps = PinnedMaps::open(&iface)?;
            let mut wl = maps.whitelist()?;
            for d in &destinations {
                if !wl.remove(&d.key())? {
                    tracing::warn!("{d} was not whitelisted on {iface}");
                }
            }
        }
        Action::List { iface } => {
            let mut maps = PinnedMaps::open(&iface)?;
            for k in maps.whitelist()?.keys()? {
                println!("{}", Destination::from_key(&k));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
