//! The registry client against a real OCI registry (docker-registry started by
//! `scripts/registry start`, address in `HOIST_TEST_REGISTRY`).

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures::future::join_all;
use hoist::core::supply_chain::{Attachments, Layer as SupplyChainLayer};
use hoist::registry::{
    PullSecrets, ReferenceError, RegistryError, Resolver, ResolverConfig, pinned_reference,
};
use hoist_testkit::referrers::ReferrersRegistry;
use hoist_testkit::registry::{
    AuthRegistry, PushedImage, move_tag, push_image, push_multi, registry_address, unique_repository,
};
use hoist_testkit::signing::{self, SigningKey};
use oci_client::manifest::OciDescriptor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn resolver_for(registries: &[&str], max_concurrent: usize) -> anyhow::Result<Resolver> {
    Ok(Resolver::new(ResolverConfig {
        insecure_registries: registries.iter().map(|r| (*r).to_owned()).collect(),
        max_concurrent_per_registry: NonZeroUsize::new(max_concurrent)
            .context("concurrency limit must be positive")?,
        ..ResolverConfig::default()
    }))
}

fn test_resolver() -> anyhow::Result<Resolver> {
    resolver_for(&[&registry_address()?], 4)
}

fn anonymous() -> PullSecrets {
    PullSecrets::default()
}

#[tokio::test]
async fn tag_resolves_to_the_pushed_digest() -> anyhow::Result<()> {
    let image = push_image(&unique_repository("api"), "v1.0.0", 1).await?;
    let resolver = test_resolver()?;

    let digest = resolver.resolve(&image.reference, None, &anonymous()).await?;

    assert_eq!(digest, image.digest);
    assert_eq!(resolver.registry_requests(), 1);
    Ok(())
}

#[tokio::test]
async fn components_of_one_application_resolve_to_their_own_digests() -> anyhow::Result<()> {
    let images = push_multi("shop", &[("backend", "1.4.0"), ("frontend", "1.4.0")]).await?;
    let resolver = test_resolver()?;

    for (component, image) in &images {
        let digest = resolver.resolve(&image.reference, None, &anonymous()).await?;
        assert_eq!(digest, image.digest, "{component}");
    }
    assert_ne!(images["backend"].digest, images["frontend"].digest);
    Ok(())
}

#[tokio::test]
async fn digest_pinned_reference_is_verified_in_the_registry() -> anyhow::Result<()> {
    let image = push_image(&unique_repository("api"), "v1", 2).await?;
    let resolver = test_resolver()?;
    let pinned = pinned_reference(&image.reference, &image.digest)?;
    assert_eq!(pinned, image.by_digest());

    let digest = resolver.resolve(&pinned, None, &anonymous()).await?;

    assert_eq!(digest, image.digest);
    Ok(())
}

#[tokio::test]
async fn digest_unknown_to_the_registry_is_not_found() -> anyhow::Result<()> {
    let image = push_image(&unique_repository("api"), "v1", 3).await?;
    let absent = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let pinned = pinned_reference(&image.reference, absent)?;

    let error = test_resolver()?
        .resolve(&pinned, None, &anonymous())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, RegistryError::NotFound { reference, .. } if *reference == pinned),
        "{error:?}"
    );
    assert!(!error.is_transient());
    Ok(())
}

#[tokio::test]
async fn expected_digest_that_differs_from_the_registry_is_a_mismatch() -> anyhow::Result<()> {
    let repository = unique_repository("api");
    let image = push_image(&repository, "v1", 4).await?;
    let other = push_image(&repository, "v2", 5).await?;

    let error = test_resolver()?
        .resolve(&image.reference, Some(&other.digest), &anonymous())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, RegistryError::DigestMismatch { reference, expected, actual }
            if *reference == image.reference && *expected == other.digest && *actual == image.digest),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(
        error.to_string(),
        format!(
            "image {} has digest {} in the registry, but {} was expected",
            image.reference, image.digest, other.digest
        )
    );
    Ok(())
}

