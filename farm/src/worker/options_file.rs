//! Reading a RocksDB OPTIONS file as text, to check that the override the
//! worker built from it carries everything the hoster configured: every
//! user class it names, and its filter policy.
//!
//! RocksDB's loader silently drops what it cannot rebuild: a filter policy
//! recorded without its parameters (the C API's bloom constructor records
//! only `filter_policy=bloomfilter`) loads as "no filter", and the job would
//! then write SSTs without filters. The worker compares the text with what
//! it loaded and refuses the job on any difference.

use crate::rocks::open_and_compact::OverrideSummary;
use std::collections::HashMap;
use std::path::Path;

/// How the loaded override differs from what the OPTIONS file says.
#[derive(Debug, thiserror::Error)]
pub enum OverrideMismatch {
    #[error(
        "column family {cf:?} uses {option}={named}, which this worker cannot create \
         (no built-in class or loaded plugin has that name)"
    )]
    UnknownClass {
        cf: String,
        option: &'static str,
        named: String,
    },
    #[error("column family {cf:?} uses comparator {named}, but this worker would use {loaded}")]
    Comparator {
        cf: String,
        named: String,
        loaded: String,
    },
    #[error(
        "column family {cf:?} has filter_policy={filter} in its OPTIONS file, which RocksDB cannot \
         rebuild (no bits per key recorded), so remote outputs would lose their filters; configure \
         the filter by string on the hoster (e.g. Options::get_options_from_string with \
         \"block_based_table_factory={{filter_policy=bloomfilter:10:false}}\")"
    )]
    FilterLost { cf: String, filter: String },
    #[error("column family {cf:?} has no filter in its OPTIONS file but the loaded options have {loaded}")]
    FilterAdded { cf: String, loaded: String },
}

/// The sections of an OPTIONS file: `[TableOptions/BlockBasedTable "cf"]`
/// and friends, each a map of `key=value`.
#[derive(Debug, Default)]
pub struct OptionsText {
    sections: HashMap<String, HashMap<String, String>>,
}

impl OptionsText {
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    pub fn parse(text: &str) -> Self {
        let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(name.to_owned());
                sections.entry(name.to_owned()).or_default();
            } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
                if let Some(map) = sections.get_mut(section) {
                    map.insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
        OptionsText { sections }
    }

    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str)
    }

    /// The block-based table options of column family `cf`, if it uses them.
    pub fn block_based_table(&self, cf: &str, key: &str) -> Option<&str> {
        self.get(&format!("TableOptions/BlockBasedTable \"{cf}\""), key)
    }
}

/// Checks the loaded override against the text for column family `cf`:
/// every user class the text names must have been created (a compaction
/// that silently runs without the hoster's compaction filter, or with
/// another comparator, changes or corrupts the data), and the filter policy
/// must have survived.
///
/// `plugin_known(option, name)` says whether a plugin that is not loaded in
/// this process provides the class (MULTI_PROCESS supervisors).
pub fn check_override(
    text: &OptionsText,
    cf: &str,
    loaded: &OverrideSummary,
    plugin_known: &dyn Fn(&str, &str) -> bool,
) -> Result<(), OverrideMismatch> {
    check_classes(text, cf, loaded, plugin_known)?;
    check_filter(text, cf, loaded)
}

fn check_classes(
    text: &OptionsText,
    cf: &str,
    loaded: &OverrideSummary,
    plugin_known: &dyn Fn(&str, &str) -> bool,
) -> Result<(), OverrideMismatch> {
    let section = format!("CFOptions \"{cf}\"");
    for (option, name) in &loaded.classes {
        let Some(named) = text.get(&section, option) else {
            continue;
        };
        if named == "nullptr" || named.is_empty() {
            continue;
        }
        if name.is_empty() && !plugin_known(option, named) {
            return Err(OverrideMismatch::UnknownClass {
                cf: cf.to_owned(),
                option,
                named: named.to_owned(),
            });
        }
        if *option == "comparator" && name != named {
            return Err(OverrideMismatch::Comparator {
                cf: cf.to_owned(),
                named: named.to_owned(),
                loaded: name.clone(),
            });
        }
    }
    Ok(())
}

fn check_filter(
    text: &OptionsText,
    cf: &str,
    loaded: &OverrideSummary,
) -> Result<(), OverrideMismatch> {
    let Some(filter) = text.block_based_table(cf, "filter_policy") else {
        return Ok(());
    };
    let configured = filter != "nullptr" && !filter.is_empty();
    if configured && loaded.filter_policy.is_empty() {
        return Err(OverrideMismatch::FilterLost {
            cf: cf.to_owned(),
            filter: filter.to_owned(),
        });
    }
    if !configured && !loaded.filter_policy.is_empty() {
        return Err(OverrideMismatch::FilterAdded {
            cf: cf.to_owned(),
            loaded: loaded.filter_policy.clone(),
        });
    }
    Ok(())
}

/// The plugin classes (option, name) column family `cf` names in the text.
pub fn plugin_class_names<'a>(text: &'a OptionsText, cf: &str) -> Vec<(&'static str, &'a str)> {
    let section = format!("CFOptions \"{cf}\"");
    ["merge_operator", "compaction_filter"]
        .into_iter()
        .filter_map(|option| {
            let named = text.get(&section, option)?;
            (named != "nullptr" && !named.is_empty()).then_some((option, named))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[Version]\n  rocksdb_version=11.8.1\n\n[TableOptions/BlockBasedTable \"a\"]\n  filter_policy=bloomfilter\n  block_size=16384\n[TableOptions/BlockBasedTable \"b\"]\n  filter_policy=nullptr\n";

    fn summary(filter: &str) -> OverrideSummary {
        OverrideSummary {
            table_factory: "BlockBasedTable".into(),
            filter_policy: filter.into(),
            table_options: String::new(),
            classes: vec![
                ("comparator", "leveldb.BytewiseComparator".into()),
                ("merge_operator", String::new()),
            ],
        }
    }

    #[test]
    fn an_unresolved_class_is_refused() {
        let text = "[CFOptions \"a\"]\n  merge_operator=counter\n  comparator=leveldb.BytewiseComparator\n[CFOptions \"b\"]\n  merge_operator=nullptr\n  comparator=my.reverse\n";
        let t = OptionsText::parse(text);
        let e = check_override(&t, "a", &summary(""), &|_, _| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("merge_operator=counter"), "{e}");
        let e = check_override(&t, "b", &summary(""), &|_, _| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("my.reverse"), "{e}");
    }

    #[test]
    fn sections_and_keys() {
        let t = OptionsText::parse(TEXT);
        assert_eq!(t.block_based_table("a", "block_size"), Some("16384"));
        assert_eq!(t.get("Version", "rocksdb_version"), Some("11.8.1"));
        assert_eq!(t.block_based_table("c", "block_size"), None);
    }

    #[test]
    fn a_dropped_filter_is_refused() {
        let t = OptionsText::parse(TEXT);
        let e = check_override(&t, "a", &summary(""), &|_, _| false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("filter_policy=bloomfilter"), "{e}");
        assert!(check_override(&t, "a", &summary("bloomfilter:10:false"), &|_, _| false).is_ok());
        assert!(check_override(&t, "b", &summary(""), &|_, _| false).is_ok());
        assert!(check_override(&t, "b", &summary("bloomfilter:10:false"), &|_, _| false).is_err());
    }
}
