//! `slowscan ignore add|remove|list PREFIX… --iface IF`: edits the running
//! sensor's kernel ignore list (R4.6) at once, and keeps its ignore file
//! (`--ignore-sources FILE`) in step.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use clap::Args as ClapArgs;
use slowscan::{
    daemon::runtime::RuntimeInfo, ignore::Prefix, ignore_file::IgnoreFile, kernel::PinnedMaps,
};

use super::listed::{self, Edit, Listed};

#[derive(ClapArgs)]
pub struct Args {
    #[command(subcommand)]
    edit: Edit<Prefix>,
}

struct Ignore;

impl Listed for Ignore {
    type Item = Prefix;
    type File = IgnoreFile;
    const NAME: &'static str = "ignore list";
    const OPTION: &'static str = "an ignore file (--ignore-sources FILE)";

    fn file_of(info: RuntimeInfo) -> Option<PathBuf> {
        info.ignore_file
    }
    fn load(path: &Path) -> anyhow::Result<IgnoreFile> {
        IgnoreFile::load(path)
    }
    fn save(file: &IgnoreFile, path: &Path) -> anyhow::Result<()> {
        file.save(path)
    }
    fn len(file: &IgnoreFile) -> usize {
        file.list().len()
    }
    fn file_insert(file: &mut IgnoreFile, p: &Prefix) {
        file.insert(*p);
    }
    fn file_remove(file: &mut IgnoreFile, p: &Prefix) {
        file.remove(p);
    }
    fn kernel_insert(maps: &mut PinnedMaps, p: &Prefix) -> anyhow::Result<()> {
        maps.ignore()?.insert(p)
    }
    fn kernel_remove(maps: &mut PinnedMaps, p: &Prefix) -> anyhow::Result<bool> {
        maps.ignore()?.remove(p)
    }
    fn kernel_list(maps: &mut PinnedMaps) -> anyhow::Result<Vec<String>> {
        Ok(maps
            .ignore()?
            .list()?
            .iter()
            .map(Prefix::to_string)
            .collect())
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    listed::run::<Ignore>(args.edit)
}
