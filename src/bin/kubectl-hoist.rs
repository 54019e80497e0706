//! `kubectl hoist`: a kubectl plugin (any `kubectl-<name>` on PATH is one)
//! to see and steer Hoist promotions. Argument parsing and printing only;
//! what the commands do lives in `hoist::plugin`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hoist::plugin::{self, PluginError};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

#[derive(Parser)]
#[command(
    name = "kubectl-hoist",
    bin_name = "kubectl hoist",
    version,
    about = "See what runs where and why; promote, approve, reject and roll back Hoist releases; hold auto-promotion"
)]
struct Cli {
    /// Namespace (tenant) to work in; defaults to the kubeconfig context's.
    #[arg(short, long, global = true)]
    namespace: Option<String>,
    /// The kubeconfig file to use (as kubectl's --kubeconfig); defaults to
    /// KUBECONFIG or ~/.kube/config.
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; defaults to the current one.
    #[arg(long, global = true)]
    context: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// What runs in each Environment, and the Promotions on their way.
    Status {
        /// Only this Environment.
        environment: Option<String>,
        /// table (default), wide (full digests and commits, repositories),
        /// json or yaml (a stable document for scripts).
        #[arg(short, long, default_value = "table", value_parser = output)]
        output: plugin::Output,
    },
    /// Past releases of an Environment, newest first.
    History {
        /// The Environment.
        environment: String,
        /// Only this application.
        #[arg(long)]
        application: Option<String>,
    },
    /// What changed between two releases of an application: version step,
    /// commit range, each component's digest, configuration keys. Default:
    /// the last two releases of each application in status.history.
    Changes {
        /// The Environment.
        environment: String,
        /// Only this application.
        #[arg(long)]
        application: Option<String>,
        /// The older release, by Artifact name or version (default: the
        /// one before TO).
        from: Option<String>,
        /// The newer release, by Artifact name or version (default: the newest).
        to: Option<String>,
    },
    /// The supported version matrix: per application what runs, the
    /// ranges it declares for others, and whether each holds.
    Compat {
        /// Only this Environment.
        environment: Option<String>,
    },
    /// Workload clusters on this hub: each agent's state, version, replica
    /// and last heartbeat, and the Environments of the cluster.
    Clusters {
        /// Where the agents' Leases are: the hub operator's namespace.
        #[arg(long, default_value = "hoist-system")]
        agent_namespace: String,
        /// Environments of every namespace, not only --namespace's.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
    },
    /// What retention would delete now, and why each survivor stays
    /// (the operator does the deleting).
    Gc {
        /// The Environment: its finished Promotions and the Artifacts of
        /// the applications it targets.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        environment: Option<String>,
        /// Every Artifact and Promotion of the namespace.
        #[arg(long)]
        all: bool,
        /// Only show what would go (required: gc never deletes).
        #[arg(long, required = true)]
        dry_run: bool,
        /// The operator's configuration file (`hoist controller --config`),
        /// for its retention defaults; without it, the built-in ones.
        #[arg(long)]
        config: Option<std::path::PathBuf>,
    },
    /// Why a Promotion is where it is: phase, gates, approvals, changes.
    Why {
        /// The Promotion.
        promotion: String,
    },
    /// What promoting an Artifact into an Environment would change.
    Diff {
        /// The Artifact that would be promoted.
        artifact: String,
        /// The Environment it would be promoted into.
        environment: String,
    },
    /// Ask for an Artifact to run in an Environment; prints the Promotion's name.
    Promote {
        /// The Artifact to run.
        artifact: String,
        /// The Environment to run it in.
        environment: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        /// Name of the Promotion (default: <artifact>-<environment>-<random>).
        #[arg(long)]
        name: Option<String>,
    },
    /// Ship a hotfix: a break-glass Promotion that waives gates (never
    /// Approval), and what still has to happen before it runs.
    Hotfix {
        /// The Artifact to run.
        artifact: String,
        /// The Environment to run it in.
        environment: String,
        /// Gates to waive, comma-separated, e.g. Upstream,Soak.
        #[arg(long, value_parser = plugin::waive_arg)]
        waive: plugin::Waive,
        /// Why the gates are waived (at least 10 characters), for the audit trail.
        #[arg(long)]
        justification: String,
        /// Name of the Promotion (default: <artifact>-<environment>-<random>).
        #[arg(long)]
        name: Option<String>,
    },
    /// Create the Artifact of a release from CI: each image pinned to the
    /// digest its registry has now (or the one the reference gives), the
    /// source from the flags or the CI system's variables (GitHub Actions,
    /// GitLab CI); with --promote, its first Promotion too.
    Publish {
        /// The application (a DNS label).
        application: String,
        /// The release version.
        version: String,
        /// COMPONENT=IMAGE, once per component, e.g.
        /// backend=registry.example.com/shop/backend:1.4.2.
        #[arg(long = "image", required = true)]
        images: Vec<String>,
        /// SemVer (default), CalVer or Opaque.
        #[arg(long, default_value = "SemVer", value_parser = version_scheme)]
        version_scheme: hoist::api::VersionScheme,
        /// The Artifact's name (default: <application>-<version>).
        #[arg(long)]
        name: Option<String>,
        /// Source repository URL (default: GITHUB_SERVER_URL/GITHUB_REPOSITORY, CI_PROJECT_URL).
        #[arg(long)]
        source_repository: Option<String>,
        /// Full commit id (default: GITHUB_SHA, CI_COMMIT_SHA).
        #[arg(long)]
        revision: Option<String>,
        /// Build id (default: GITHUB_RUN_ID, CI_PIPELINE_ID).
        #[arg(long)]
        build_id: Option<String>,
        /// Link to the build (default: the GitHub Actions run, CI_PIPELINE_URL).
        #[arg(long)]
        build_url: Option<String>,
        /// When the revision was committed, RFC 3339 (default: CI_COMMIT_TIMESTAMP;
        /// GitHub Actions sets none: pass `git show -s --format=%cI`).
        #[arg(long)]
        committed_at: Option<String>,
        /// Also create a Promotion of the Artifact into this Environment.
        #[arg(long)]
        promote: Option<String>,
        /// A registry spoken to over plain HTTP (host:port), repeated.
        #[arg(long = "insecure-registry")]
        insecure_registries: Vec<String>,
    },
    /// The DORA figures per Environment and application from the
    /// Environments' history: deployments (per day, by outcome), change
    /// failure rate, median lead time and time to restore.
    Dora {
        /// One Environment (default: every one of the namespace).
        environment: Option<String>,
        /// How far back, e.g. 30d, 2w or 72h.
        #[arg(long, default_value = "30d", value_parser = since)]
        since: SignedDuration,
        /// table or json.
        #[arg(short, long, default_value = "table", value_parser = dora_output)]
        output: plugin::DoraOutput,
    },
    /// Approve a Promotion as the user the API server knows you as.
    Approve {
        /// The Promotion.
        promotion: String,
        /// A remark kept with the approval.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject a Promotion as the user the API server knows you as: from an
    /// allowed approver it ends as Rejected.
    Reject {
        /// The Promotion.
        promotion: String,
        /// Why, recorded with the rejection.
        #[arg(long)]
        reason: String,
    },
    /// Pause an Environment's auto-promotion (manual Promotions still run),
    /// recording who held it, when and why.
    Hold {
        /// The Environment.
        environment: String,
        /// Why, shown in the Environment's status.
        #[arg(long)]
        reason: String,
    },
    /// Resume an Environment's auto-promotion.
    Unhold {
        /// The Environment.
        environment: String,
    },
    /// Promote the previous successful release of an application again.
    Rollback {
        /// The Environment.
        environment: String,
        /// The application to roll back.
        #[arg(long)]
        application: String,
        /// Roll back to this Artifact instead of the previous release.
        #[arg(long)]
        to: Option<String>,
        /// Why, for the audit trail (default: what is rolled back to what).
        #[arg(long)]
        reason: Option<String>,
    },
}

fn version_scheme(text: &str) -> Result<hoist::api::VersionScheme, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .map_err(|_| format!("{text:?} is not a version scheme: SemVer, CalVer or Opaque"))
}

