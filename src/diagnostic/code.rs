//! The diagnostic codes: the word in `error[code]`, one variant per rule.
//!
//! Operators search for these words, tools match them in `check --format
//! json`, and docs/plan-format.md documents each, so they are one enum
//! rather than string literals at every rule: a misspelt code does not
//! compile, and a test keeps the documentation's tables and this list equal.

crate::choice::choice! {
    /// The code of a [`super::Diagnostic`]; printed as its kebab-case word.
    pub enum Code {
        /// `source = "airgap"` needs `artifacts`, and only it takes them.
        Airgap = "airgap",
        /// An invisible or layout-changing character in the file.
        Characters = "characters",
        /// The external-database keys and their values.
        DatastoreFields = "datastore-fields",
        /// The target RKE2 release runs the plan's datastore.
        DatastoreVersion = "datastore-version",
        /// The target is older than the current version.
        Direction = "direction",
        /// The file is not UTF-8.
        Encoding = "encoding",
        /// A value outside its set, or of the wrong shape, or of the other distribution.
        Fields = "fields",
        /// etcd: exactly one server has `init = true`.
        FirstServer = "first-server",
        /// `format` is not 1.
        Format = "format",
        /// A `sha256` is not 64 hex digits.
        Hashes = "hashes",
        /// A backup or token without its sha256 (warning).
        Integrity = "integrity",
        /// Too many lines, or nested too deep.
        Limits = "limits",
        /// Cluster and node names, and RKE1 addresses.
        Names = "names",
        /// A `<FILL: …>` marker of `rewind init` is still there.
        NotFilled = "not-filled",
        /// Absolute, normal, printable paths; the snapshot's location.
        Paths = "paths",
        /// RKE1: Rancher past the v2.0–v2.4 procedure (warning).
        RancherVersion = "rancher-version",
        /// RKE1 disaster recovery: the failed and replacement nodes.
        Recovery = "recovery",
        /// A required table or key is missing.
        Required = "required",
        /// A value shaped like a credential.
        Secrets = "secrets",
        /// At least one server (RKE2), or etcd and controlplane nodes (RKE1).
        Servers = "servers",
        /// The rollback crosses more than one minor (warning).
        SkippedMinors = "skipped-minors",
        /// The snapshot was taken on the target's minor.
        SnapshotMinor = "snapshot-minor",
        /// The snapshot is from a newer patch than the target (warning).
        SnapshotPatch = "snapshot-patch",
        /// SQLite: exactly one server (agents may join it).
        SqliteSingle = "sqlite-single",
        /// The file is not valid TOML.
        Syntax = "syntax",
        /// RKE2 without `[token]` (warning).
        Token = "token",
        /// A value of the wrong type.
        Type = "type",
        /// A key or table that format 1 does not have.
        UnknownKey = "unknown-key",
        /// A version that does not parse.
        Versions = "versions",
    }
}

/// Tests and tools outside the crate compare codes with their words.
impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::Code;

    /// The codes of the tables under "## Diagnostic codes": the first cell
    /// of each row, written as `code`.
    fn documented() -> BTreeSet<&'static str> {
        let doc = include_str!("../../docs/plan-format.md");
        let section = doc
            .split("\n## Diagnostic codes\n")
            .nth(1)
            .expect("docs/plan-format.md has a Diagnostic codes section");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once("` |").map(|(code, _)| code))
            .collect()
    }

    #[test]
    fn the_documentation_lists_exactly_these_codes() {
        let enumerated: BTreeSet<&str> = Code::NAMES.iter().copied().collect();
        assert_eq!(enumerated.len(), Code::ALL.len(), "a word is used twice");
        let documented = documented();
        let undocumented: Vec<_> = enumerated.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&enumerated).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "docs/plan-format.md and diagnostic::Code disagree: not documented {undocumented:?}, documented but not a Code {unknown:?}"
        );
    }

    #[test]
    fn codes_print_and_compare_as_their_words() {
        assert_eq!(Code::DatastoreVersion.to_string(), "datastore-version");
        assert_eq!(
            serde_json::to_value(Code::NotFilled).unwrap(),
            serde_json::json!("not-filled")
        );
        assert!(Code::UnknownKey == "unknown-key");
    }
}
