//! The crate-internal imports between the files of a crate's `src/`, read
//! from the parsed source: `use` items, grouped trees expanded, and paths in
//! code and in macro invocations, each starting with `crate::`, `self::` or
//! `super::` (other paths name another crate). `#[cfg(test)]` items and
//! modules, and files under a `tests/` directory, are left out: only what
//! the library is built from counts.
//!
//! A file is the module its path names (`src/core/gates.rs`: `core::gates`);
//! an import lands in the file of the longest module prefix of its path; a
//! path in code that lands in a `mod.rs` is not counted as importing it (a
//! `use` is), as the import-circles hook counts them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use proc_macro2::{Spacing, Span, TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Attribute, Ident, ImplItem, Item, Meta, Token, TraitItem, UseTree};

/// One crate-internal import.
#[derive(Debug)]
struct Import {
    line: usize,
    /// The path it names, from the crate root (`core::gates::Outcome`).
    path: Vec<String>,
    /// Written in code rather than in a `use` item.
    in_code: bool,
}

struct SourceFile {
    /// The module the file is, from the crate root (`src/core/mod.rs`: `core`).
    module: Vec<String>,
    imports: Vec<Import>,
}

/// The files of a crate's `src/` and what each of them imports.
pub struct SourceTree {
    /// By path relative to the crate's directory, e.g. `src/core/gates.rs`.
    files: BTreeMap<String, SourceFile>,
}

/// Files that import each other, directly or through one another.
#[derive(Debug, PartialEq, Eq)]
pub struct Circle {
    /// In order of their paths.
    pub files: Vec<String>,
    /// Each import from one file of the circle into another: (file, line, imported file).
    pub links: Vec<(String, usize, String)>,
}

/// An import of a file of one module from a module it must not import from.
#[derive(Debug, PartialEq, Eq)]
pub struct ForbiddenImport {
    pub file: String,
    pub line: usize,
    /// What it imports, from the crate root, e.g. `crate::registry::RegistryError`.
    pub path: String,
}

impl SourceTree {
    /// Reads and parses every `.rs` file under `crate_dir/src`.
    pub fn read(crate_dir: &Path) -> anyhow::Result<Self> {
        let mut paths = Vec::new();
        rust_files(&crate_dir.join("src"), &mut paths)?;
        paths.sort();
        let mut files = BTreeMap::new();
        let mut test_modules = Vec::new();
        for path in paths {
            let relative = path
                .strip_prefix(crate_dir)?
                .iter()
                .map(|part| part.to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {relative}"))?;
            let syntax = syn::parse_file(&text).with_context(|| format!("parsing {relative}"))?;
            let module = module_of(&relative);
            let mut reader = Reader {
                module: module.clone(),
                imports: Vec::new(),
                test_modules: &mut test_modules,
            };
            reader.visit_file(&syntax);
            let imports = reader.imports;
            files.insert(relative, SourceFile { module, imports });
        }
        files.retain(|_, file| !test_modules.iter().any(|test| file.module.starts_with(test)));
        Ok(Self { files })
    }

    /// The circles among the files, each with two files or more.
    pub fn circles(&self) -> Vec<Circle> {
        let edges = self.edges();
        let mut search = Components {
            edges: &edges,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            components: Vec::new(),
        };
        for file in self.files.keys() {
            if !search.index.contains_key(file.as_str()) {
                search.visit(file);
            }
        }
        let mut circles: Vec<Circle> = search
            .components
            .into_iter()
            .filter(|component| component.len() > 1)
            .map(|component| {
                let mut links = Vec::new();
                for from in &component {
                    for (to, lines) in &edges[from] {
                        if component.contains(to) {
                            links.extend(lines.iter().map(|line| (from.to_string(), *line, to.to_string())));
                        }
                    }
                }
                links.sort();
                Circle {
                    files: component.iter().map(|file| file.to_string()).collect(),
                    links,
                }
            })
            .collect();
        circles.sort_by(|a, b| a.files.cmp(&b.files));
        circles
    }

    /// The imports of the files of module `room` (e.g. `core`) from any
    /// of the modules `forbidden` (e.g. `registry`), in order of file and line.
    pub fn forbidden_imports(&self, room: &str, forbidden: &[&str]) -> Vec<ForbiddenImport> {
        let mut found = Vec::new();
        for (name, file) in &self.files {
            if file.module.first().map(String::as_str) != Some(room) {
                continue;
            }
            for import in &file.imports {
                if import
                    .path
                    .first()
                    .is_some_and(|first| forbidden.contains(&first.as_str()))
                {
                    found.push(ForbiddenImport {
                        file: name.clone(),
                        line: import.line,
                        path: format!("crate::{}", import.path.join("::")),
                    });
                }
            }
        }
        found.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        found
    }

    /// Per file, the files it imports, with the lines of the imports.
    fn edges(&self) -> BTreeMap<&str, BTreeMap<&str, BTreeSet<usize>>> {
        let mut edges: BTreeMap<&str, BTreeMap<&str, BTreeSet<usize>>> = BTreeMap::new();
        for (name, file) in &self.files {
            let targets = edges.entry(name.as_str()).or_default();
            for import in &file.imports {
                let Some(target) = self.file_of(&import.path) else {
                    continue;
                };
                if target != name && !(import.in_code && target.ends_with("/mod.rs")) {
                    targets.entry(target).or_default().insert(import.line);
                }
            }
        }
        edges
    }

    /// The file holding the module or item at `path`.
    fn file_of(&self, path: &[String]) -> Option<&str> {
        (1..=path.len()).rev().find_map(|length| {
            let base = format!("src/{}", path[..length].join("/"));
            [format!("{base}.rs"), format!("{base}/mod.rs")]
                .into_iter()
                .find_map(|candidate| {
                    self.files
                        .get_key_value(&candidate)
                        .map(|(name, _)| name.as_str())
                })
        })
    }
}

impl fmt::Display for Circle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "a circle of {} files: {}",
            self.files.len(),
            self.files.join(", ")
        )?;
        for (file, line, imported) in &self.links {
            writeln!(f, "  {file}:{line} imports {imported}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ForbiddenImport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{} imports {}", self.file, self.line, self.path)
    }
}

