//! The maps a second process edits on a running sensor — the whitelist
//! (R4.4) and the ignore list (R4.6) — held untyped, so that they can be
//! pinned, and viewed typed on use. One definition for the loading sensor
//! and for `slowscan whitelist|ignore`, which opens them from their pins.
use aya::maps::{Array, HashMap, LpmTrie, Map, MapData, MapError};
use slowscan_common::maps;

use super::{IgnoreMap, WhitelistMap, WhitelistMaps};

pub struct EditableMaps {
    whitelist: Map,
    port_rules: Map,
    any_port: Map,
    rules_active: Map,
    ignore_v4: Map,
    ignore_v6: Map,
    ignore_active: Map,
}

/// The maps' names, in the order [`EditableMaps::named`] gives them.
const NAMES: [&str; 7] = [
    maps::WHITELIST,
    maps::WHITELIST_PORT_RULES,
    maps::WHITELIST_ANY_PORT,
    maps::WHITELIST_RULES_ACTIVE,
    maps::IGNORE_V4,
    maps::IGNORE_V6,
    maps::IGNORE_ACTIVE,
];

impl EditableMaps {
    /// Takes each map by name (from a loaded object, or from its pin).
    pub fn take(mut get: impl FnMut(&str) -> anyhow::Result<Map>) -> anyhow::Result<Self> {
        let [
            whitelist,
            port_rules,
            any_port,
            rules_active,
            ignore_v4,
            ignore_v6,
            ignore_active,
        ] = NAMES.map(&mut get);
        Ok(Self {
            whitelist: whitelist?,
            port_rules: port_rules?,
            any_port: any_port?,
            rules_active: rules_active?,
            ignore_v4: ignore_v4?,
            ignore_v6: ignore_v6?,
            ignore_active: ignore_active?,
        })
    }

    /// Each map with its name, for pinning.
    pub fn named(&self) -> [(&'static str, &Map); 7] {
        let maps = [
            &self.whitelist,
            &self.port_rules,
            &self.any_port,
            &self.rules_active,
            &self.ignore_v4,
            &self.ignore_v6,
            &self.ignore_active,
        ];
        let mut maps = maps.into_iter();
        NAMES.map(|name| (name, maps.next().expect("one map per name")))
    }

    /// The whitelist maps; `capacity` is the exact map's size, None to read
    /// it from the kernel.
    pub fn whitelist(
        &mut self,
        capacity: Option<u32>,
    ) -> Result<WhitelistMap<&mut MapData>, MapError> {
        let capacity = capacity.unwrap_or_else(|| match &self.whitelist {
            Map::HashMap(d) => d.info().map(|i| i.max_entries()).unwrap_or(0),
            _ => 0,
        });
        Ok(WhitelistMap::new(WhitelistMaps {
            exact: HashMap::try_from(&mut self.whitelist)?,
            capacity,
            port_rules: LpmTrie::try_from(&mut self.port_rules)?,
            any_port: LpmTrie::try_from(&mut self.any_port)?,
            active: Array::try_from(&mut self.rules_active)?,
        }))
    }

    pub fn ignore(&mut self) -> Result<IgnoreMap<&mut MapData>, MapError> {
        Ok(IgnoreMap::new(
            LpmTrie::try_from(&mut self.ignore_v4)?,
            LpmTrie::try_from(&mut self.ignore_v6)?,
            Array::try_from(&mut self.ignore_active)?,
        ))
    }
}
