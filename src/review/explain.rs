//! `rewind explain`: the procedure a plan compiles to, without writing a
//! bundle — the runbook's steps as text or markdown (`explain.txt.j2`,
//! `explain.md.j2`, with the Mermaid diagram), the diagram alone, or the
//! JSON of `plan.json`.

use minijinja::value::{Serde, Value};

use crate::mermaid;
use crate::plan::Plan;
use crate::{render, templates};

/// What `explain` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Every step with its hosts and runbook text, for a terminal.
    Text,
    /// The same as markdown, with the Mermaid diagram (for a pull request).
    Markdown,
    /// The text `plan.json` would hold.
    Json,
    /// The Mermaid flowchart of the steps alone.
    Mermaid,
}

/// The explanation of `plan` in `format`.
pub fn explain(plan: &Plan, format: Format) -> Result<String, minijinja::Error> {
    let manifest = render::manifest(plan);
    let template = match format {
        Format::Json => return Ok(manifest.to_json()),
        Format::Mermaid => return Ok(mermaid::flowchart(&manifest)),
        Format::Text => "explain.txt",
        Format::Markdown => "explain.md",
    };
    templates::environment()
        .get_template(template)?
        .render(minijinja::context! {
            plan => Value::from(Serde(plan)),
            steps => Value::from(Serde(render::steps_view(plan))),
            mermaid => crate::templates::trusted(mermaid::flowchart(&manifest)),
        })
}