#[tokio::test]
async fn expected_digest_that_matches_is_accepted() -> anyhow::Result<()> {
    let image = push_image(&unique_repository("api"), "v1", 6).await?;

    let digest = test_resolver()?
        .resolve(&image.reference, Some(&image.digest), &anonymous())
        .await?;

    assert_eq!(digest, image.digest);
    Ok(())
}

#[tokio::test]
async fn missing_tag_is_not_found_and_not_transient() -> anyhow::Result<()> {
    let repository = unique_repository("api");
    push_image(&repository, "v1", 7).await?;
    let missing = format!("{}/{repository}:v404", registry_address()?);

    let error = test_resolver()?
        .resolve(&missing, None, &anonymous())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, RegistryError::NotFound { reference, .. } if *reference == missing),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert!(error.to_string().contains(&missing), "{error}");
    Ok(())
}

#[tokio::test]
async fn missing_repository_is_not_found() -> anyhow::Result<()> {
    let missing = format!("{}/{}:v1", registry_address()?, unique_repository("never-pushed"));

    let error = test_resolver()?
        .resolve(&missing, None, &anonymous())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, RegistryError::NotFound { reference, .. } if *reference == missing),
        "{error:?}"
    );
    Ok(())
}

#[tokio::test]
async fn unreachable_registry_is_transient() -> anyhow::Result<()> {
    // A port that was free a moment ago: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    let registry = closed.to_string();
    let image = format!("{registry}/hoist-test/api:v1");

    let error = resolver_for(&[&registry], 4)?
        .resolve(&image, None, &anonymous())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, RegistryError::Unavailable { reference, .. } if *reference == image),
        "{error:?}"
    );
    assert!(error.is_transient());
    Ok(())
}

#[tokio::test]
async fn invalid_reference_is_refused_without_asking_the_registry() -> anyhow::Result<()> {
    let resolver = test_resolver()?;

    let error = resolver
        .resolve("Shop/API:v1", None, &anonymous())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, RegistryError::Reference(ReferenceError::InvalidReference { reference, .. }) if reference == "Shop/API:v1"),
        "{error:?}"
    );
    assert!(!error.is_transient());
    assert_eq!(resolver.registry_requests(), 0);
    Ok(())
}

#[tokio::test]
async fn second_resolution_is_served_from_the_cache() -> anyhow::Result<()> {
    let image = push_image(&unique_repository("api"), "v1", 8).await?;
    let resolver = test_resolver()?;
    let shared = resolver.clone();

    let first = resolver.resolve(&image.reference, None, &anonymous()).await?;
    let second = shared.resolve(&image.reference, None, &anonymous()).await?;
    let pinned = image.by_digest();
    resolver.resolve(&pinned, None, &anonymous()).await?;
    resolver.resolve(&pinned, None, &anonymous()).await?;

    assert_eq!((first, second), (image.digest.clone(), image.digest));
    // One lookup for the tag, one to verify the pinned digest.
    assert_eq!(resolver.registry_requests(), 2);
    Ok(())
}

#[tokio::test]
async fn concurrent_resolutions_of_one_reference_ask_the_registry_once() -> anyhow::Result<()> {
    let image = push_image(&unique_repository("api"), "v1", 9).await?;
    let resolver = test_resolver()?;
    let secrets = anonymous();

    let digests = join_all((0..8).map(|_| resolver.resolve(&image.reference, None, &secrets))).await;

    for digest in digests {
        assert_eq!(digest?, image.digest);
    }
    assert_eq!(resolver.registry_requests(), 1);
    Ok(())
}

