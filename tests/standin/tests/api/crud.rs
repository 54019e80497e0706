//! Create, get, update and delete, with the real server's errors.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, PostParams};
use kube_standin::{StandIn, Verb};

use crate::common::{Widget, config_map, deployment, resource_version, status_of, widget};

#[tokio::test]
async fn create_fills_server_metadata_and_get_returns_it() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = config_maps
        .create(&PostParams::default(), &config_map("settings", &[("a", "1")]))
        .await?;

    let metadata = &created.metadata;
    assert_eq!(metadata.namespace.as_deref(), Some("default"));
    assert_eq!(metadata.uid.as_ref().map(String::len), Some(36));
    assert_eq!(metadata.generation, None, "ConfigMaps carry no generation");
    assert_eq!(resource_version(&created), server.resource_version());
    let timestamp = serde_json::to_value(&metadata.creation_timestamp)?;
    let timestamp = timestamp.as_str().unwrap_or_default();
    assert_eq!(timestamp.len(), "2025-01-01T00:00:00Z".len());
    assert!(timestamp.ends_with('Z'));

    let fetched = config_maps.get("settings").await?;
    assert_eq!(fetched, created);
    assert_eq!(fetched.data, config_map("settings", &[("a", "1")]).data);
    Ok(())
}

#[tokio::test]
async fn create_twice_is_already_exists() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("twice", &[]))
        .await?;
    let status = status_of(
        config_maps
            .create(&PostParams::default(), &config_map("twice", &[]))
            .await,
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "AlreadyExists");
    assert_eq!(status.message, "configmaps \"twice\" already exists");
    let details = status.details.expect("AlreadyExists carries details");
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("twice", "configmaps")
    );
    Ok(())
}

#[tokio::test]
async fn generate_name_appends_five_random_characters() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let template = ConfigMap {
        metadata: ObjectMeta {
            generate_name: Some("gen-".to_owned()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    let first = config_maps.create(&PostParams::default(), &template).await?;
    let second = config_maps.create(&PostParams::default(), &template).await?;
    for created in [&first, &second] {
        let name = created.metadata.name.clone().unwrap_or_default();
        assert_eq!(name.len(), "gen-".len() + 5, "{name}");
        assert!(name.starts_with("gen-"));
        assert_eq!(created.metadata.generate_name.as_deref(), Some("gen-"));
    }
    assert_ne!(first.metadata.name, second.metadata.name);
    Ok(())
}

#[tokio::test]
async fn create_in_a_missing_namespace_is_not_found() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "nowhere");
    let status = status_of(
        config_maps
            .create(&PostParams::default(), &config_map("a", &[]))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "namespaces \"nowhere\" not found");
    Ok(())
}

#[tokio::test]
async fn body_namespace_must_match_the_path() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let mut object = config_map("a", &[]);
    object.metadata.namespace = Some("kube-system".to_owned());
    let status = status_of(config_maps.create(&PostParams::default(), &object).await);
    assert_eq!((status.code, status.reason.as_str()), (400, "BadRequest"));
    assert_eq!(
        status.message,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_names_are_refused_with_field_errors() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let status = status_of(
        config_maps
            .create(&PostParams::default(), &config_map("Not_Valid", &[]))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert!(
        status.message.starts_with(
            "ConfigMap \"Not_Valid\" is invalid: metadata.name: Invalid value: \"Not_Valid\": a lowercase RFC 1123 subdomain"
        ),
        "{}",
        status.message
    );
    let details = status.details.expect("Invalid carries details");
    assert_eq!(details.kind, "ConfigMap");
    assert_eq!(details.causes.len(), 1);
    assert_eq!(details.causes[0].reason, "FieldValueInvalid");
    assert_eq!(details.causes[0].field, "metadata.name");
    Ok(())
}

#[tokio::test]
async fn update_with_a_stale_resource_version_conflicts() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = config_maps
        .create(&PostParams::default(), &config_map("cm", &[("a", "1")]))
        .await?;
    let mut first = created.clone();
    first.data = Some(crate::common::labels(&[("a", "2")]));
    let updated = config_maps.replace("cm", &PostParams::default(), &first).await?;
    assert!(resource_version(&updated) > resource_version(&created));

    let mut stale = created;
    stale.data = Some(crate::common::labels(&[("a", "3")]));
    let status = status_of(config_maps.replace("cm", &PostParams::default(), &stale).await);
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on configmaps \"cm\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(
        config_maps.get("cm").await?.data,
        Some(crate::common::labels(&[("a", "2")]))
    );
    Ok(())
}

