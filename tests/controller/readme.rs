//! README blocks that show what commands print, kept in sync by the tests
//! that run those commands.

use std::path::Path;

use regex::Regex;

use super::TIMEOUT;

/// Runs the `kubectl-hoist` binary as a person does: `args` in namespace
/// `tenant`, with the kubeconfig `admin` (KUBECONFIG), or with `--kubeconfig`
/// of `person`'s file when given as `(person, file)`. Returns the command
/// line as the README shows it (the file as `<person>.kubeconfig`, the
/// namespace as `shop`) followed by what it printed.
pub async fn kubectl_hoist(
    admin: &Path,
    person: Option<(&str, &Path)>,
    tenant: &str,
    args: &[&str],
) -> String {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_kubectl-hoist"));
    command.env("KUBECONFIG", admin).args(args);
    if let Some((_, file)) = person {
        command.arg("--kubeconfig").arg(file);
    }
    let output = command.args(["-n", tenant]).kill_on_drop(true).output();
    let output = tokio::time::timeout(TIMEOUT, output)
        .await
        .unwrap_or_else(|_| panic!("kubectl hoist {args:?} did not finish within {TIMEOUT:?}"))
        .expect("kubectl-hoist runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl hoist {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut shown: Vec<String> = args
        .iter()
        .map(|arg| {
            if arg.contains(' ') {
                format!("\"{arg}\"")
            } else {
                arg.to_string()
            }
        })
        .collect();
    if let Some((name, _)) = person {
        shown.push(format!("--kubeconfig {name}.kubeconfig"));
    }
    format!("$ kubectl hoist {} -n shop\n{stdout}", shown.join(" "))
}

/// The Promotion `kubectl hoist rollback` created, from what it printed
/// (`Rolling back … : Promotion NAME`).
pub fn rollback_promotion(printed: &str) -> String {
    printed
        .lines()
        .find_map(|line| line.split("Promotion ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the rollback names its Promotion")
        .to_string()
}

/// What differs from run to run: times, ages, the random part of a
/// generated name, and so the padding of table columns.
fn stable(text: &str) -> String {
    let time = Regex::new(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z").expect("regex");
    // kubectl's ages, as `status` and `history` print them: "for 3s", "7m30s ago".
    let age = Regex::new(r"\b(for )?\d+[ydhms](\d+[dhms])?( ago)?\b").expect("regex");
    let generated = Regex::new(r"\b(shop-[0-9.-]+-prod)-[a-z0-9]{5}\b").expect("regex");
    let text = time.replace_all(text, "<time>");
    let text = age.replace_all(&text, |found: &regex::Captures<'_>| {
        match (found.get(1).is_some(), found.get(3).is_some()) {
            (true, _) => "for <age>".to_string(),
            (false, true) => "<age> ago".to_string(),
            (false, false) => found[0].to_string(),
        }
    });
    let text = generated.replace_all(&text, "$1-<random>");
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ```console block after `<!-- SECTION:NAME -->`: its byte range
/// within `readme`.
fn block(readme: &str, section: &str, name: &str) -> Option<std::ops::Range<usize>> {
    let marker = format!("<!-- {section}:{name} -->");
    let after = readme.find(&marker)? + marker.len();
    let open = after + readme[after..].find("```console\n")? + "```console\n".len();
    let close = open + readme[open..].find("```")?;
    Some(open..close)
}

/// Asserts that each `(name, text)` of `answers` is the README's block
/// after `<!-- SECTION:NAME -->` (volatile parts aside), once each `(from,
/// to)` of `own` (what is the run's own: namespaces, repositories) is
/// replaced by how the README shows it; with `HOIST_UPDATE_README=1` writes
/// them there instead. `test` names the test binary's filter that produces
/// them.
pub fn check(section: &str, test: &str, answers: &[(&str, String)], own: &[(String, String)]) {
    let answers: Vec<(&str, String)> = answers
        .iter()
        .map(|(name, text)| {
            let text = own
                .iter()
                .fold(text.clone(), |text, (from, to)| text.replace(from.as_str(), to));
            (*name, text)
        })
        .collect();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let mut readme = std::fs::read_to_string(&path).expect("README.md");
    if std::env::var_os("HOIST_UPDATE_README").is_some() {
        for (name, text) in &answers {
            let range = block(&readme, section, name).unwrap_or_else(|| {
                panic!("README.md has no ```console block after <!-- {section}:{name} -->")
            });
            readme.replace_range(range, text);
        }
        std::fs::write(&path, readme).expect("README.md written");
        return;
    }
    for (name, text) in &answers {
        let range = block(&readme, section, name)
            .unwrap_or_else(|| panic!("README.md has no ```console block after <!-- {section}:{name} -->"));
        assert_eq!(
            stable(&readme[range]),
            stable(text),
            "README.md's block {section}:{name} is not what the commands print; \
             HOIST_UPDATE_README=1 cargo nextest run --test controller {test} writes this run's"
        );
    }
}

#[test]
fn volatile_parts_are_set_aside_and_nothing_else() {
    assert_eq!(
        stable("shop   1.2.1   Healthy for 12s   3m20s ago   shop-1-1-0-prod-x7k2p   2026-12-02T10:20:00Z\n"),
        "shop 1.2.1 Healthy for <age> <age> ago shop-1-1-0-prod-<random> <time>"
    );
    assert_eq!(
        stable("kubectl hoist why shop-1.4.2-prod-q9w4z"),
        "kubectl hoist why shop-1.4.2-prod-<random>"
    );
    assert_ne!(stable("shop 1.2.1"), stable("shop 1.2.0"));
    assert_ne!(stable("sha256:0123456789ab"), stable("sha256:0123456789ac"));
    assert_ne!(
        stable("sha256:52674656d33d"),
        stable("sha256:52674656d34d"),
        "a digest is no age"
    );
    assert_ne!(stable("TIMEOUT: \"30s\""), stable("TIMEOUT: \"31s\""));
}