#[tokio::test]
async fn moved_tag_keeps_its_first_digest_until_a_new_resolver() -> anyhow::Result<()> {
    let repository = unique_repository("api");
    let original = push_image(&repository, "stable", 10).await?;
    let resolver = test_resolver()?;
    resolver.resolve(&original.reference, None, &anonymous()).await?;

    let moved = move_tag(&repository, "stable", 11).await?;
    assert_eq!(moved.reference, original.reference);
    assert_ne!(moved.digest, original.digest);

    let same_resolver = resolver.resolve(&original.reference, None, &anonymous()).await?;
    let fresh_resolver = test_resolver()?
        .resolve(&original.reference, None, &anonymous())
        .await?;

    assert_eq!(same_resolver, original.digest);
    assert_eq!(fresh_resolver, moved.digest);
    assert_eq!(resolver.registry_requests(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_registry_concurrency_limit_is_honoured() -> anyhow::Result<()> {
    let repository = unique_repository("api");
    let tags: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
    for (seed, tag) in (100..).zip(&tags) {
        push_image(&repository, tag, seed).await?;
    }

    let limited = resolve_all_through_proxy(&repository, &tags, 2).await?;
    // Control: the proxy does see overlap when the limit allows it.
    let unlimited = resolve_all_through_proxy(&repository, &tags, 10).await?;

    assert_eq!(limited, 2);
    assert!(unlimited > 2, "at most {unlimited} in flight without a limit");
    Ok(())
}

/// Resolves every tag at once through a [`SlowProxy`] with the given limit and
/// returns the most requests the proxy saw in flight together.
async fn resolve_all_through_proxy(repository: &str, tags: &[String], limit: usize) -> anyhow::Result<usize> {
    let proxy = SlowProxy::start(registry_address()?, Duration::from_millis(250)).await?;
    let resolver = resolver_for(&[&proxy.address], limit)?;
    let secrets = anonymous();
    let images: Vec<String> = tags
        .iter()
        .map(|tag| format!("{}/{repository}:{tag}", proxy.address))
        .collect();

    let results = join_all(images.iter().map(|image| resolver.resolve(image, None, &secrets))).await;

    for result in results {
        result?;
    }
    assert_eq!(resolver.registry_requests(), 10);
    Ok(proxy.max_in_flight.load(Ordering::SeqCst))
}

/// A TCP proxy in front of the registry that holds every request back for a
/// while, so that concurrent lookups overlap, and records the most requests
/// that were waiting for a response at the same time.
struct SlowProxy {
    address: String,
    max_in_flight: Arc<AtomicUsize>,
}

impl SlowProxy {
    async fn start(upstream: String, delay: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let counters = (Arc::clone(&in_flight), Arc::clone(&max_in_flight));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let (in_flight, max_in_flight) = (Arc::clone(&counters.0), Arc::clone(&counters.1));
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(&upstream).await {
                        relay(client, server, delay, in_flight, max_in_flight).await;
                    }
                });
            }
        });
        Ok(Self {
            address,
            max_in_flight,
        })
    }
}