/// The `.rs` files under `dir`, but none under a `tests/` directory.
fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "tests") {
                rust_files(&path, found)?;
            }
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
    Ok(())
}

/// The module a file is: `src/core/gates.rs` is `core::gates`,
/// `src/core/mod.rs` is `core`, `src/lib.rs` the crate root.
fn module_of(relative: &str) -> Vec<String> {
    let inside = relative.trim_start_matches("src/").trim_end_matches(".rs");
    let mut module: Vec<String> = inside.split('/').map(str::to_owned).collect();
    if module
        .last()
        .is_some_and(|last| ["mod", "lib", "main"].contains(&last.as_str()))
    {
        module.pop();
    }
    module
}

/// `path`, written in `module`, from the crate root; `None` for a path
/// into another crate.
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some([module, rest].concat()),
        "super" => {
            let mut base = module.to_vec();
            let mut rest = path;
            while let Some((head, tail)) = rest.split_first()
                && head == "super"
            {
                base.pop()?;
                rest = tail;
            }
            Some([base.as_slice(), rest].concat())
        }
        _ => None,
    }
}

/// Whether `attrs` compile their item only for tests: `#[cfg(test)]`, or
/// `#[cfg(all(.., test, ..))]`.
fn is_test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg") && attr.parse_args::<Meta>().is_ok_and(|meta| requires_test(&meta))
    })
}

fn requires_test(meta: &Meta) -> bool {
    match meta {
        Meta::Path(path) => path.is_ident("test"),
        Meta::List(list) if list.path.is_ident("all") => list
            .parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)
            .is_ok_and(|all| all.iter().any(requires_test)),
        _ => false,
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(item) => &item.attrs,
        Item::Enum(item) => &item.attrs,
        Item::ExternCrate(item) => &item.attrs,
        Item::Fn(item) => &item.attrs,
        Item::ForeignMod(item) => &item.attrs,
        Item::Impl(item) => &item.attrs,
        Item::Macro(item) => &item.attrs,
        Item::Mod(item) => &item.attrs,
        Item::Static(item) => &item.attrs,
        Item::Struct(item) => &item.attrs,
        Item::Trait(item) => &item.attrs,
        Item::TraitAlias(item) => &item.attrs,
        Item::Type(item) => &item.attrs,
        Item::Union(item) => &item.attrs,
        Item::Use(item) => &item.attrs,
        _ => &[],
    }
}

fn impl_item_attrs(item: &ImplItem) -> &[Attribute] {
    match item {
        ImplItem::Const(item) => &item.attrs,
        ImplItem::Fn(item) => &item.attrs,
        ImplItem::Type(item) => &item.attrs,
        ImplItem::Macro(item) => &item.attrs,
        _ => &[],
    }
}

fn trait_item_attrs(item: &TraitItem) -> &[Attribute] {
    match item {
        TraitItem::Const(item) => &item.attrs,
        TraitItem::Fn(item) => &item.attrs,
        TraitItem::Type(item) => &item.attrs,
        TraitItem::Macro(item) => &item.attrs,
        _ => &[],
    }
}

/// Collects the imports of one file.
struct Reader<'a> {
    /// The module being read: the file's, or an inline module within it.
    module: Vec<String>,
    imports: Vec<Import>,
    /// Modules compiled for tests only, from the crate root.
    test_modules: &'a mut Vec<Vec<String>>,
}

