//! Plain-text tables and ages the way kubectl prints them, so the plugin's
//! output reads like `kubectl get`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// What an absent value prints as, as in kubectl.
pub(crate) const NONE: &str = "<none>";

/// Columns separated by three spaces, headers in capitals.
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The header and one line per row, each ending in a newline and
    /// without trailing spaces.
    pub(crate) fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let mut widths = vec![0; self.header.len()];
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line.iter()) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (cell, width) in line.iter().zip(&widths) {
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', width - cell.chars().count() + 3));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `sha256:` and the first 12 hex digits, as `docker images` shortens.
pub(crate) fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", hex.chars().take(12).collect::<String>()),
        None => digest.to_string(),
    }
}

/// The first 12 characters of a commit id.
pub(crate) fn short_commit(revision: &str) -> String {
    revision.chars().take(12).collect()
}

/// The value, or `<none>`.
pub(crate) fn or_none(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or(NONE).to_string()
}

/// A comma-separated list, or `<none>`.
/// A build as people cite it: its id, with the link to it when recorded
/// (`812 (https://ci.example.com/runs/812)`), or the link alone.
pub(crate) fn build(id: Option<&str>, url: Option<&str>) -> Option<String> {
    match (id, url) {
        (Some(id), Some(url)) => Some(format!("{id} ({url})")),
        (Some(only), None) | (None, Some(only)) => Some(only.to_string()),
        (None, None) => None,
    }
}

pub(crate) fn joined(values: &[String]) -> String {
    if values.is_empty() {
        NONE.to_string()
    } else {
        values.join(", ")
    }
}

/// How long ago `then` was, in kubectl's format (`45s`, `7m30s`, `3h5m`,
/// `2d4h`, `1y30d`): precise when recent, coarse when long ago.
pub(crate) fn age(now: &Time, then: &Time) -> String {
    let seconds = now.0.as_second() - then.0.as_second();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    elapsed(seconds.max(0))
}

/// A length of time in the same format as [`age`].
pub(crate) fn elapsed(seconds: i64) -> String {
    if seconds < 2 * 60 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return with_rest(minutes, "m", seconds % 60, "s");
    }
    if minutes < 3 * 60 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        return with_rest(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    let days = hours / 24;
    if hours < 24 * 8 {
        return with_rest(days, "d", hours % 24, "h");
    }
    if days < 365 * 2 {
        return format!("{days}d");
    }
    let years = days / 365;
    if years < 8 {
        return with_rest(years, "y", days % 365, "d");
    }
    format!("{years}y")
}

fn with_rest(big: i64, big_unit: &str, rest: i64, rest_unit: &str) -> String {
    if rest == 0 {
        format!("{big}{big_unit}")
    } else {
        format!("{big}{big_unit}{rest}{rest_unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(1_795_000_000 + second).expect("valid time"))
    }

    #[test]
    fn ages_read_like_kubectl() {
        let now = at(0);
        let ages: Vec<String> = [
            0,
            119,
            7 * 60 + 30,
            9 * 60,
            179 * 60,
            3 * 3600 + 5 * 60,
            47 * 3600,
            2 * 86400 + 4 * 3600,
            30 * 86400,
            800 * 86400,
            9 * 365 * 86400,
        ]
        .into_iter()
        .map(|ago| age(&now, &at(-ago)))
        .collect();
        assert_eq!(
            ages,
            [
                "0s", "119s", "7m30s", "9m", "179m", "3h5m", "47h", "2d4h", "30d", "2y70d", "9y"
            ]
        );
        assert_eq!(age(&now, &at(1)), "0s", "one second of clock skew");
        assert_eq!(age(&now, &at(60)), "<invalid>");
    }

    #[test]
    fn columns_align_on_the_widest_cell_without_trailing_spaces() {
        let mut table = Table::new(&["NAME", "PHASE", "MESSAGE"]);
        table.row(vec![
            "shop-1.4.3-prod".into(),
            "Waiting".into(),
            "held → approval".into(),
        ]);
        table.row(vec!["a".into(), "Succeeded".into(), String::new()]);
        assert_eq!(
            table.render(),
            "NAME              PHASE       MESSAGE\n\
             shop-1.4.3-prod   Waiting     held → approval\n\
             a                 Succeeded\n"
        );
    }
}
