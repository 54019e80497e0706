//! The chart's Grafana dashboard (charts/hoist/dashboards/hoist.json) read
//! as Grafana does: every PromQL query of its panels and variables, the
//! metric names each one selects, and the names an operator's `/metrics`
//! exports, so a test can refuse a panel that names a metric nobody exports.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context as _;
use serde_json::Value;

/// One query of the dashboard: where it is (panel title, or variable name) and its PromQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub place: String,
    pub expr: String,
}

/// Every query of the dashboard at `path`: each panel target's `expr`
/// (rows included) and the selector of each `label_values(…)` variable.
pub fn queries(path: &Path) -> anyhow::Result<Vec<Query>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let dashboard: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().into_iter().flatten().collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"]
                .as_str()
                .with_context(|| format!("a target of panel {} has no expr", panel["title"]))?;
            out.push(Query {
                place: format!("panel {}", panel["title"]),
                expr: expr.to_owned(),
            });
        }
    }
    for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
        if variable["type"] != "query" {
            continue;
        }
        let query = variable["query"]["query"]
            .as_str()
            .with_context(|| format!("variable {} has no query", variable["name"]))?;
        let selector = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.rsplit_once(','))
            .map(|(selector, _label)| selector.trim())
            .with_context(|| {
                format!(
                    "variable {}: {query:?} is not label_values(SELECTOR, LABEL)",
                    variable["name"]
                )
            })?;
        out.push(Query {
            place: format!("variable {}", variable["name"]),
            expr: selector.to_owned(),
        });
    }
    out.reverse();
    Ok(out)
}

/// The query with Grafana's variables replaced by values PromQL takes:
/// ranges by `1d`/`5m`, `$__range_s` by its seconds, label values by `.*`.
pub fn substituted(expr: &str) -> String {
    expr.replace("$__range_s", "86400")
        .replace("$__rate_interval", "5m")
        .replace("$__interval", "1m")
        .replace("$__range", "1d")
        .replace("$namespace", ".*")
        .replace("$application", ".*")
        .replace("$environment", ".*")
}

/// PromQL's keywords and aggregation operators: names that are not metrics.
const NOT_METRICS: [&str; 23] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names a PromQL query selects: identifiers outside label
/// matchers (`{…}`), ranges (`[…]`), strings and label lists (`by (…)`),
/// that are neither functions (followed by `(`) nor keywords.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut index = 0;
    let mut previous_word = String::new();
    while let Some(&c) = chars.get(index) {
        match c {
            '{' | '[' | '"' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => '"',
                };
                index += 1;
                while chars.get(index).is_some_and(|&c| c != close) {
                    index += 1;
                }
                index += 1;
            }
            '(' if ["by", "without", "on", "ignoring", "group_left", "group_right"]
                .contains(&previous_word.as_str()) =>
            {
                while chars.get(index).is_some_and(|&c| c != ')') {
                    index += 1;
                }
                index += 1;
                previous_word.clear();
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = index;
                while chars
                    .get(index)
                    .is_some_and(|&c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                {
                    index += 1;
                }
                let word: String = chars[start..index].iter().collect();
                let mut next = index;
                while chars.get(next).is_some_and(|c| c.is_whitespace()) {
                    next += 1;
                }
                let function = chars.get(next) == Some(&'(');
                if !function && !NOT_METRICS.contains(&word.as_str()) {
                    names.insert(word.clone());
                }
                previous_word = word;
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number or a duration (`5m`, `1e3`): no metric.
                while chars
                    .get(index)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
                {
                    index += 1;
                }
            }
            _ => index += 1,
        }
    }
    names
}

/// The names of the samples of a family `name` of type `kind` (as a
/// `# TYPE` line spells it): `_total` of a counter; `_bucket`, `_sum` and
/// `_count` of a histogram; the name itself otherwise.
pub fn samples_of(name: &str, kind: &str) -> Vec<String> {
    match kind {
        "counter" => vec![format!("{}_total", name.trim_end_matches("_total"))],
        "histogram" => ["_bucket", "_sum", "_count"]
            .iter()
            .map(|suffix| format!("{name}{suffix}"))
            .collect(),
        _ => vec![name.to_owned()],
    }
}

/// The sample names a `/metrics` text exposition holds or announces: each
/// sample line's name, and the samples of each `# TYPE` line's family.
pub fn exported(metrics: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut parts = declared.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                names.extend(samples_of(name, kind));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            names.insert(name);
        }
    }
    names
}
