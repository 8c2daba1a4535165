//! A whitelist file (R4.4) edited in place by `slowscan whitelist
//! add|remove|load`. JSON has no comments, so an operator's notes live in
//! keys slowscan does not read (`"comment": "lab printer"`, in an entry or
//! at the top): edits keep those keys, every other entry as written, and the
//! entries' order. An added entry goes at the end; a removed one is taken
//! out alone.
use std::path::Path;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::{
    rfc3339,
    whitelist::{
        FILE_VERSION, Whitelist, WhitelistEntry, WhitelistError, WhitelistRule, entry_rule,
    },
};

#[derive(Clone, Debug)]
pub struct WhitelistFile {
    /// The file's top-level object; `"entries"` is an array of objects.
    doc: Map<String, Value>,
    whitelist: Whitelist,
}

impl Default for WhitelistFile {
    fn default() -> Self {
        let mut doc = Map::new();
        doc.insert("version".into(), FILE_VERSION.into());
        doc.insert("entries".into(), Value::Array(Vec::new()));
        Self {
            doc,
            whitelist: Whitelist::new(),
        }
    }
}

impl WhitelistFile {
    /// Reads `path`; a missing file is a new, empty one.
    pub fn load(path: &Path) -> Result<Self, WhitelistError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(WhitelistError::Read {
                path: path.to_owned(),
                cause: source,
            }),
        }
    }

    /// `text` in the file format; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, WhitelistError> {
        // Validated first: from here on every entry is an object with an
        // "ip" and a "port" that make a rule.
        let whitelist = Whitelist::from_json(text, origin)?;
        let doc = serde_json::from_str(text).map_err(|source| WhitelistError::Json {
            origin: origin.to_owned(),
            cause: source,
        })?;
        Ok(Self { doc, whitelist })
    }

    /// What the file holds.
    pub fn whitelist(&self) -> &Whitelist {
        &self.whitelist
    }

    fn entries(&mut self) -> &mut Vec<Value> {
        let e = self
            .doc
            .entry("entries")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !e.is_array() {
            *e = Value::Array(Vec::new());
        }
        e.as_array_mut().expect("an array")
    }

    /// Adds `rule` at the end with `entry`'s counts and times; if the file
    /// holds it already, those replace its own (when `entry` has any) and
    /// false is returned.
    pub fn insert(&mut self, rule: WhitelistRule, entry: WhitelistEntry) -> bool {
        let fields = fields(&rule, &entry);
        let known = entry != WhitelistEntry::default();
        if let Some(obj) = self
            .entries()
            .iter_mut()
            .filter_map(Value::as_object_mut)
            .find(|o| rule_of(o) == Some(rule))
        {
            if known {
                obj.extend(fields);
                self.whitelist_set(rule, entry);
            }
            return false;
        }
        self.entries().push(Value::Object(fields));
        self.whitelist_set(rule, entry);
        true
    }

    fn whitelist_set(&mut self, rule: WhitelistRule, entry: WhitelistEntry) {
        match rule.as_key() {
            Some(k) => {
                self.whitelist.insert(k, entry);
            }
            None => {
                self.whitelist.insert_rule(rule);
            }
        }
    }

    /// Removes the entries that write `rule` (exactly; `198.51.100.7:80`
    /// and `198.51.100.7/32:80` are one); false if none did.
    pub fn remove(&mut self, rule: &WhitelistRule) -> bool {
        let entries = self.entries();
        let before = entries.len();
        entries.retain(|e| e.as_object().and_then(rule_of).as_ref() != Some(rule));
        let removed = entries.len() != before;
        if removed {
            self.whitelist.remove_rule(rule);
        }
        removed
    }

    /// The file's text: `"version"` and `"entries"` first, each entry's
    /// `"ip"` and `"port"` first, then every other key.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&Ordered(&self.doc, &["version", "entries"]))
            .expect("a JSON object serialises")
            + "\n"
    }

    /// Writes the file atomically, durable across power loss.
    pub fn save(&self, path: &Path) -> Result<(), WhitelistError> {
        crate::atomic::write(
            path,
            self.to_json().as_bytes(),
            crate::atomic::Durability::Power,
        )
        .map_err(|source| WhitelistError::Write {
            path: path.to_owned(),
            cause: source,
        })
    }
}

fn rule_of(entry: &Map<String, Value>) -> Option<WhitelistRule> {
    entry_rule(entry.get("ip")?.as_str()?, entry.get("port")?).ok()
}

/// An entry's keys as `slowscan learn` writes them.
fn fields(rule: &WhitelistRule, e: &WhitelistEntry) -> Map<String, Value> {
    let mut m = Map::new();
    let port = match rule.ports {
        (a, b) if a == b => Value::from(a),
        _ => Value::from(rule.port_text()),
    };
    let ip = match rule.as_key() {
        Some(k) => crate::whitelist::ip_of(&k).to_string(),
        None => rule.prefix.to_string(),
    };
    m.insert("ip".into(), ip.into());
    m.insert("port".into(), port);
    m.insert("established".into(), e.established.into());
    if let Some(t) = e.first_seen_ns {
        m.insert("first_seen".into(), rfc3339::format(t).into());
    }
    if let Some(t) = e.last_seen_ns {
        m.insert("last_seen".into(), rfc3339::format(t).into());
    }
    m
}

