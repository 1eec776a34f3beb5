//! `rewind verify DIR`: a bundle is intact when every file is listed in
//! SHA256SUMS with the right hash, nothing unlisted was added, and every
//! script `plan.json` names is there.

use crate::bundle::Bundle;
use crate::validate::sha256_hex;

/// Every problem found in a bundle; empty means intact.
pub fn problems(bundle: &Bundle) -> Vec<String> {
    let mut out = Vec::new();
    let Some(sums) = bundle.files.get("SHA256SUMS") else {
        return vec!["SHA256SUMS is missing".into()];
    };
    let sums = String::from_utf8_lossy(&sums.bytes);
    let mut listed = std::collections::BTreeSet::new();
    for (i, line) in sums.lines().enumerate() {
        let Some((hash, path)) = line.split_once("  ") else {
            out.push(format!("SHA256SUMS line {}: not `<sha256>  <path>`", i + 1));
            continue;
        };
        listed.insert(path.to_owned());
        match bundle.files.get(path) {
            None => out.push(format!("{path}: listed in SHA256SUMS but missing")),
            Some(f) if sha256_hex(&f.bytes) != hash => {
                out.push(format!(
                    "{path}: sha256 does not match SHA256SUMS (the file was changed)"
                ));
            }
            Some(_) => {}
        }
    }
    for path in bundle.files.keys() {
        if path != "SHA256SUMS" && !listed.contains(path) {
            out.push(format!(
                "{path}: not listed in SHA256SUMS (added after compile)"
            ));
        }
    }
    match bundle
        .files
        .get("plan.json")
        .map(|f| serde_json::from_slice::<serde_json::Value>(&f.bytes))
    {
        None => out.push("plan.json is missing".into()),
        Some(Err(e)) => out.push(format!("plan.json does not parse: {e}")),
        Some(Ok(v)) => {
            let scripts = v["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["scripts"].as_array().into_iter().flatten())
                .filter_map(|p| p.as_str());
            for p in scripts {
                if !bundle.files.contains_key(p) {
                    out.push(format!("{p}: named in plan.json but missing"));
                }
            }
        }
    }
    out
}
