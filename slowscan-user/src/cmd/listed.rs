//! What `slowscan whitelist` and `slowscan ignore` share: `add|remove|list
//! --iface IF ITEM…` on a running sensor's kernel maps, reached through the
//! maps it pinned under bpffs, with the sensor's file kept in step so that a
//! restart keeps the change.
use std::{
    fmt::Display,
    path::{Path, PathBuf},
    process::ExitCode,
    str::FromStr,
};

use anyhow::Context;
use clap::Subcommand;
use slowscan::{
    daemon::runtime::{self, RuntimeInfo},
    kernel::PinnedMaps,
};
use tracing::{info, warn};

/// What a kernel list holds, as the command line writes it.
pub trait Item: Clone + Send + Sync + FromStr<Err: Display> + Display + 'static {
    /// The arguments' name in usage lines.
    const VALUE_NAME: &'static str;
    /// How to write one (`--help`, man pages).
    const HELP: &'static str;
}

impl Item for slowscan::ignore::Prefix {
    const VALUE_NAME: &'static str = "PREFIXES";
    const HELP: &'static str =
        "Source prefixes or addresses: 198.51.100.0/24, 2001:db8::/32, 203.0.113.9";
}

impl Item for slowscan::whitelist::WhitelistRule {
    const VALUE_NAME: &'static str = "DESTINATIONS";
    const HELP: &'static str = "Destinations or rules: ADDR:PORT, PREFIX:FIRST-LAST, ADDR:*; \
         IPv6 in brackets, quoted: '[2001:db8::1]:443', '[2001:db8::/32]:1000-2000'";
}

/// The edits every kernel list takes.
#[derive(Subcommand)]
pub enum Edit<T: Item> {
    /// Add items: from the next frame on, the kernel drops their traffic.
    Add {
        /// The running sensor's interface.
        #[arg(long)]
        iface: String,
        #[arg(required = true, value_name = T::VALUE_NAME, help = T::HELP, value_parser = parse_item::<T>)]
        items: Vec<T>,
    },
    /// Remove items, each exactly as it was added.
    Remove {
        /// The running sensor's interface.
        #[arg(long)]
        iface: String,
        #[arg(required = true, value_name = T::VALUE_NAME, help = T::HELP, value_parser = parse_item::<T>)]
        items: Vec<T>,
    },
    /// List what the kernel holds, one item a line.
    List {
        /// The running sensor's interface.
        #[arg(long)]
        iface: String,
    },
}

fn parse_item<T: FromStr<Err: Display>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: T::Err| e.to_string())
}

/// A kernel list and the file a sensor keeps it in.
pub trait Listed {
    type Item: Item;
    type File: Default;
    /// "whitelist", "ignore list".
    const NAME: &'static str;
    /// The sensor option that names the file.
    const OPTION: &'static str;

    fn file_of(info: RuntimeInfo) -> Option<PathBuf>;
    fn load(path: &Path) -> anyhow::Result<Self::File>;
    fn save(file: &Self::File, path: &Path) -> anyhow::Result<()>;
    fn len(file: &Self::File) -> usize;
    fn file_insert(file: &mut Self::File, item: &Self::Item);
    fn file_remove(file: &mut Self::File, item: &Self::Item);

    fn kernel_insert(maps: &mut PinnedMaps, item: &Self::Item) -> anyhow::Result<()>;
    fn kernel_remove(maps: &mut PinnedMaps, item: &Self::Item) -> anyhow::Result<bool>;
    fn kernel_list(maps: &mut PinnedMaps) -> anyhow::Result<Vec<String>>;
    /// After a removal: put back what the file still holds (a removed rule
    /// may have overlapped one that stays).
    fn kernel_restore(_maps: &mut PinnedMaps, _file: &Self::File) -> anyhow::Result<()> {
        Ok(())
    }
}

pub fn run<L: Listed>(edit: Edit<L::Item>) -> anyhow::Result<ExitCode> {
    match edit {
        Edit::Add { iface, items } => {
            let mut maps = runtime::live_maps(&iface)?;
            change::<L>(&iface, |f| items.iter().for_each(|i| L::file_insert(f, i)))?;
            for i in &items {
                L::kernel_insert(&mut maps, i).with_context(|| format!("adding {i}"))?;
            }
            info!(
                "{} added to the {} on {iface}",
                slowscan::count(items.len() as u64, "item"),
                L::NAME
            );
        }
        Edit::Remove { iface, items } => {
            let mut maps = runtime::live_maps(&iface)?;
            for i in &items {
                if !L::kernel_remove(&mut maps, i)? {
                    warn!("{i} was not on the {} on {iface}", L::NAME);
                }
            }
            if let Some(file) =
                change::<L>(&iface, |f| items.iter().for_each(|i| L::file_remove(f, i)))?
            {
                L::kernel_restore(&mut maps, &file)?;
            }
        }
        Edit::List { iface } => {
            let mut maps = runtime::live_maps(&iface)?;
            for line in L::kernel_list(&mut maps)? {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Applies `edit` to the sensor's file, if it has one, and returns the
/// file's new content. The file is written before the kernel changes on add
/// and after it on remove, so a crash in between never leaves the file short
/// of what the kernel drops.
pub fn change<L: Listed>(
    iface: &str,
    edit: impl FnOnce(&mut L::File),
) -> anyhow::Result<Option<L::File>> {
    let Some(path) = runtime::read(iface)?.and_then(L::file_of) else {
        warn!(
            "the sensor on {iface} was started without {}: this change lasts until it restarts",
            L::OPTION
        );
        return Ok(None);
    };
    let mut file = if path.exists() {
        L::load(&path)?
    } else {
        L::File::default()
    };
    edit(&mut file);
    L::save(&file, &path).with_context(|| format!("keeping {} in step", path.display()))?;
    info!(
        "{} updated ({})",
        path.display(),
        slowscan::count(L::len(&file) as u64, "entry")
    );
    Ok(Some(file))
}
