//! The built-in `github` connector against the GitHub stand-in: conformance across a change,
//! syncs into the record store (first read equals the stand-in, a second sees exactly the
//! change, an unchanged organization costs nothing), both auth modes (a personal token and a
//! GitHub App whose key the test generates), the check's scopes, actions, webhook rules, and
//! GitHub's rate limits.

mod actions;
mod auth;
mod conformance;
mod limits;
mod syncs;
mod webhooks;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchyard_connectors::conformance::{ActionSample, Conformance, Records, WebhookSample};
use switchyard_connectors::credentials::HeldCredential;
use switchyard_connectors::sync::SyncCounts;
use switchyard_connectors::unified::CompiledMapping;
use switchyard_connectors::{
    CallContext, ConnectionContext, Connector, ManifestConnector, WebhookEvent,
};
use switchyard_core::TenantId;
use switchyard_http::{CredentialSource, InMemoryBackend, ProviderClient};
use switchyard_test_support::providers::github::{
    AppKey, Event, GitHub, GitHubApp, GitHubOptions, Protection, Seed, Visibility,
};
use switchyard_test_support::standin::{BearerToken, RateLimit, provider_client};

use crate::support::{Store, builtin_connector, conformance, local_broker};

const TOKEN: &str = "ghp_EngineTestToken0000000000000000000000";
const ORG: &str = "acme";
const APP_ID: u64 = 123_456;
const INSTALLATION: u64 = 42;

const STREAMS: [&str; 8] = [
    "members",
    "members_2fa_disabled",
    "outside_collaborators",
    "teams",
    "team_members",
    "repositories",
    "repository_settings",
    "branch_protection",
];

fn connector() -> ManifestConnector {
    builtin_connector("github")
}

async fn stand_in(options: GitHubOptions) -> GitHub {
    let github = GitHub::start(GitHubOptions {
        organization: ORG.into(),
        ..options
    })
    .await
    .unwrap();
    github.seed(Seed::default());
    github
}

fn token_options() -> GitHubOptions {
    GitHubOptions {
        token: Some(TOKEN.into()),
        rate_limit: None,
        ..Default::default()
    }
}

fn org_config() -> Value {
    json!({"organization": ORG, "installation_id": INSTALLATION.to_string()})
}

/// Keyed by each stream's primary key: what a complete read of every stream must hold.
fn expected(github: &GitHub) -> BTreeMap<String, Records> {
    let by_id = |items: Vec<Value>| -> Records {
        items
            .into_iter()
            .map(|item| (item["id"].to_string(), item))
            .collect()
    };
    let mut all = BTreeMap::new();
    for stream in [
        "members",
        "members_2fa_disabled",
        "outside_collaborators",
        "teams",
        "repositories",
    ] {
        all.insert(stream.to_owned(), by_id(github.list(stream)));
    }
    let mut team_members = Records::new();
    let mut settings = Records::new();
    let mut protection = Records::new();
    for team in github.list("teams") {
        let slug = team["slug"].as_str().unwrap();
        for mut member in github.team_members(slug) {
            member["team_slug"] = json!(slug);
            team_members.insert(format!("{slug}/{}", member["id"]), member);
        }
    }
    for repository in github.list("repositories") {
        let name = repository["name"].as_str().unwrap();
        let full = github.repository(name).unwrap();
        settings.insert(full["id"].to_string(), full);
        if let Some(mut rule) = github.default_branch_protection(name) {
            rule["repository"] = json!(name);
            protection.insert(name.to_owned(), rule);
        }
    }
    all.insert("team_members".into(), team_members);
    all.insert("repository_settings".into(), settings);
    all.insert("branch_protection".into(), protection);
    all
}

/// A member joins, one leaves, one turns 2FA on; a team gains a member; a repository is
/// archived and stops forking; one loses its protection, another gains it.
fn change(github: &GitHub) -> BTreeMap<String, Records> {
    github.advance(Duration::from_secs(3_600));
    github.change(|org| {
        org.add_member("newcomer");
        org.remove_member("member-0007");
        org.set_two_factor("member-0008", true);
        org.add_team_member("team-02", "newcomer");
        let repository = org.repository_mut("repo-002").unwrap();
        repository.archived = true;
        repository.allow_forking = false;
        repository
            .protections
            .insert("main".into(), Protection::default());
        org.repository_mut("repo-001").unwrap().protections.clear();
    });
    expected(github)
}

/// A connector, a call stack with a credential, a connection and a record store.
struct Synced<C: CredentialSource + 'static> {
    github: GitHub,
    connector: ManifestConnector,
    calls: ProviderClient<InMemoryBackend, C>,
    connection: ConnectionContext,
    store: Store,
}

impl<C: CredentialSource + 'static> Synced<C> {
    async fn start(
        github: GitHub,
        config: Value,
        credential: impl FnOnce(&ConnectionContext) -> C,
    ) -> Self {
        let store = Store::start("github").await;
        let connection = store.context(config, Some(github.url().to_owned()));
        Self {
            calls: provider_client(credential(&connection)),
            connector: connector(),
            connection,
            store,
            github,
        }
    }

    fn cx(&self) -> CallContext<'_> {
        CallContext {
            calls: &self.calls,
            connection: &self.connection,
        }
    }

    async fn sync(&self, stream: &str) -> SyncCounts {
        self.store
            .sync(&self.connector, &self.calls, &self.connection, stream)
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"))
    }

    async fn stored(&self, stream: &str) -> Records {
        self.store.stored(stream).await
    }

    async fn assert_in_sync(&self, when: &str) {
        for (stream, records) in expected(&self.github) {
            let stored = self.stored(&stream).await;
            assert_eq!(stored.len(), records.len(), "{when}: {stream} count");
            assert!(
                stored == records,
                "{when}: {stream} differs from the stand-in"
            );
        }
    }
}

async fn with_token(github: GitHub) -> Synced<BearerToken> {
    Synced::start(github, org_config(), |_| BearerToken(TOKEN.into())).await
}

impl<C: CredentialSource + 'static> Synced<C> {
    async fn assert_in_sync_streams(&self, streams: &[&str]) {
        let expected = expected(&self.github);
        for stream in streams {
            assert!(
                self.stored(stream).await == expected[*stream],
                "{stream} differs from the stand-in"
            );
        }
    }
}

async fn with_app(key: &AppKey, private_key: String) -> Synced<HeldCredential> {
    with_installation(GitHubApp::new(APP_ID, INSTALLATION, key), private_key).await
}

/// A connection of the App mode to `app`'s installation.
async fn with_installation(app: GitHubApp, private_key: String) -> Synced<HeldCredential> {
    let github = stand_in(GitHubOptions {
        token: None,
        app: Some(app),
        rate_limit: None,
        ..Default::default()
    })
    .await;
    let config = json!({
        "organization": ORG,
        "app_id": APP_ID.to_string(),
        "installation_id": INSTALLATION.to_string(),
    });
    let broker = local_broker();
    let mut synced = Synced::start(github, config, move |connection| {
        let manifest = connector().manifest().clone();
        let mut fields = Map::new();
        fields.insert("private_key".into(), Value::String(private_key));
        HeldCredential::new(broker, &manifest, Some("jwt_bearer"), connection, fields).unwrap()
    })
    .await;
    synced.connection.auth_mode = Some("jwt_bearer".into());
    synced
}
