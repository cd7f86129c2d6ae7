//! Webhook deliveries in GitHub's format: the headers GitHub sends (`X-GitHub-Event`,
//! `X-GitHub-Delivery`, `X-GitHub-Hook-ID`, `X-GitHub-Hook-Installation-Target-*`,
//! `User-Agent: GitHub-Hookshot/…`) and payloads with `action`, the object concerned,
//! `organization`, `sender` and, for an App's webhook, `installation`.
//!
//! [`Delivery::signed`] signs with Rust's HMAC; end-to-end tests sign `body` with
//! `@octokit/webhooks-methods` instead and add the signature with [`Delivery::with_signature`].

use serde_json::{Value, json};

use super::GitHub;
use crate::standin::{SignedWebhook, github_signature};

/// What happened, by webhook event (`X-GitHub-Event`) and `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Sent when a webhook is created.
    Ping,
    /// `member`: a repository collaborator `added`, `removed` or `edited`.
    Member {
        action: String,
        login: String,
        repository: String,
    },
    /// `membership`: a team member `added` or `removed`.
    Membership {
        action: String,
        team_slug: String,
        login: String,
    },
    /// `organization`: `member_added`, `member_removed`, `member_invited`, `renamed`.
    Organization { action: String, login: String },
    /// `repository`: `created`, `deleted`, `archived`, `edited`, `privatized`, ….
    Repository { action: String, name: String },
    /// `branch_protection_rule`: `created`, `edited`, `deleted`.
    BranchProtectionRule { action: String, repository: String },
    /// `team`: `created`, `deleted`, `edited`, ….
    Team { action: String, slug: String },
}

impl Event {
    /// `X-GitHub-Event`.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Ping => "ping",
            Event::Member { .. } => "member",
            Event::Membership { .. } => "membership",
            Event::Organization { .. } => "organization",
            Event::Repository { .. } => "repository",
            Event::BranchProtectionRule { .. } => "branch_protection_rule",
            Event::Team { .. } => "team",
        }
    }
}