impl Reader<'_> {
    fn record(&mut self, path: &[String], span: Span, in_code: bool) {
        if let Some(path) = resolve(&self.module, path) {
            self.imports.push(Import {
                line: span.start().line,
                path,
                in_code,
            });
        }
    }

    /// Records each path a `use` tree names: `a::{b, c::{self, d}}` names
    /// `a::b`, `a::c` and `a::c::d`.
    fn record_use(&mut self, tree: &UseTree, prefix: &mut Vec<String>) {
        match tree {
            UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.record_use(&path.tree, prefix);
                prefix.pop();
            }
            UseTree::Name(name) => self.record_use_leaf(prefix, &name.ident),
            UseTree::Rename(rename) => self.record_use_leaf(prefix, &rename.ident),
            UseTree::Glob(glob) => self.record(prefix, glob.star_token.span, false),
            UseTree::Group(group) => {
                for tree in &group.items {
                    self.record_use(tree, prefix);
                }
            }
        }
    }

    /// `prefix::name`, or `prefix` itself for `self`.
    fn record_use_leaf(&mut self, prefix: &mut Vec<String>, name: &Ident) {
        if name == "self" {
            self.record(prefix, name.span(), false);
        } else {
            prefix.push(name.to_string());
            self.record(prefix, name.span(), false);
            prefix.pop();
        }
    }

    /// Records the `crate::`, `self::` and `super::` paths among a macro's tokens.
    fn record_macro_paths(&mut self, tokens: TokenStream) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut at = 0;
        while at < tokens.len() {
            match &tokens[at] {
                TokenTree::Group(group) => self.record_macro_paths(group.stream()),
                TokenTree::Ident(start) if start == "crate" || start == "self" || start == "super" => {
                    let mut path = vec![start.to_string()];
                    while let (
                        Some(TokenTree::Punct(first)),
                        Some(TokenTree::Punct(second)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(at + 1), tokens.get(at + 2), tokens.get(at + 3))
                        && first.as_char() == ':'
                        && first.spacing() == Spacing::Joint
                        && second.as_char() == ':'
                    {
                        path.push(next.to_string());
                        at += 3;
                    }
                    if path.len() > 1 {
                        self.record(&path, start.span(), true);
                    }
                }
                _ => {}
            }
            at += 1;
        }
    }

    fn skip_test_module(&mut self, name: &Ident) {
        let mut module = self.module.clone();
        module.push(name.to_string());
        self.test_modules.push(module);
    }
}

impl<'ast> Visit<'ast> for Reader<'_> {
    fn visit_file(&mut self, file: &'ast syn::File) {
        if is_test_only(&file.attrs) {
            self.test_modules.push(self.module.clone());
        } else {
            visit::visit_file(self, file);
        }
    }

    fn visit_item(&mut self, item: &'ast Item) {
        if !is_test_only(item_attrs(item)) {
            visit::visit_item(self, item);
        } else if let Item::Mod(module) = item {
            self.skip_test_module(&module.ident);
        }
    }

    fn visit_item_mod(&mut self, module: &'ast syn::ItemMod) {
        if module.content.is_some() {
            self.module.push(module.ident.to_string());
            visit::visit_item_mod(self, module);
            self.module.pop();
        }
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_none() {
            self.record_use(&item.tree, &mut Vec::new());
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        if !is_test_only(impl_item_attrs(item)) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast TraitItem) {
        if !is_test_only(trait_item_attrs(item)) {
            visit::visit_trait_item(self, item);
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            let segments: Vec<String> = path
                .segments
                .iter()
                .map(|segment| segment.ident.to_string())
                .collect();
            self.record(&segments, path.segments[0].ident.span(), true);
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.record_macro_paths(mac.tokens.clone());
        visit::visit_macro(self, mac);
    }
}

/// Tarjan's strongly connected components of the import graph.
struct Components<'e, 'f> {
    edges: &'e BTreeMap<&'f str, BTreeMap<&'f str, BTreeSet<usize>>>,
    index: BTreeMap<&'f str, usize>,
    low: BTreeMap<&'f str, usize>,
    stack: Vec<&'f str>,
    on_stack: BTreeSet<&'f str>,
    components: Vec<BTreeSet<&'f str>>,
}

impl<'f> Components<'_, 'f> {
    fn visit(&mut self, file: &'f str) {
        let index = self.index.len();
        self.index.insert(file, index);
        self.low.insert(file, index);
        self.stack.push(file);
        self.on_stack.insert(file);
        for &target in self.edges[file].keys() {
            if !self.index.contains_key(target) {
                self.visit(target);
                let low = self.low[file].min(self.low[target]);
                self.low.insert(file, low);
            } else if self.on_stack.contains(target) {
                let low = self.low[file].min(self.index[target]);
                self.low.insert(file, low);
            }
        }
        if self.low[file] == index {
            let mut component = BTreeSet::new();
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(member);
                component.insert(member);
                if member == file {
                    break;
                }
            }
            self.components.push(component);
        }
    }
}