fn output(text: &str) -> Result<plugin::Output, String> {
    match text {
        "table" => Ok(plugin::Output::Table),
        "wide" => Ok(plugin::Output::Wide),
        "json" => Ok(plugin::Output::Json),
        "yaml" => Ok(plugin::Output::Yaml),
        other => Err(format!(
            "{other:?} is not an output format: table, wide, json or yaml"
        )),
    }
}

fn since(text: &str) -> Result<SignedDuration, String> {
    plugin::parse_since(text).map_err(|error| error.to_string())
}

fn dora_output(text: &str) -> Result<plugin::DoraOutput, String> {
    match text {
        "table" => Ok(plugin::DoraOutput::Table),
        "json" => Ok(plugin::DoraOutput::Json),
        other => Err(format!(
            "{other:?} is not an output format of dora: table or json"
        )),
    }
}

async fn run(cli: Cli) -> Result<String, PluginError> {
    let (client, ns) = plugin::connect(
        cli.kubeconfig.as_deref(),
        cli.context.as_deref(),
        cli.namespace.as_deref(),
    )
    .await?;
    let now = Time(Timestamp::now());
    match cli.command {
        Command::Status { environment, output } => {
            plugin::status(&client, &ns, environment.as_deref(), &now, output).await
        }
        Command::History {
            environment,
            application,
        } => plugin::history(&client, &ns, &environment, application.as_deref(), &now).await,
        Command::Changes {
            environment,
            application,
            from,
            to,
        } => {
            let selection = plugin::Selection {
                application,
                from,
                to,
            };
            plugin::changes(&client, &ns, &environment, &selection).await
        }
        Command::Compat { environment } => plugin::compat(&client, &ns, environment.as_deref()).await,
        Command::Clusters {
            agent_namespace,
            all_namespaces,
        } => {
            let namespace = (!all_namespaces).then_some(ns.as_str());
            plugin::clusters(&client, &agent_namespace, namespace, &now).await
        }
        Command::Gc {
            environment,
            all: _,
            dry_run: _,
            config,
        } => {
            let defaults = plugin::retention_defaults(config.as_deref())?;
            plugin::gc(&client, &ns, environment.as_deref(), &defaults, &now).await
        }
        Command::Dora {
            environment,
            since,
            output,
        } => plugin::dora(&client, &ns, environment.as_deref(), since, &now, output).await,
        Command::Why { promotion } => plugin::why(&client, &ns, &promotion, &now).await,
        Command::Diff {
            artifact,
            environment,
        } => plugin::diff(&client, &ns, &artifact, &environment)
            .await
            .map(|diff| diff.to_string()),
        Command::Promote {
            artifact,
            environment,
            reason,
            name,
        } => plugin::promote(&client, &ns, &artifact, &environment, reason, name)
            .await
            .map(|promotion| format!("{}\n", promotion.name_any())),
        Command::Hotfix {
            artifact,
            environment,
            waive,
            justification,
            name,
        } => plugin::hotfix(
            &client,
            &ns,
            &artifact,
            &environment,
            waive.0,
            justification,
            name,
        )
        .await
        .map(|hotfix| hotfix.to_string()),
        Command::Publish {
            application,
            version,
            images,
            version_scheme,
            name,
            source_repository,
            revision,
            build_id,
            build_url,
            committed_at,
            promote,
            insecure_registries,
        } => {
            let request = plugin::PublishRequest {
                application,
                version,
                version_scheme,
                images,
                name,
                source_repository,
                revision,
                build_id,
                build_url,
                committed_at,
                promote,
            };
            let resolver = hoist::registry::Resolver::new(hoist::registry::ResolverConfig {
                insecure_registries,
                ..Default::default()
            });
            let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
            plugin::publish(&client, &ns, request, &resolver, &variable, &now)
                .await
                .map(|published| published.to_string())
        }
        Command::Approve { promotion, comment } => {
            plugin::approve(&client, &ns, &promotion, comment.as_deref())
                .await
                .map(|outcome| outcome.to_string())
        }
        Command::Reject { promotion, reason } => plugin::reject(&client, &ns, &promotion, &reason)
            .await
            .map(|outcome| outcome.to_string()),
        Command::Hold { environment, reason } => plugin::hold(&client, &ns, &environment, &reason, &now)
            .await
            .map(|held| held.to_string()),
        Command::Unhold { environment } => plugin::unhold(&client, &ns, &environment)
            .await
            .map(|unheld| unheld.to_string()),
        Command::Rollback {
            environment,
            application,
            to,
            reason,
        } => plugin::rollback(&client, &ns, &environment, &application, to.as_deref(), reason)
            .await
            .map(|rollback| rollback.to_string()),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kubectl hoist: {}", error.report());
            ExitCode::FAILURE
        }
    }
}
