use super::*;

const SHA256: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

/// Good and bad references, many from distribution/reference's own tests.
fn corpus() -> Vec<String> {
    let sha512 = format!("sha512:{}", "f".repeat(128));
    let mut corpus: Vec<String> = [
        "busybox",
        "test.com:tag",
        "test.com:5000",
        "test.com/repo:tag",
        "test:5000/repo",
        "test:5000/repo:tag",
        "lowercase:Uppercase",
        "Uppercase:tag",
        "sub-dom1.foo.com/bar/baz/quux",
        "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
        "b.gcr.io/test.example.com/my-app:test.example.com",
        "xn--n3h.com/myimage:xn--n3h.com",
        "foo_bar.com:8080",
        "foo/foo_bar.com:8080",
        "opensuse/leap:15.3",
        "localhost/foo",
        "localhost:5000/foo/bar:v1",
        "127.0.0.1:5000/shop/backend:v1.2.3",
        "index.docker.io/nginx",
        "index.docker.io/library/nginx:1.27",
        "docker.io/nginx",
        "ghcr.io/acme/api",
        "a",
        "a/b/c/d/e",
        "a__b",
        "a___b",
        "a--b",
        "a---b-c",
        "a.b_c__d-e",
        "a..b",
        "a._b",
        "_a",
        "a_",
        "-a",
        "a-",
        ".a",
        "a/",
        "/a",
        "a//b",
        ":justtag",
        "repo:",
        "repo@",
        "repo:tag@",
        "Not A Reference",
        "UPPER/case",
        "-host.com/a",
        "host-.com/a",
        "ho-st.com/a",
        "host.com:/a",
        "host.com:12a/a",
        "host.com:5000:6000/a",
        "[::1]:5000/a",
        "under_score.com/a",
        "a:-tag",
        "a:_tag",
        "a:.tag",
        "a:t@g",
        "a@b@c",
        "café:tag",
        "a:tég",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for name in ["repo", "test:5000/repo", "ghcr.io/acme/api"] {
        corpus.push(format!("{name}@{SHA256}"));
        corpus.push(format!("{name}:tag@{SHA256}"));
        corpus.push(format!("{name}@{sha512}"));
        corpus.push(format!("{name}@sha256:{}", "f".repeat(34)));
        corpus.push(format!("{name}@sha384:{}", "a".repeat(96)));
        corpus.push(format!("{name}@md5:{}", "f".repeat(32)));
        corpus.push(format!("{name}@sha256:{}", "g".repeat(64)));
        corpus.push(format!("{name}@sha256+b64u:{}", "f".repeat(64)));
        corpus.push(format!("{name}@1sha:{}", "f".repeat(64)));
        corpus.push(format!("{name}@sha256:{}", "f".repeat(31)));
    }
    corpus.push(format!("a:{}", "t".repeat(128)));
    corpus.push(format!("a:{}", "t".repeat(129)));
    corpus.push(format!("{}:tag", "a".repeat(255)));
    corpus.push(format!("{}/{}", "a".repeat(200), "b".repeat(60)));
    corpus.push(format!("host.com/{}", "b".repeat(255)));
    corpus.push(format!("host.com/{}", "b".repeat(256)));
    corpus
}

#[test]
fn agrees_with_the_regular_expression_of_oci_client() {
    for text in corpus() {
        let ours = parse(&text);
        let theirs = Reference::try_from(text.as_str());
        // Unicode word characters in tags: the regular expression takes
        // them, the OCI specification (and Hoist) does not.
        if text.contains(['é']) {
            assert!(ours.is_err(), "{text:?} has a non-ASCII character");
            continue;
        }
        match (&ours, &theirs) {
            (Ok(ours), Ok(theirs)) => {
                assert_eq!(ours.registry(), theirs.registry(), "{text:?}");
                assert_eq!(ours.repository(), theirs.repository(), "{text:?}");
                assert_eq!(ours.tag(), theirs.tag(), "{text:?}");
                assert_eq!(ours.digest(), theirs.digest(), "{text:?}");
                assert_eq!(ours.whole(), theirs.whole(), "{text:?}");
            }
            (Err(ours), Err(theirs)) => assert_eq!(ours, theirs, "{text:?}"),
            _ => panic!("{text:?}: ours {ours:?}, oci-client's {theirs:?}"),
        }
    }
}

#[test]
fn normalises_docker_hub_names() {
    assert_eq!(parse("nginx").unwrap().whole(), "docker.io/library/nginx:latest");
    assert_eq!(
        parse("index.docker.io/bitnami/redis:7").unwrap().whole(),
        "docker.io/bitnami/redis:7"
    );
    assert_eq!(
        parse("localhost:5000/shop/web").unwrap().whole(),
        "localhost:5000/shop/web:latest"
    );
}

const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn pinning_a_docker_hub_short_name_normalises_it() {
    assert_eq!(
        pinned_reference("nginx:1.27", DIGEST).unwrap(),
        format!("docker.io/library/nginx@{DIGEST}")
    );
    assert_eq!(
        pinned_reference("bitnami/redis", DIGEST).unwrap(),
        format!("docker.io/bitnami/redis@{DIGEST}")
    );
}

#[test]
fn pinning_keeps_registry_and_port_and_drops_the_tag() {
    assert_eq!(
        pinned_reference("127.0.0.1:5000/shop/backend:v1.2.3", DIGEST).unwrap(),
        format!("127.0.0.1:5000/shop/backend@{DIGEST}")
    );
}

#[test]
fn pinning_replaces_a_digest_already_present() {
    let other = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
    assert_eq!(
        pinned_reference(&format!("ghcr.io/acme/api:v1@{other}"), DIGEST).unwrap(),
        format!("ghcr.io/acme/api@{DIGEST}")
    );
}

#[test]
fn refuses_bad_references_with_the_reason() {
    assert_eq!(parse("").unwrap_err(), ParseError::NameEmpty);
    assert_eq!(parse("Shop/Web").unwrap_err(), ParseError::ReferenceInvalidFormat);
    assert_eq!(
        parse(&format!("web@md5:{}", "f".repeat(32))).unwrap_err(),
        ParseError::DigestUnsupported
    );
    assert_eq!(
        parse(&format!("web@sha256:{}", "f".repeat(40))).unwrap_err(),
        ParseError::DigestInvalidLength
    );
    assert_eq!(
        parse(&format!("host.com/{}", "b".repeat(256))).unwrap_err(),
        ParseError::NameTooLong
    );
}