/// An object with `first` keys in that order, then the rest; objects
/// inside (entries) put `"ip"` and `"port"` first.
struct Ordered<'a>(&'a Map<String, Value>, &'a [&'a str]);

impl Serialize for Ordered<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const ENTRY: &[&str] = &["ip", "port", "established", "first_seen", "last_seen"];
        let mut m = s.serialize_map(Some(self.0.len()))?;
        let first = self.1.iter().filter_map(|k| self.0.get_key_value(*k));
        let rest = self.0.iter().filter(|(k, _)| !self.1.contains(&k.as_str()));
        for (k, v) in first.chain(rest) {
            match v {
                Value::Array(items) => {
                    let items: Vec<_> = items
                        .iter()
                        .map(|i| match i {
                            Value::Object(o) => OrderedValue::Object(Ordered(o, ENTRY)),
                            other => OrderedValue::Plain(other),
                        })
                        .collect();
                    m.serialize_entry(k, &items)?;
                }
                v => m.serialize_entry(k, v)?,
            }
        }
        m.end()
    }
}

enum OrderedValue<'a> {
    Object(Ordered<'a>),
    Plain(&'a Value),
}

impl Serialize for OrderedValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OrderedValue::Object(o) => o.serialize(s),
            OrderedValue::Plain(v) => v.serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> WhitelistRule {
        s.parse().unwrap()
    }

    const OPERATORS: &str = r#"{"version": 1, "comment": "edited by hand, see ticket 42",
      "entries": [
        {"ip": "203.0.113.80", "port": 80, "comment": "intranet web"},
        {"ip": "198.51.100.0/24", "port": "8000-8099", "comment": "lab services"},
        {"ip": "198.51.100.7", "port": 22, "established": 3}
      ]}"#;

    #[test]
    fn r4_4_edits_keep_comment_keys_and_order() {
        let mut f = WhitelistFile::parse(OPERATORS, "wl.json").unwrap();
        assert!(f.insert(r("[2001:db8::/32]:443"), WhitelistEntry::default()));
        assert!(f.insert(r("198.51.100.9:25"), WhitelistEntry::default()));
        assert!(!f.insert(r("203.0.113.80:80"), WhitelistEntry::default()));
        assert!(f.remove(&r("198.51.100.7:22")));
        assert!(!f.remove(&r("198.51.100.7:22")));
        let text = f.to_json();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["comment"], "edited by hand, see ticket 42");
        let got: Vec<(String, String, String)> = v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["ip"].to_string(),
                    e["port"].to_string(),
                    e.get("comment").map_or(String::new(), Value::to_string),
                )
            })
            .collect();
        let want = [
            ("\"203.0.113.80\"", "80", "\"intranet web\""),
            ("\"198.51.100.0/24\"", "\"8000-8099\"", "\"lab services\""),
            ("\"2001:db8::/32\"", "443", ""),
            ("\"198.51.100.9\"", "25", ""),
        ]
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
        assert_eq!(got, want, "{text}");
        // "version" first, each entry's "ip" then "port" first.
        assert!(text.starts_with("{\n  \"version\": 1,"), "{text}");
        assert!(
            text.contains("\"ip\": \"203.0.113.80\",\n      \"port\": 80,\n      \"comment\""),
            "{text}"
        );
        // It reads back as the whitelist it claims to be.
        let back = Whitelist::from_json(&text, "again").unwrap();
        assert_eq!(&back, f.whitelist());
        assert_eq!(back.len(), 4);
    }

    #[test]
    fn r4_4_loaded_counts_replace_an_entrys_own() {
        let mut f = WhitelistFile::parse(OPERATORS, "wl.json").unwrap();
        let seen = WhitelistEntry {
            established: 9,
            first_seen_ns: Some(1_000_000_000),
            last_seen_ns: Some(2_000_000_000),
        };
        assert!(!f.insert(r("203.0.113.80:80"), seen));
        let v: Value = serde_json::from_str(&f.to_json()).unwrap();
        let e = &v["entries"][0];
        assert_eq!(e["established"], 9);
        assert_eq!(e["comment"], "intranet web");
        assert_eq!(e["first_seen"], rfc3339::format(1_000_000_000));
    }

    #[test]
    fn r4_4_a_new_file_is_a_valid_whitelist() {
        let mut f = WhitelistFile::default();
        f.insert(r("198.51.100.7:*"), WhitelistEntry::default());
        let back = Whitelist::from_json(&f.to_json(), "new").unwrap();
        assert!(back.rules().any(|x| *x == r("198.51.100.7:*")));
        assert!(
            WhitelistFile::parse(
                "{\"version\":1,\"entries\":[{\"ip\":\"x\",\"port\":1}]}",
                "bad"
            )
            .is_err()
        );
    }
}