/// One delivery: the exact body bytes and the headers GitHub sends besides the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event: &'static str,
    /// `X-GitHub-Delivery`: a GUID; a redelivery repeats it.
    pub id: String,
    pub body: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Delivery {
    /// With `X-Hub-Signature-256` computed here (HMAC-SHA256 of the body under `secret`).
    pub fn signed(&self, secret: &[u8]) -> SignedWebhook {
        self.with_signature(&github_signature(secret, &self.body))
    }

    /// With `X-Hub-Signature-256: <signature>` as another library computed it.
    pub fn with_signature(&self, signature: &str) -> SignedWebhook {
        let mut headers = self.headers.clone();
        headers.push(("x-hub-signature-256".into(), signature.to_owned()));
        SignedWebhook {
            headers,
            body: self.body.clone(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

impl GitHub {
    /// A delivery of `event` about the stand-in's data; `installation` is the App
    /// installation's id (`None` for an organization webhook, which carries none).
    pub fn delivery(&self, installation: Option<u64>, event: &Event) -> Delivery {
        let data = self.shared.org();
        let organization = json!({
            "login": data.login,
            "id": data.id,
            "node_id": format!("O_{}", data.id),
            "url": format!("{}/orgs/{}", self.shared.base_url, data.login),
            "repos_url": format!("{}/orgs/{}/repos", self.shared.base_url, data.login),
            "members_url": format!("{}/orgs/{}/members{{/member}}", self.shared.base_url, data.login),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", data.id),
            "description": "A stand-in organization",
        });
        let sender = data.user_json(1, &self.shared.options.login, "User");
        let user = |login: &str| -> Value {
            let id = data
                .list("members")
                .unwrap_or_default()
                .into_iter()
                .chain(data.list("outside_collaborators").unwrap_or_default())
                .find(|u| u["login"] == login)
                .and_then(|u| u["id"].as_u64())
                .unwrap_or(999_999);
            data.user_json(id, login, "User")
        };
        let repository = |name: &str| -> Value {
            data.full_repository_json(name).unwrap_or_else(
                || json!({"name": name, "full_name": format!("{}/{name}", data.login)}),
            )
        };
        let mut body = match event {
            Event::Ping => json!({
                "zen": "Keep it logically awesome.",
                "hook_id": 400_001,
                "hook": {
                    "type": if installation.is_some() { "App" } else { "Organization" },
                    "id": 400_001,
                    "name": "web",
                    "active": true,
                    "events": ["member", "membership", "organization", "repository", "branch_protection_rule", "team"],
                    "config": {"content_type": "json", "insecure_ssl": "0", "url": "https://switchyard.example/ingest"},
                    "updated_at": "2024-01-01T00:00:00Z",
                    "created_at": "2024-01-01T00:00:00Z",
                },
            }),
            Event::Member {
                action,
                login,
                repository: name,
            } => json!({
                "action": action,
                "member": user(login),
                "repository": repository(name),
            }),
            Event::Membership {
                action,
                team_slug,
                login,
            } => {
                let team = data
                    .list("teams")
                    .unwrap_or_default()
                    .into_iter()
                    .find(|t| t["slug"] == team_slug.as_str())
                    .unwrap_or_else(|| json!({"slug": team_slug, "deleted": true}));
                json!({"action": action, "scope": "team", "member": user(login), "team": team})
            }
            Event::Organization { action, login } => json!({
                "action": action,
                "membership": {
                    "url": format!("{}/orgs/{}/memberships/{login}", self.shared.base_url, data.login),
                    "state": "active",
                    "role": "member",
                    "organization_url": format!("{}/orgs/{}", self.shared.base_url, data.login),
                    "user": user(login),
                },
            }),
            Event::Repository { action, name } => {
                json!({"action": action, "repository": repository(name)})
            }
            Event::BranchProtectionRule {
                action,
                repository: name,
            } => {
                let repo = repository(name);
                let branch = repo["default_branch"].as_str().unwrap_or("main").to_owned();
                json!({
                    "action": action,
                    "rule": {
                        "id": 500_001,
                        "repository_id": repo["id"],
                        "name": branch,
                        "created_at": "2024-01-01T00:00:00Z",
                        "updated_at": "2024-01-01T00:00:00Z",
                        "pull_request_reviews_enforcement_level": "non_admins",
                        "required_approving_review_count": 1,
                        "dismiss_stale_reviews_on_push": true,
                        "require_code_owner_review": false,
                        "authorized_dismissal_actors_only": false,
                        "ignore_approvals_from_contributors": false,
                        "require_last_push_approval": false,
                        "required_status_checks": ["ci/build"],
                        "required_status_checks_enforcement_level": "non_admins",
                        "strict_required_status_checks_policy": true,
                        "signature_requirement_enforcement_level": "off",
                        "linear_history_requirement_enforcement_level": "off",
                        "admin_enforced": true,
                        "allow_force_pushes_enforcement_level": "off",
                        "allow_deletions_enforcement_level": "off",
                        "merge_queue_enforcement_level": "off",
                        "required_deployments_enforcement_level": "off",
                        "required_conversation_resolution_level": "non_admins",
                        "authorized_actors_only": false,
                        "authorized_actor_names": [],
                        "lock_branch_enforcement_level": "off",
                        "lock_allows_fork_sync": false,
                        "create_protected": false,
                    },
                    "repository": repo,
                })
            }
            Event::Team { action, slug } => {
                let team = data
                    .list("teams")
                    .unwrap_or_default()
                    .into_iter()
                    .find(|t| t["slug"] == slug.as_str())
                    .unwrap_or_else(|| json!({"slug": slug, "deleted": true}));
                json!({"action": action, "team": team})
            }
        };
        if let Some(object) = body.as_object_mut() {
            object.insert("organization".into(), organization);
            object.insert("sender".into(), sender);
            if let Some(id) = installation {
                object.insert(
                    "installation".into(),
                    json!({"id": id, "node_id": format!("MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u{id}")}),
                );
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let (target_type, target_id) = match installation {
            Some(_) => ("integration", "900001".to_owned()),
            None => ("organization", data.id.to_string()),
        };
        let headers = vec![
            ("content-type".into(), "application/json".into()),
            ("user-agent".into(), "GitHub-Hookshot/a1b2c3d".into()),
            ("x-github-event".into(), event.name().into()),
            ("x-github-delivery".into(), id.clone()),
            ("x-github-hook-id".into(), "400001".into()),
            (
                "x-github-hook-installation-target-type".into(),
                target_type.into(),
            ),
            ("x-github-hook-installation-target-id".into(), target_id),
        ];
        Delivery {
            event: event.name(),
            id,
            body: body.to_string().into_bytes(),
            headers,
        }
    }
}
