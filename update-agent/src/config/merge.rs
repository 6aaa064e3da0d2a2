//! Stage 2: one flat map of dotted keys (`reboot.strategy`), later
//! fragments winning, remembering which file set each key. Arrays (such as
//! `reboot.windows`) are single values: a later file replaces them whole.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::raw::Fragment;

/// A value and the file that set it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced {
    /// The value.
    pub value: toml::Value,
    /// The file.
    pub file: PathBuf,
}

/// The merged configuration.
#[derive(Debug, Clone, Default)]
pub struct Merged {
    /// Dotted key → value and source.
    pub keys: BTreeMap<String, Sourced>,
}

/// Merges fragments in order; later keys win.
pub fn merge(fragments: &[Fragment]) -> Merged {
    let mut merged = Merged::default();
    for f in fragments {
        flatten(&mut merged.keys, "", &f.table, &f.file);
    }
    merged
}

fn flatten(out: &mut BTreeMap<String, Sourced>, prefix: &str, table: &toml::Table, file: &PathBuf) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(out, &key, t, file),
            other => {
                out.insert(
                    key,
                    Sourced {
                        value: other.clone(),
                        file: file.clone(),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(file: &str, text: &str) -> Fragment {
        Fragment {
            file: file.into(),
            table: text.parse().unwrap(),
        }
    }

    #[test]
    fn later_keys_win_and_remember_their_file() {
        let m = merge(&[
            frag("/a.toml", "[node]\nchannel = \"stable\"\ngroup = \"g\"\n"),
            frag("/b.toml", "node.channel = \"beta\"\n"),
        ]);
        assert_eq!(m.keys["node.channel"].value.as_str(), Some("beta"));
        assert_eq!(m.keys["node.channel"].file, PathBuf::from("/b.toml"));
        assert_eq!(m.keys["node.group"].file, PathBuf::from("/a.toml"));
    }

    #[test]
    fn arrays_are_replaced_whole() {
        let m = merge(&[
            frag(
                "/a.toml",
                "[[reboot.windows]]\ndays = [\"mon\"]\n[[reboot.windows]]\ndays = [\"tue\"]\n",
            ),
            frag("/b.toml", "[[reboot.windows]]\ndays = [\"sun\"]\n"),
        ]);
        assert_eq!(m.keys["reboot.windows"].value.as_array().unwrap().len(), 1);
    }
}
