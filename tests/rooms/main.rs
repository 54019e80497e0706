//! The rooms of `src/` and their doors, read from the source: no file
//! imports itself through others, and the pure core (`src/core`) imports
//! nothing above it: `registry`, `controller`, `render`, `plugin` and `cli`
//! call the core, never the reverse (the README's Layout). Each failure
//! names the files and lines to change.

mod imports;
mod synthetic;

use std::path::Path;

use imports::SourceTree;

/// What the core may not import from.
const ABOVE_THE_CORE: [&str; 5] = ["registry", "controller", "render", "plugin", "cli"];

fn hoist_source() -> anyhow::Result<SourceTree> {
    SourceTree::read(Path::new(env!("CARGO_MANIFEST_DIR")))
}

/// The failure message for `circles`.
fn circles_message(circles: &[imports::Circle]) -> String {
    let listed: Vec<String> = circles.iter().map(ToString::to_string).collect();
    format!(
        "{} import circle(s) among the files of src/; cut each one where an import goes the wrong way:\n{}",
        circles.len(),
        listed.join("")
    )
}

/// The failure message for `found`, imports of the core from above it.
fn upward_message(found: &[imports::ForbiddenImport]) -> String {
    let listed: Vec<String> = found.iter().map(|import| format!("  {import}\n")).collect();
    format!(
        "src/core imports from above it ({}) {} time(s); move what it needs into the core, or the decision out of it:\n{}",
        ABOVE_THE_CORE.join(", "),
        found.len(),
        listed.join("")
    )
}

#[test]
fn the_files_of_src_import_each_other_in_no_circle() -> anyhow::Result<()> {
    let circles = hoist_source()?.circles();
    assert!(circles.is_empty(), "{}", circles_message(&circles));
    Ok(())
}

#[test]
fn the_core_imports_nothing_above_it() -> anyhow::Result<()> {
    let found = hoist_source()?.forbidden_imports("core", &ABOVE_THE_CORE);
    assert!(found.is_empty(), "{}", upward_message(&found));
    Ok(())
}