#[tokio::test]
async fn of_two_replicas_claiming_one_lease_at_the_same_version_one_conflicts() -> anyhow::Result<()> {
    // Leader election's claim: read the Lease, write it back as yours at the
    // version read. Two replicas that read the same version cannot both win.
    let server = StandIn::start().await?;
    let leases: Api<Lease> = Api::namespaced(server.client(), "default");
    let claim = |lease: &Lease, holder: &str| {
        let mut lease = lease.clone();
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(holder.to_owned()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        });
        lease
    };
    let read = leases
        .create(
            &PostParams::default(),
            &Lease {
                metadata: ObjectMeta {
                    name: Some("hoist".to_owned()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec::default()),
            },
        )
        .await?;
    let won = leases
        .replace("hoist", &PostParams::default(), &claim(&read, "a"))
        .await?;
    assert!(resource_version(&won) > resource_version(&read));
    let status = status_of(
        leases
            .replace("hoist", &PostParams::default(), &claim(&read, "b"))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        status.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"hoist\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let holder = leases.get("hoist").await?.spec.and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("a"));
    Ok(())
}

#[tokio::test]
async fn built_ins_allow_unconditional_updates_custom_resources_do_not() -> anyhow::Result<()> {
    let server = StandIn::start_with_crds(vec![<Widget as kube::CustomResourceExt>::crd()]).await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("cm", &[("a", "1")]))
        .await?;
    let replaced = config_maps
        .replace("cm", &PostParams::default(), &config_map("cm", &[("a", "2")]))
        .await?;
    assert_eq!(replaced.data, Some(crate::common::labels(&[("a", "2")])));

    let widgets: Api<Widget> = Api::namespaced(server.client(), "default");
    widgets
        .create(&PostParams::default(), &widget("w", "red", 1))
        .await?;
    let status = status_of(
        widgets
            .replace("w", &PostParams::default(), &widget("w", "blue", 1))
            .await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "Widget.test.hoist.dev \"w\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
    );
    Ok(())
}

#[tokio::test]
async fn put_on_a_missing_object_is_not_found_except_where_kubernetes_creates() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let status = status_of(
        config_maps
            .replace("absent", &PostParams::default(), &config_map("absent", &[]))
            .await,
    );
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "configmaps \"absent\" not found")
    );

    let leases: Api<Lease> = Api::namespaced(server.client(), "default");
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some("leader".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("me".to_owned()),
            ..LeaseSpec::default()
        }),
    };
    let created = leases.replace("leader", &PostParams::default(), &lease).await?;
    assert_eq!(
        created.spec.and_then(|spec| spec.holder_identity).as_deref(),
        Some("me")
    );
    let record = server
        .requests()
        .records()
        .last()
        .cloned()
        .expect("request recorded");
    assert_eq!((record.code, record.changed), (201, true));
    Ok(())
}

#[tokio::test]
async fn deployments_start_at_generation_one_with_empty_status() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let deployments: Api<Deployment> = Api::namespaced(server.client(), "default");
    let mut desired = deployment("web", "nginx:1");
    desired.status = Some(k8s_openapi::api::apps::v1::DeploymentStatus {
        replicas: Some(3),
        ..Default::default()
    });
    let created = deployments.create(&PostParams::default(), &desired).await?;
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        created.status,
        Some(Default::default()),
        "status is reset on create"
    );
    Ok(())
}

#[tokio::test]
async fn delete_returns_the_object_and_it_is_gone() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    config_maps
        .create(&PostParams::default(), &config_map("gone", &[]))
        .await?;
    let deleted = config_maps.delete("gone", &DeleteParams::default()).await?;
    let object = deleted.left().expect("delete answers the object");
    assert_eq!(object.metadata.name.as_deref(), Some("gone"));
    assert_eq!(resource_version(&object), server.resource_version());
    let status = status_of(config_maps.get("gone").await);
    assert_eq!(
        (status.code, status.message.as_str()),
        (404, "configmaps \"gone\" not found")
    );
    assert_eq!(config_maps.get_opt("gone").await?, None);
    Ok(())
}

#[tokio::test]
async fn identical_writes_change_nothing() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(server.client(), "default");
    let created = config_maps
        .create(&PostParams::default(), &config_map("same", &[("a", "1")]))
        .await?;
    let version = server.resource_version();
    let replaced = config_maps
        .replace("same", &PostParams::default(), &created)
        .await?;
    assert_eq!(replaced, created);
    assert_eq!(server.resource_version(), version);
    let record = server
        .requests()
        .records()
        .last()
        .cloned()
        .expect("request recorded");
    assert_eq!((record.code, record.changed), (200, false));
    Ok(())
}

#[tokio::test]
async fn metadata_fields_of_the_wrong_shape_are_invalid() -> anyhow::Result<()> {
    let server = StandIn::start().await?;
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "labels": "app=web"},
    });
    let path = "/api/v1/namespaces/default/configmaps";
    let status = status_of(
        crate::common::raw::<ConfigMap>(&server.client(), "POST", path, "application/json", &body).await,
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        "ConfigMap \"cm\" is invalid: metadata.labels: Invalid value: \"app=web\": has the wrong type"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_from_the_kubeconfig_is_logged_as_its_token_user() -> anyhow::Result<()> {
    let server = StandIn::builder()
        .user("operator", &[kube_standin::MASTERS])
        .start()
        .await?;
    let kubeconfig: kube::config::Kubeconfig = serde_yaml::from_str(&server.kubeconfig_yaml("operator")?)?;
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?;
    let operator = kube::Client::try_from(config)?;
    Api::<ConfigMap>::namespaced(operator, "default")
        .create(&PostParams::default(), &config_map("mine", &[]))
        .await?;
    Api::<ConfigMap>::namespaced(server.client(), "default")
        .get("mine")
        .await?;
    let users: Vec<(Option<Verb>, Option<String>)> = server
        .requests()
        .records()
        .iter()
        .map(|record| (record.verb, record.user.clone()))
        .collect();
    assert_eq!(
        users,
        vec![
            (Some(Verb::Create), Some("operator".to_owned())),
            (Some(Verb::Get), Some(kube_standin::ADMIN.to_owned()))
        ]
    );
    Ok(())
}
