//! The checker on small source trees written to a temporary directory.

use super::ABOVE_THE_CORE;
use super::imports::{Circle, ForbiddenImport, SourceTree};

/// The source tree of a crate whose `src/` holds `files` (path under
/// `src/`, text).
fn tree(files: &[(&str, &str)]) -> anyhow::Result<SourceTree> {
    let dir = tempfile::tempdir()?;
    for (path, text) in files {
        let path = dir.path().join("src").join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
    }
    SourceTree::read(dir.path())
}

fn link(file: &str, line: usize, imported: &str) -> (String, usize, String) {
    (file.to_owned(), line, imported.to_owned())
}

fn forbidden(file: &str, line: usize, path: &str) -> ForbiddenImport {
    ForbiddenImport {
        file: file.to_owned(),
        line,
        path: path.to_owned(),
    }
}

#[test]
fn two_files_importing_each_other_are_a_circle_named_with_its_lines() -> anyhow::Result<()> {
    let source = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a.rs", "use crate::b::Plan;\n\npub struct Gate;\n"),
        (
            "b.rs",
            "pub struct Plan;\n\npub fn gate() -> crate::a::Gate {\n    crate::a::Gate\n}\n",
        ),
    ])?;
    let circles = source.circles();
    assert_eq!(
        circles,
        vec![Circle {
            files: vec!["src/a.rs".into(), "src/b.rs".into()],
            links: vec![
                link("src/a.rs", 1, "src/b.rs"),
                link("src/b.rs", 3, "src/a.rs"),
                link("src/b.rs", 4, "src/a.rs"),
            ],
        }]
    );
    assert_eq!(
        circles[0].to_string(),
        "a circle of 2 files: src/a.rs, src/b.rs\n  src/a.rs:1 imports src/b.rs\n  src/b.rs:3 imports src/a.rs\n  \
         src/b.rs:4 imports src/a.rs\n"
    );
    Ok(())
}

#[test]
fn a_circle_through_a_grouped_use_is_found() -> anyhow::Result<()> {
    let source = tree(&[
        ("lib.rs", "pub mod core;\n"),
        ("core/mod.rs", "pub mod gates;\npub mod soak;\npub mod windows;\n"),
        (
            "core/gates.rs",
            "use crate::core::{\n    soak::{self, Soak},\n    windows::Window,\n};\n",
        ),
        ("core/soak.rs", "pub struct Soak;\n"),
        ("core/windows.rs", "use super::gates;\n\npub struct Window;\n"),
    ])?;
    assert_eq!(
        source.circles(),
        vec![Circle {
            files: vec!["src/core/gates.rs".into(), "src/core/windows.rs".into()],
            links: vec![
                link("src/core/gates.rs", 3, "src/core/windows.rs"),
                link("src/core/windows.rs", 1, "src/core/gates.rs"),
            ],
        }]
    );
    Ok(())
}

#[test]
fn a_super_path_climbing_out_of_the_core_imports_from_above_it() -> anyhow::Result<()> {
    let source = tree(&[
        ("lib.rs", "pub mod core;\npub mod registry;\n"),
        ("core/mod.rs", "pub mod gates;\n"),
        (
            "core/gates.rs",
            "use super::super::registry::Resolver;\n\npub fn resolve() {\n    super::super::registry::resolve();\n}\n",
        ),
        ("registry.rs", "pub struct Resolver;\n\npub fn resolve() {}\n"),
    ])?;
    assert_eq!(
        source.forbidden_imports("core", &ABOVE_THE_CORE),
        vec![
            forbidden("src/core/gates.rs", 1, "crate::registry::Resolver"),
            forbidden("src/core/gates.rs", 4, "crate::registry::resolve"),
        ]
    );
    assert_eq!(source.circles(), Vec::new());
    Ok(())
}

#[test]
fn an_import_from_above_the_core_is_named_by_file_and_line() -> anyhow::Result<()> {
    let source = tree(&[
        (
            "lib.rs",
            "pub mod api;\npub mod core;\npub mod registry;\npub mod render;\n",
        ),
        ("api.rs", "pub struct Artifact;\n"),
        ("core/mod.rs", "pub mod artifact;\n"),
        (
            "core/artifact.rs",
            "//! Artifacts.\n\nuse crate::registry::RegistryError;\nuse crate::api::Artifact;\n\npub fn name() -> String \
             {\n    format!(\"{}\", crate::render::NAME)\n}\n",
        ),
        ("registry.rs", "pub struct RegistryError;\n"),
        ("render.rs", "pub const NAME: &str = \"render\";\n"),
    ])?;
    let found = source.forbidden_imports("core", &ABOVE_THE_CORE);
    assert_eq!(
        found,
        vec![
            forbidden("src/core/artifact.rs", 3, "crate::registry::RegistryError"),
            forbidden("src/core/artifact.rs", 7, "crate::render::NAME"),
        ]
    );
    assert_eq!(
        found[0].to_string(),
        "src/core/artifact.rs:3 imports crate::registry::RegistryError"
    );
    Ok(())
}

#[test]
fn a_clean_tree_passes_and_code_built_for_tests_only_is_left_out() -> anyhow::Result<()> {
    let source = tree(&[
        ("lib.rs", "pub mod api;\npub mod core;\npub mod registry;\n"),
        (
            "api.rs",
            "#[cfg(all(test, feature = \"fakes\"))]\nuse crate::registry::Resolver;\n\npub struct Artifact;\n",
        ),
        (
            "core/mod.rs",
            "pub mod gates;\n#[cfg(test)]\nmod fixture;\n\npub use gates::Outcome;\n",
        ),
        (
            "core/gates.rs",
            "use crate::api::Artifact;\n\npub struct Outcome(Artifact);\n\n#[cfg(test)]\nmod tests {\n    use \
             crate::registry::Resolver;\n    use super::super::fixture;\n}\n",
        ),
        (
            "core/fixture.rs",
            "use crate::registry::Resolver;\nuse super::gates::Outcome;\n",
        ),
        ("core/tests/helpers.rs", "use crate::registry::Resolver;\n"),
        (
            "registry.rs",
            "use crate::core::Outcome;\nuse crate::api::Artifact;\n\npub struct Resolver;\n",
        ),
    ])?;
    assert_eq!(source.circles(), Vec::new());
    assert_eq!(source.forbidden_imports("core", &ABOVE_THE_CORE), Vec::new());
    // Not vacuous: the imports of what the library is built from were read.
    assert_eq!(
        source.forbidden_imports("registry", &["core", "api"]),
        vec![
            forbidden("src/registry.rs", 1, "crate::core::Outcome"),
            forbidden("src/registry.rs", 2, "crate::api::Artifact"),
        ]
    );
    Ok(())
}
