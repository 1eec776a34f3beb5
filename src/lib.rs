//! rewind compiles a rollback plan for an RKE2 cluster (or a Rancher HA
//! install on RKE1) into a bundle of per-host POSIX shell scripts and a
//! runbook.
//!
//! The pipeline, one module per stage, each using only the stages before it
//! and the shared modules below them:
//!
//! 1. [`spec`] reads the TOML plan (the only reader of input files) into a
//!    [`source::SourceFile`] and a serde mirror of the plan;
//! 2. [`validate`] checks it into a [`model::Model`], collecting every
//!    [`diagnostic::Diagnostic`];
//! 3. [`plan`] orders the steps and decides every operation of every script;
//! 4. [`render`] prints scripts, README, `plan.json` ([`manifest`]) and
//!    `SHA256SUMS` through the [`templates`] (shell values quoted by
//!    [`shell`]);
//! 5. [`bundle`] writes the folder atomically (the only writer).
//!
//! [`compiler`] runs those stages for a caller: `check`, `plan`, `build` in
//! memory, `write` to a folder. The review tools are one folder,
//! [`review`] (`explain`, `diff`, `audit`); [`golden`] compares a compiled
//! bundle with a reviewed copy, [`verify`] checks a bundle folder. [`app`]
//! maps the command line ([`cli`]) to these calls, prints, and owns the exit
//! codes. `tests/architecture.rs` keeps the modules free of import cycles.
#![deny(missing_docs)]

// The pipeline, in order.
// 1. The plan as written: TOML text to a serde mirror with spans.
pub mod spec;
// 2. Every precondition: Spec to Model, or diagnostics.
pub mod validate;
// 3. The procedure: Model to Plan, every step and typed operation.
pub mod plan;
// 4. The text: Plan to scripts, README, plan.json (in memory).
pub mod render;
// 4b. The playbook that runs the same scripts over SSH (rendered by render).
pub mod ansible;
// 5. The folder: written atomically, read back.
pub mod bundle;

// What the stages pass along or share.
pub mod choice;
pub mod diagnostic;
pub mod digest;
pub mod escape;
pub mod interrupt;
pub mod manifest;
pub mod mermaid;
pub mod model;
pub mod sensitive;
pub mod shell;
pub mod source;
pub mod templates;
pub mod version;

// The pipeline as a library call, and what reads bundles back.
pub mod compiler;
pub mod golden;
pub mod review;
pub mod verify;

// Plans written for the user, and the plan's schema.
pub mod init;
pub mod init_nodes;
pub mod init_rke;
pub mod schema;

// Before an upgrade: the capture bundle, and the plan written from its facts.
pub mod from_facts;
pub mod prepare;

// The command line.
pub mod app;
pub mod cli;
