//! `slowscan whitelist add|remove|list|load --iface IF`: edits the running
//! sensor's kernel whitelist (R4.4) at once, and keeps its `--whitelist`
//! file in step. Entries are single destinations or rules over many
//! (a prefix, a port range, every port).
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::{Args as ClapArgs, Subcommand};
use slowscan::{
    daemon::runtime::{self, RuntimeInfo},
    kernel::PinnedMaps,
    whitelist::{Whitelist, WhitelistEntry, WhitelistRule},
    whitelist_file::WhitelistFile,
};
use tracing::info;

use super::listed::{self, Edit, Listed};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    #[command(flatten)]
    Edit(Edit<WhitelistRule>),
    /// Add every entry and rule of a whitelist file (`slowscan learn` output).
    Load {
        #[arg(long)]
        iface: String,
        file: PathBuf,
    },
}

struct Wl;

impl Listed for Wl {
    type Item = WhitelistRule;
    type File = WhitelistFile;
    const NAME: &'static str = "whitelist";
    const OPTION: &'static str = "--whitelist FILE";

    fn file_of(info: RuntimeInfo) -> Option<PathBuf> {
        info.whitelist_file
    }
    fn load(path: &Path) -> anyhow::Result<WhitelistFile> {
        Ok(WhitelistFile::load(path)?)
    }
    fn save(file: &WhitelistFile, path: &Path) -> anyhow::Result<()> {
        Ok(file.save(path)?)
    }
    fn len(file: &WhitelistFile) -> usize {
        file.whitelist().len()
    }
    fn file_insert(file: &mut WhitelistFile, r: &WhitelistRule) {
        file.insert(*r, WhitelistEntry::default());
    }
    fn file_remove(file: &mut WhitelistFile, r: &WhitelistRule) {
        file.remove(r);
    }
    fn kernel_insert(maps: &mut PinnedMaps, r: &WhitelistRule) -> anyhow::Result<()> {
        maps.whitelist()?.insert_rule(r)
    }
    fn kernel_remove(maps: &mut PinnedMaps, r: &WhitelistRule) -> anyhow::Result<bool> {
        maps.whitelist()?.remove_rule(r)
    }
    fn kernel_list(maps: &mut PinnedMaps) -> anyhow::Result<Vec<String>> {
        let map = maps.whitelist()?;
        let exact = map.keys()?.into_iter().map(|k| WhitelistRule::from_key(&k));
        Ok(exact.chain(map.rules()?).map(|r| r.to_string()).collect())
    }
    fn kernel_restore(maps: &mut PinnedMaps, file: &WhitelistFile) -> anyhow::Result<()> {
        let mut map = maps.whitelist()?;
        file.whitelist()
            .rules()
            .try_for_each(|r| map.insert_rule(r))
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Edit(edit) => listed::run::<Wl>(edit),
        Action::Load { iface, file } => {
            let new = Whitelist::load(&file)?;
            let mut maps = runtime::live_maps(&iface)?;
            listed::change::<Wl>(&iface, |wl| {
                for k in new.sorted_keys() {
                    wl.insert(
                        WhitelistRule::from_key(&k),
                        new.get(&k).copied().unwrap_or_default(),
                    );
                }
                new.rules().for_each(|r| {
                    wl.insert(*r, WhitelistEntry::default());
                });
            })?;
            maps.whitelist()?.load(&new)?;
            info!(
                "{} from {} loaded on {iface}",
                slowscan::count(new.len() as u64, "whitelist entry"),
                file.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
