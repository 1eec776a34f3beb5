//! The JSON Schema of the plan format, generated from the serde types of
//! [`crate::spec`], so that it cannot drift from what the reader accepts.
//!
//! `rewind schema` prints it and `schema/plan.schema.json` is the checked-in
//! copy that every file in `plans/` names on its `#:schema` first line, so
//! taplo-based editors complete keys and flag typos while the plan is
//! written. It is draft 7 because that is what those editors validate. The
//! schema describes the shape only; the rules between fields (one init
//! server, snapshot minor, …) are `rewind check`'s.

use schemars::Schema;
use schemars::generate::SchemaSettings;
use schemars::transform::{Transform, transform_subschemas};
use serde_json::Value;

use crate::spec::Spec;

/// Where the repository keeps the generated schema (relative to its root).
pub const PATH: &str = "schema/plan.schema.json";

/// The `#:schema` line that starts every reference plan in `plans/`.
pub const DIRECTIVE: &str = "#:schema ../schema/plan.schema.json";

/// The schema as pretty JSON, ending in a newline.
pub fn json() -> String {
    let mut settings = SchemaSettings::draft07();
    // First, so that draft 7's RemoveRefSiblings sees the `$ref`s it exposes.
    settings.transforms.insert(0, Box::new(NoNull));
    let mut schema = settings.into_generator().into_root_schema_for::<Spec>();
    schema.insert("title".into(), "rewind plan (format 1)".into());
    schema.insert(
        "description".into(),
        "A rollback plan for `rewind check` / `rewind compile`. Keys are kebab-case; unknown keys are errors."
            .into(),
    );
    let mut text =
        serde_json::to_string_pretty(&schema).expect("bug in rewind: the schema serialises");
    text.push('\n');
    text
}

/// Drops `null` from optional values: serde reads an absent TOML key as
/// `None`, and TOML has no null, so allowing one would only hide typos
/// like `port = ""` behind a second branch.
#[derive(Debug, Clone)]
struct NoNull;

impl Transform for NoNull {
    fn transform(&mut self, schema: &mut Schema) {
        if let Some(obj) = schema.as_object_mut() {
            if let Some(Value::Array(types)) = obj.get("type") {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                let ty = match kept.as_slice() {
                    [one] => one.clone(),
                    _ => Value::Array(kept),
                };
                obj.insert("type".into(), ty);
            }
            if let Some(Value::Array(branches)) = obj.get("anyOf") {
                let kept: Vec<Value> = branches
                    .iter()
                    .filter(|b| b.get("type").is_none_or(|t| t != "null"))
                    .cloned()
                    .collect();
                if let [one] = kept.as_slice() {
                    obj.remove("anyOf");
                    if let Value::Object(inner) = one.clone() {
                        for (k, v) in inner {
                            obj.entry(k).or_insert(v);
                        }
                    }
                } else {
                    obj.insert("anyOf".into(), Value::Array(kept));
                }
            }
        }
        transform_subschemas(self, schema);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemars::json_schema;

    #[test]
    fn optional_values_are_not_nullable() {
        let mut s = json_schema!({ "type": ["string", "null"] });
        NoNull.transform(&mut s);
        assert_eq!(s, json_schema!({ "type": "string" }));

        let mut s = json_schema!({
            "description": "d",
            "anyOf": [{ "$ref": "#/definitions/X" }, { "type": "null" }]
        });
        NoNull.transform(&mut s);
        assert_eq!(
            s,
            json_schema!({ "description": "d", "$ref": "#/definitions/X" })
        );
    }

    #[test]
    fn the_schema_knows_every_section_and_refuses_unknown_keys() {
        let v: Value = serde_json::from_str(&json()).unwrap();
        assert_eq!(v["$schema"], "http://json-schema.org/draft-07/schema#");
        assert_eq!(v["additionalProperties"], false);
        for key in [
            "format",
            "cluster",
            "datastore",
            "snapshot",
            "token",
            "install",
            "drain",
            "rke",
            "recovery",
            "nodes",
        ] {
            assert!(v["properties"][key].is_object(), "{key}");
        }
        let cluster = &v["definitions"]["ClusterSpec"];
        assert_eq!(cluster["additionalProperties"], false);
        assert_eq!(
            cluster["properties"]["distribution"]["enum"],
            serde_json::json!(["rke2", "rke1", "k3s"])
        );
        assert!(!json().contains("\"null\""));
    }
}
