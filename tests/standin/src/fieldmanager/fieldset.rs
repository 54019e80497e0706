//! Sets of field paths, as structured-merge-diff's `fieldpath.Set`, with the
//! `FieldsV1` encoding of `metadata.managedFields` and the path rendering of
//! apply conflicts.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Debug, Clone)]
pub(crate) enum PathElement {
    /// A field of an object: `f:name`, rendered `.name`.
    Field(String),
    /// An item of a `map` list, by its key fields sorted by name:
    /// `k:{"name":"app"}`, rendered `[name="app"]`.
    Key(Vec<(String, Value)>),
    /// An item of a `set` list, by value: `v:"x"`, rendered `[="x"]`.
    Value(Value),
    /// An item of a list by position: `i:0`, rendered `[0]`.
    Index(usize),
}

pub(crate) type Path = Vec<PathElement>;

/// Why a `FieldsV1` document could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FieldsV1Error {
    #[error("fieldsV1 must be a JSON object")]
    NotAnObject,
    #[error("unknown path element {0:?}")]
    UnknownElement(String),
    #[error("path element {element:?} does not hold valid JSON")]
    BadJson {
        element: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("path element {0:?} is not a valid list index")]
    BadIndex(String),
}

/// structured-merge-diff's total order of values: numbers, strings,
/// booleans, lists, maps, null.
fn rank(value: &Value) -> u8 {
    match value {
        Value::Number(_) => 0,
        Value::String(_) => 1,
        Value::Bool(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Null => 5,
    }
}

pub(crate) fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => {
                let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
                x.total_cmp(&y)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (x, y) in x.iter().zip(y) {
                let order = compare_values(x, y);
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            for ((kx, vx), (ky, vy)) in x.iter().zip(y) {
                let order = kx.cmp(ky).then_with(|| compare_values(vx, vy));
                if order != Ordering::Equal {
                    return order;
                }
            }
            x.len().cmp(&y.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl PathElement {
    fn kind(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element.
    fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(fields) => {
                let object: Map<String, Value> = fields.iter().cloned().collect();
                format!("k:{}", Value::Object(object))
            }
            PathElement::Value(value) => format!("v:{value}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(element: &str) -> Result<Self, FieldsV1Error> {
        let json = |text: &str| {
            serde_json::from_str::<Value>(text).map_err(|source| FieldsV1Error::BadJson {
                element: element.to_owned(),
                source,
            })
        };
        match element.split_once(':') {
            Some(("f", name)) => Ok(PathElement::Field(name.to_owned())),
            Some(("k", key)) => match json(key)? {
                Value::Object(fields) => Ok(PathElement::Key(fields.into_iter().collect())),
                _ => Err(FieldsV1Error::UnknownElement(element.to_owned())),
            },
            Some(("v", value)) => Ok(PathElement::Value(json(value)?)),
            Some(("i", index)) => index
                .parse()
                .map(PathElement::Index)
                .map_err(|_| FieldsV1Error::BadIndex(element.to_owned())),
            _ => Err(FieldsV1Error::UnknownElement(element.to_owned())),
        }
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((na, va), (nb, vb)) in a.iter().zip(b) {
                    let order = na.cmp(nb).then_with(|| compare_values(va, vb));
                    if order != Ordering::Equal {
                        return order;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.kind().cmp(&other.kind()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

/// A path as the apiserver prints it in conflicts:
/// `.spec.template.spec.containers[name="app"].image`.
pub(crate) fn render(path: &[PathElement]) -> String {
    path.iter()
        .map(|element| match element {
            PathElement::Field(name) => format!(".{name}"),
            PathElement::Key(fields) => {
                let fields: Vec<String> = fields
                    .iter()
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect();
                format!("[{}]", fields.join(","))
            }
            PathElement::Value(value) => format!("[={value}]"),
            PathElement::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// A set of paths: `members` are owned themselves, `children` hold owned
/// paths below.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.values().all(FieldSet::is_empty)
    }

    pub(crate) fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    pub(crate) fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|child| child.contains(rest)),
        }
    }

    /// Whether some path strictly below `path` is in the set.
    pub(crate) fn has_below(&self, path: &[PathElement]) -> bool {
        match path {
            [] => !self.is_empty(),
            [first, rest @ ..] => self
                .children
                .get(first)
                .is_some_and(|child| child.has_below(rest)),
        }
    }

    pub(crate) fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (element, child) in &other.children {
            let merged = out
                .children
                .get(element)
                .map_or_else(|| child.clone(), |mine| mine.union(child));
            out.children.insert(element.clone(), merged);
        }
        out
    }

    /// The paths of `self` that are not in `other` (paths, not subtrees).
    pub(crate) fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .map(|(element, child)| match other.children.get(element) {
                Some(theirs) => (element.clone(), child.difference(theirs)),
                None => (element.clone(), child.clone()),
            })
            .filter(|(_, child)| !child.is_empty())
            .collect();
        FieldSet { members, children }
    }

    pub(crate) fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let children = self
            .children
            .iter()
            .filter_map(|(element, child)| {
                other
                    .children
                    .get(element)
                    .map(|theirs| (element.clone(), child.intersection(theirs)))
            })
            .filter(|(_, child)| !child.is_empty())
            .collect();
        FieldSet { members, children }
    }

    /// Removes `path` from the members, keeping what is below it.
    pub(crate) fn remove_member(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(child) = self.children.get_mut(first) {
                    child.remove_member(rest);
                }
            }
        }
    }

    /// Removes `path` and everything below it.
    pub(crate) fn remove_tree(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.remove(last);
                self.children.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(child) = self.children.get_mut(first) {
                    child.remove_tree(rest);
                    if child.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Every member path, in structured-merge-diff's iteration order: at each
    /// level the members first, then the children.
    pub(crate) fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for member in &self.members {
            let mut path = prefix.clone();
            path.push(member.clone());
            out.push(path);
        }
        for (element, child) in &self.children {
            prefix.push(element.clone());
            child.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` document: `{}` for members, `"."` for a member that
    /// also has children.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut elements: BTreeMap<&PathElement, Value> = BTreeMap::new();
        for member in &self.members {
            elements.insert(member, Value::Object(Map::new()));
        }
        for (element, child) in &self.children {
            if child.is_empty() {
                continue;
            }
            let Value::Object(mut encoded) = child.to_fields_v1() else {
                continue;
            };
            if self.members.contains(element) {
                encoded.insert(".".to_owned(), Value::Object(Map::new()));
            }
            elements.insert(element, Value::Object(encoded));
        }
        Value::Object(
            elements
                .into_iter()
                .map(|(element, value)| (element.encode(), value))
                .collect(),
        )
    }

    pub(crate) fn from_fields_v1(document: &Value) -> Result<FieldSet, FieldsV1Error> {
        let Value::Object(entries) = document else {
            return Err(FieldsV1Error::NotAnObject);
        };
        let mut set = FieldSet::default();
        for (key, value) in entries {
            if key == "." {
                continue;
            }
            let element = PathElement::decode(key)?;
            let Value::Object(below) = value else {
                return Err(FieldsV1Error::NotAnObject);
            };
            if below.is_empty() || below.contains_key(".") {
                set.members.insert(element.clone());
            }
            let child = FieldSet::from_fields_v1(value)?;
            if !child.is_empty() {
                set.children.insert(element, child);
            }
        }
        Ok(set)
    }
}
