//! An ignore file (R4.6) edited in place by `slowscan ignore add|remove`:
//! the operator's comments, blank lines and order stay as written. An added
//! prefix goes on a line of its own at the end; a removed one takes its line
//! (and that line's trailing comment) with it. The file format is
//! [`IgnoreList::parse_file`]'s.
use std::path::Path;

use anyhow::Context;

use crate::ignore::{IgnoreList, Prefix};

/// The first line of a file `slowscan ignore add` creates.
const HEADER: &str = "# slowscan ignore list (R4.6): sources never counted, one prefix per line\n";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoreFile {
    /// The text, a line each, with its terminator (the last may have none).
    lines: Vec<String>,
    list: IgnoreList,
}

impl Default for IgnoreFile {
    /// A new file: the header comment, no prefix.
    fn default() -> Self {
        Self {
            lines: vec![HEADER.to_string()],
            list: IgnoreList::new(),
        }
    }
}

/// The prefix a line holds, if any (text before `#`, trimmed).
fn item(line: &str) -> &str {
    line.split('#').next().unwrap_or("").trim()
}

impl IgnoreFile {
    /// Reads `path`; a missing file is a new, empty one.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read ignore file {}", path.display())),
        }
    }

    /// `text` in the file format; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        Ok(Self {
            list: IgnoreList::parse_file(text, origin)?,
            lines: text.split_inclusive('\n').map(str::to_string).collect(),
        })
    }

    /// The prefixes the file holds.
    pub fn list(&self) -> &IgnoreList {
        &self.list
    }

    /// Appends `p` on a line of its own; false (and no change) if the file
    /// holds it already.
    pub fn insert(&mut self, p: Prefix) -> bool {
        if !self.list.insert(p) {
            return false;
        }
        if let Some(last) = self.lines.last_mut()
            && !last.ends_with('\n')
        {
            last.push('\n');
        }
        self.lines.push(format!("{p}\n"));
        true
    }

    /// Removes every line that holds `p` (however it was written: `203.0.113.9`
    /// is `203.0.113.9/32`); false if none did.
    pub fn remove(&mut self, p: &Prefix) -> bool {
        if !self.list.remove(p) {
            return false;
        }
        self.lines
            .retain(|l| item(l).parse::<Prefix>().ok().as_ref() != Some(p));
        true
    }

    pub fn to_text(&self) -> String {
        self.lines.concat()
    }

    /// Writes the file atomically, durable across power loss.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        crate::atomic::write(
            path,
            self.to_text().as_bytes(),
            crate::atomic::Durability::Power,
        )
        .with_context(|| format!("cannot write ignore file {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        s.parse().unwrap()
    }

    const OPERATORS: &str = "# scanners and monitoring\n\
        198.51.100.20/32   # lab client\n\
        \n\
        # the vulnerability scanner subnet\n\
        203.0.113.0/24\n\
        2001:db8::/32\t# monitoring v6\n";

    #[test]
    fn r4_6_edits_keep_comments_blank_lines_and_order() {
        let mut f = IgnoreFile::parse(OPERATORS, "ignore.txt").unwrap();
        assert!(f.insert(p("198.51.100.0/28")));
        assert!(!f.insert(p("203.0.113.0/24")), "already listed");
        assert_eq!(f.to_text(), format!("{OPERATORS}198.51.100.0/28\n"));
        // Removing takes the prefix's line, its trailing comment with it, and nothing else.
        assert!(f.remove(&p("198.51.100.20")));
        assert!(!f.remove(&p("198.51.100.20")));
        assert_eq!(
            f.to_text(),
            "# scanners and monitoring\n\
             \n\
             # the vulnerability scanner subnet\n\
             203.0.113.0/24\n\
             2001:db8::/32\t# monitoring v6\n\
             198.51.100.0/28\n"
        );
        let back = IgnoreFile::parse(&f.to_text(), "again").unwrap();
        assert_eq!(back.list(), f.list());
        assert_eq!(back.list().len(), 3);
    }

    #[test]
    fn r4_6_a_last_line_without_newline_and_a_new_file() {
        let mut f = IgnoreFile::parse("203.0.113.9 # one host", "x").unwrap();
        f.insert(p("2001:db8::/48"));
        assert_eq!(f.to_text(), "203.0.113.9 # one host\n2001:db8::/48\n");
        let mut new = IgnoreFile::default();
        new.insert(p("198.51.100.0/24"));
        assert_eq!(new.to_text(), format!("{HEADER}198.51.100.0/24\n"));
        assert!(IgnoreFile::parse("203.0.113.300\n", "x").is_err());
    }

    #[test]
    fn r4_6_saved_edits_survive_a_reload() {
        let dir = std::env::temp_dir().join(format!("slowscan-ignfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ignore.txt");
        std::fs::write(&path, OPERATORS).unwrap();
        let mut f = IgnoreFile::load(&path).unwrap();
        f.insert(p("198.51.100.64/26"));
        f.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("198.51.100.20/32   # lab client\n"), "{text}");
        assert_eq!(IgnoreList::load(&path).unwrap().len(), 4);
        assert_eq!(
            IgnoreFile::load(&dir.join("absent")).unwrap(),
            IgnoreFile::default()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