/// A connection counts as one request in flight from the first request bytes
/// it sends until the first response bytes come back.
async fn relay(
    client: TcpStream,
    server: TcpStream,
    delay: Duration,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let waiting = AtomicBool::new(false);
    let requests = async {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = client_read.read(&mut buffer).await {
            if !waiting.swap(true, Ordering::SeqCst) {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                max_in_flight.fetch_max(now, Ordering::SeqCst);
            }
            tokio::time::sleep(delay).await;
            if server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let responses = async {
        let mut buffer = vec![0; 16 * 1024];
        while let Ok(read @ 1..) = server_read.read(&mut buffer).await {
            if waiting.swap(false, Ordering::SeqCst) {
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(requests, responses);
    if waiting.load(Ordering::SeqCst) {
        in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn basic_auth_from_a_dockerconfigjson_pull_secret() -> anyhow::Result<()> {
    let registry = AuthRegistry::start()?;
    let image = registry
        .push_image(&unique_repository("private"), "v1", 12)
        .await?;
    let resolver = resolver_for(&[registry.address()], 4)?;
    let pull_secret = |password: &str| {
        let auth = BASE64.encode(format!("{}:{password}", AuthRegistry::USERNAME));
        PullSecrets::from_dockerconfigjson(
            format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.address()).as_bytes(),
        )
    };

    let without_secret = resolver
        .resolve(&image.reference, None, &anonymous())
        .await
        .unwrap_err();
    let wrong_password = resolver
        .resolve(&image.reference, None, &pull_secret("wrong")?)
        .await
        .unwrap_err();
    let digest = resolver
        .resolve(&image.reference, None, &pull_secret(AuthRegistry::PASSWORD)?)
        .await?;

    for error in [&without_secret, &wrong_password] {
        assert!(
            matches!(error, RegistryError::Unauthorized { reference, registry: host, .. }
                if *reference == image.reference && host == registry.address()),
            "{error:?}"
        );
        assert!(!error.is_transient());
    }
    assert_eq!(digest, image.digest);
    Ok(())
}

/// Cosign's artifact type for a signature pushed as an OCI 1.1 referrer.
const COSIGN_SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

/// An image in the test registry, signed the OCI 1.1 way through a registry
/// with the referrers API in front of it (no `sha256-<hex>` index written).
async fn signed_through_referrers_api(
    registry: &ReferrersRegistry,
) -> anyhow::Result<(PushedImage, SupplyChainLayer, OciDescriptor)> {
    let upstream_image = push_image(&unique_repository("native-referrers"), "v1", 40).await?;
    let signature = signing::signature(&SigningKey::generate(), &upstream_image, &upstream_image.digest);
    let referrer = signing::push_referrer_native(
        &registry.image(&upstream_image),
        COSIGN_SIGNATURE_ARTIFACT,
        std::slice::from_ref(&signature),
    )
    .await?;
    let layer = SupplyChainLayer {
        media_type: signature.media_type.to_owned(),
        annotations: signature.annotations,
        content: signature.content,
    };
    Ok((upstream_image, layer, referrer))
}

#[tokio::test]
async fn signature_listed_by_the_referrers_api_is_found_through_it() -> anyhow::Result<()> {
    let upstream = registry_address()?;
    let registry = ReferrersRegistry::start(&upstream).await?;
    let (upstream_image, signature, _) = signed_through_referrers_api(&registry).await?;
    let image = registry.image(&upstream_image);
    let resolver = resolver_for(&[registry.address(), &upstream], 4)?;

    let attachments = resolver
        .attachments(&image.reference, &image.digest, &anonymous())
        .await?;

    assert_eq!(attachments.signatures, [signature]);
    assert!(attachments.attestations.is_empty());
    assert_eq!(registry.subjects_recorded(), 1);
    assert!(registry.referrers_requests() >= 1);
    // Nor could it have come from the fallback index: there is none.
    let (host, repository) = registry_and_repository(&upstream_image)?;
    let fallback_tag = format!("{host}/{repository}:{}", upstream_image.digest.replace(':', "-"));
    let fallback = resolver.resolve(&fallback_tag, None, &anonymous()).await;
    assert!(
        matches!(fallback, Err(RegistryError::NotFound { .. })),
        "{fallback:?}"
    );
    Ok(())
}

/// A bundle as the resolver hands it to the checks.
fn bundle_layer(bundle: &signing::Bundle) -> SupplyChainLayer {
    let layer = bundle.layer();
    SupplyChainLayer {
        media_type: layer.media_type.to_owned(),
        annotations: layer.annotations,
        content: layer.content,
    }
}

#[tokio::test]
async fn bundles_listed_in_the_referrers_tag_schema_index_are_found_beside_legacy_signatures()
-> anyhow::Result<()> {
    let image = push_image(&unique_repository("bundles"), "v1", 42).await?;
    let key = SigningKey::generate();
    let signature = signing::signature_bundle(&key, &image.digest);
    let provenance = signing::attestation_bundle(
        &key,
        &image.digest,
        signing::SLSA_V1,
        signing::slsa_v1(
            "https://github.com/acme/shop",
            "3f2c9a1b",
            "https://ci.example.com",
        ),
    );
    let legacy = signing::signature(&key, &image, &image.digest);
    signing::push_signatures(&image, std::slice::from_ref(&legacy)).await?;
    signing::push_bundles(&image, std::slice::from_ref(&signature)).await?;
    // A second push adds to the index, as cosign attest after cosign sign does.
    signing::push_bundles(&image, std::slice::from_ref(&provenance)).await?;

    let attachments = test_resolver()?
        .attachments(&image.reference, &image.digest, &anonymous())
        .await?;

    assert_eq!(
        attachments.bundles,
        [bundle_layer(&signature), bundle_layer(&provenance)]
    );
    assert_eq!(attachments.signatures.len(), 1);
    assert!(attachments.attestations.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_bundle_listed_by_the_referrers_api_is_found_through_it() -> anyhow::Result<()> {
    let upstream = registry_address()?;
    let registry = ReferrersRegistry::start(&upstream).await?;
    let upstream_image = push_image(&unique_repository("native-bundles"), "v1", 43).await?;
    let image = registry.image(&upstream_image);
    let bundle = signing::signature_bundle(&SigningKey::generate(), &image.digest);
    let referrer = signing::push_bundle_native(&image, &bundle).await?;
    let resolver = resolver_for(&[registry.address(), &upstream], 4)?;

    let listed: serde_json::Value = reqwest::get(referrers_url(&image, signing::BUNDLE_V0_3)?)
        .await?
        .json()
        .await?;
    let attachments = resolver
        .attachments(&image.reference, &image.digest, &anonymous())
        .await?;

    assert_eq!(listed["manifests"][0]["digest"], referrer.digest.as_str());
    assert_eq!(listed["manifests"][0]["artifactType"], signing::BUNDLE_V0_3);
    assert_eq!(
        listed["manifests"][0]["annotations"]["dev.sigstore.bundle.predicateType"],
        signing::COSIGN_SIGN_V1
    );
    assert_eq!(attachments.bundles, [bundle_layer(&bundle)]);
    Ok(())
}

#[tokio::test]
async fn signature_listed_only_by_the_referrers_api_is_not_found_without_it() -> anyhow::Result<()> {
    let upstream = registry_address()?;
    let registry = ReferrersRegistry::start(&upstream).await?;
    let (upstream_image, _, _) = signed_through_referrers_api(&registry).await?;

    let attachments = test_resolver()?
        .attachments(&upstream_image.reference, &upstream_image.digest, &anonymous())
        .await?;

    assert_eq!(attachments, Attachments::default());
    Ok(())
}

#[tokio::test]
async fn referrers_api_answers_an_empty_index_for_a_digest_without_referrers() -> anyhow::Result<()> {
    let upstream = registry_address()?;
    let registry = ReferrersRegistry::start(&upstream).await?;
    let image = registry.image(&push_image(&unique_repository("no-referrers"), "v1", 41).await?);
    let resolver = resolver_for(&[registry.address()], 4)?;

    let response = reqwest::get(referrers_url(&image, "")?).await?;
    let status = response.status();
    let content_type = response.headers().get("content-type").cloned();
    let index: serde_json::Value = response.json().await?;
    let attachments = resolver
        .attachments(&image.reference, &image.digest, &anonymous())
        .await?;

    assert_eq!(status, reqwest::StatusCode::OK);
    assert_eq!(
        content_type.as_ref().map(|v| v.to_str()).transpose()?,
        Some("application/vnd.oci.image.index.v1+json")
    );
    assert_eq!(
        index,
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": []
        })
    );
    assert_eq!(attachments, Attachments::default());
    assert_eq!(registry.referrers_requests(), 2);
    Ok(())
}

#[tokio::test]
async fn referrers_api_acknowledges_the_subject_and_filters_by_artifact_type() -> anyhow::Result<()> {
    let upstream = registry_address()?;
    let registry = ReferrersRegistry::start(&upstream).await?;
    let (upstream_image, _, referrer) = signed_through_referrers_api(&registry).await?;
    let image = registry.image(&upstream_image);
    let http = reqwest::Client::new();

    // The same manifest pushed again, to see the response headers.
    let manifest_url = v2_url(&image, &format!("manifests/{}", referrer.digest))?;
    let manifest = http
        .get(manifest_url.clone())
        .header("accept", &referrer.media_type)
        .send()
        .await?
        .bytes()
        .await?;
    let repushed = http
        .put(manifest_url)
        .header("content-type", &referrer.media_type)
        .body(manifest)
        .send()
        .await?;
    let matching = http
        .get(referrers_url(&image, COSIGN_SIGNATURE_ARTIFACT)?)
        .send()
        .await?;
    let matching_filter = matching.headers().get("oci-filters-applied").cloned();
    let matching: serde_json::Value = matching.json().await?;
    let other = http
        .get(referrers_url(&image, "application/spdx+json")?)
        .send()
        .await?;
    let other_filter = other.headers().get("oci-filters-applied").cloned();
    let other: serde_json::Value = other.json().await?;
    let unfiltered = http.get(referrers_url(&image, "")?).send().await?;
    let unfiltered_filter = unfiltered.headers().get("oci-filters-applied").cloned();
    let unfiltered: serde_json::Value = unfiltered.json().await?;

    assert_eq!(repushed.status(), reqwest::StatusCode::CREATED);
    assert_eq!(
        repushed
            .headers()
            .get("oci-subject")
            .map(|v| v.to_str())
            .transpose()?,
        Some(image.digest.as_str())
    );
    let listed = serde_json::json!([{
        "mediaType": referrer.media_type,
        "digest": referrer.digest,
        "size": referrer.size,
        "artifactType": COSIGN_SIGNATURE_ARTIFACT,
    }]);
    assert_eq!(matching["manifests"], listed);
    assert_eq!(other["manifests"], serde_json::json!([]));
    // Pushed twice, listed once.
    assert_eq!(unfiltered["manifests"], listed);
    for filter in [&matching_filter, &other_filter] {
        assert_eq!(
            filter.as_ref().map(|v| v.to_str()).transpose()?,
            Some("artifactType")
        );
    }
    assert_eq!(unfiltered_filter, None);
    Ok(())
}

/// `http://<registry>/v2/<repository>/referrers/<digest>`, filtered by
/// `artifact_type` unless empty.
fn referrers_url(image: &PushedImage, artifact_type: &str) -> anyhow::Result<reqwest::Url> {
    let mut url = v2_url(image, &format!("referrers/{}", image.digest))?;
    if !artifact_type.is_empty() {
        url.query_pairs_mut().append_pair("artifactType", artifact_type);
    }
    Ok(url)
}

/// `http://<registry>/v2/<repository>/<path>`.
fn v2_url(image: &PushedImage, path: &str) -> anyhow::Result<reqwest::Url> {
    let (host, repository) = registry_and_repository(image)?;
    Ok(reqwest::Url::parse(&format!(
        "http://{host}/v2/{repository}/{path}"
    ))?)
}

/// `(host:port, repository)` of an image.
fn registry_and_repository(image: &PushedImage) -> anyhow::Result<(String, String)> {
    let by_digest = image.by_digest();
    let (repository_reference, _digest) = by_digest.rsplit_once('@').context("digest reference")?;
    let (host, repository) = repository_reference
        .split_once('/')
        .context("a registry and a repository")?;
    Ok((host.to_owned(), repository.to_owned()))
}
