//! The organization as GitHub's JSON: `simple-user`, `organization-full`, `team`,
//! `minimal-repository` and `full-repository`, `protected-branch`, `issue`, `issue-comment`.

use base64::Engine as _;
use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{Comment, Issue, Org, Repository, Team, Visibility};

impl Org {
    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn stamp(at: OffsetDateTime) -> String {
        at.format(&Rfc3339).unwrap_or_default()
    }

    fn node_id(kind: &str, id: u64) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("04:{kind}{id}"))
    }

    /// `simple-user`.
    pub(crate) fn user_json(&self, id: u64, login: &str, kind: &str) -> Value {
        let url = self.api(&format!("/users/{login}"));
        json!({
            "login": login,
            "id": id,
            "node_id": Self::node_id(kind, id),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
            "gravatar_id": "",
            "url": url,
            "html_url": format!("https://github.com/{login}"),
            "followers_url": format!("{url}/followers"),
            "following_url": format!("{url}/following{{/other_user}}"),
            "gists_url": format!("{url}/gists{{/gist_id}}"),
            "starred_url": format!("{url}/starred{{/owner}}{{/repo}}"),
            "subscriptions_url": format!("{url}/subscriptions"),
            "organizations_url": format!("{url}/orgs"),
            "repos_url": format!("{url}/repos"),
            "events_url": format!("{url}/events{{/privacy}}"),
            "received_events_url": format!("{url}/received_events"),
            "type": kind,
            "user_view_type": "public",
            "site_admin": false,
        })
    }

    fn users_json(&self, ids: impl Iterator<Item = u64>) -> Vec<Value> {
        ids.filter_map(|id| self.users.get(&id))
            .map(|user| self.user_json(user.id, &user.login, "User"))
            .collect()
    }

    /// `organization-full`, as a member sees it.
    pub(crate) fn organization_json(&self) -> Value {
        let url = self.api(&format!("/orgs/{}", self.login));
        let mut value = json!({
            "login": self.login,
            "id": self.id,
            "node_id": Self::node_id("Organization", self.id),
            "url": url,
            "repos_url": format!("{url}/repos"),
            "events_url": format!("{url}/events"),
            "hooks_url": format!("{url}/hooks"),
            "issues_url": format!("{url}/issues"),
            "members_url": format!("{url}/members{{/member}}"),
            "public_members_url": format!("{url}/public_members{{/member}}"),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", self.id),
            "description": "A stand-in organization",
            "name": self.login,
            "company": "Acme",
            "blog": "",
            "location": "Internet",
            "email": format!("security@{}.example", self.login),
            "twitter_username": null,
            "is_verified": false,
            "has_organization_projects": true,
            "has_repository_projects": true,
            "public_repos": self.repositories.values().filter(|r| r.visibility == Visibility::Public).count(),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "html_url": format!("https://github.com/{}", self.login),
            "created_at": "2020-01-01T00:00:00Z",
            "updated_at": Self::stamp(self.now),
            "archived_at": null,
            "type": "Organization",
            "two_factor_requirement_enabled": false,
            "default_repository_permission": "read",
            "members_can_create_repositories": true,
            "web_commit_signoff_required": false,
        });
        // What only the organization's owners and admins see.
        let owners = json!({
            "total_private_repos": self.repositories.values().filter(|r| r.visibility != Visibility::Public).count(),
            "owned_private_repos": self.repositories.values().filter(|r| r.visibility != Visibility::Public).count(),
            "private_gists": 0,
            "disk_usage": 10_000,
            "collaborators": self.outside_collaborators.len(),
            "billing_email": format!("billing@{}.example", self.login),
            "plan": {"name": "enterprise", "space": 976_562_499, "private_repos": 999_999, "filled_seats": self.members.len(), "seats": 1_000},
            "default_repository_branch": "main",
            "members_allowed_repository_creation_type": "all",
            "members_can_create_public_repositories": true,
            "members_can_create_private_repositories": true,
            "members_can_create_internal_repositories": true,
            "members_can_create_pages": true,
            "members_can_create_public_pages": true,
            "members_can_create_private_pages": true,
            "members_can_delete_repositories": false,
            "members_can_change_repo_visibility": false,
            "members_can_invite_outside_collaborators": true,
            "members_can_delete_issues": false,
            "display_commenter_full_name_setting_enabled": false,
            "readers_can_create_discussions": true,
            "members_can_create_teams": true,
            "members_can_view_dependency_insights": true,
            "members_can_fork_private_repositories": false,
            "deploy_keys_enabled_for_repositories": true,
            "dependency_graph_enabled_for_new_repositories": false,
            "dependabot_alerts_enabled_for_new_repositories": false,
            "dependabot_security_updates_enabled_for_new_repositories": false,
            "advanced_security_enabled_for_new_repositories": false,
            "secret_scanning_enabled_for_new_repositories": false,
            "secret_scanning_push_protection_enabled_for_new_repositories": false,
            "secret_scanning_push_protection_custom_link": "",
            "secret_scanning_push_protection_custom_link_enabled": false,
        });
        if let (Some(object), Value::Object(owners)) = (value.as_object_mut(), owners) {
            object.extend(owners);
        }
        value
    }

    fn owner_json(&self) -> Value {
        self.user_json(self.id, &self.login, "Organization")
    }

    /// `team`.
    fn team_json(&self, team: &Team) -> Value {
        let url = self.api(&format!("/organizations/{}/team/{}", self.id, team.id));
        json!({
            "id": team.id,
            "node_id": Self::node_id("Team", team.id),
            "url": url,
            "html_url": format!("https://github.com/orgs/{}/teams/{}", self.login, team.slug),
            "name": team.name,
            "slug": team.slug,
            "description": team.description,
            "privacy": team.privacy,
            "notification_setting": "notifications_enabled",
            "type": "organization",
            "permission": "pull",
            "members_url": format!("{url}/members{{/member}}"),
            "repositories_url": format!("{url}/repos"),
            "parent": null,
        })
    }

    /// `minimal-repository` (`full`: `full-repository`, with the merge settings).
    pub(crate) fn repository_json(&self, repository: &Repository, full: bool) -> Value {
        let full_name = format!("{}/{}", self.login, repository.name);
        let url = self.api(&format!("/repos/{full_name}"));
        let status = |on: bool| json!({ "status": if on { "enabled" } else { "disabled" } });
        let mut value = json!({
            "id": repository.id,
            "node_id": Self::node_id("Repository", repository.id),
            "name": repository.name,
            "full_name": full_name,
            "private": repository.visibility != Visibility::Public,
            "owner": self.owner_json(),
            "html_url": format!("https://github.com/{full_name}"),
            "description": repository.description,
            "fork": false,
            "url": url,
            "git_url": format!("git://github.com/{full_name}.git"),
            "ssh_url": format!("git@github.com:{full_name}.git"),
            "clone_url": format!("https://github.com/{full_name}.git"),
            "mirror_url": null,
            "svn_url": format!("https://github.com/{full_name}"),
            "homepage": null,
            "language": "Rust",
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "size": 108,
        });
        // The API's URL templates, as GitHub lists them.
        let urls: serde_json::Map<String, Value> = [
            ("archive_url", "/{archive_format}{/ref}"),
            ("assignees_url", "/assignees{/user}"),
            ("blobs_url", "/git/blobs{/sha}"),
            ("branches_url", "/branches{/branch}"),
            ("collaborators_url", "/collaborators{/collaborator}"),
            ("comments_url", "/comments{/number}"),
            ("commits_url", "/commits{/sha}"),
            ("compare_url", "/compare/{base}...{head}"),
            ("contents_url", "/contents/{+path}"),
            ("contributors_url", "/contributors"),
            ("deployments_url", "/deployments"),
            ("downloads_url", "/downloads"),
            ("events_url", "/events"),
            ("forks_url", "/forks"),
            ("git_commits_url", "/git/commits{/sha}"),
            ("git_refs_url", "/git/refs{/sha}"),
            ("git_tags_url", "/git/tags{/sha}"),
            ("issue_comment_url", "/issues/comments{/number}"),
            ("issue_events_url", "/issues/events{/number}"),
            ("issues_url", "/issues{/number}"),
            ("keys_url", "/keys{/key_id}"),
            ("labels_url", "/labels{/name}"),
            ("languages_url", "/languages"),
            ("merges_url", "/merges"),
            ("milestones_url", "/milestones{/number}"),
            (
                "notifications_url",
                "/notifications{?since,all,participating}",
            ),
            ("pulls_url", "/pulls{/number}"),
            ("releases_url", "/releases{/id}"),
            ("stargazers_url", "/stargazers"),
            ("statuses_url", "/statuses/{sha}"),
            ("subscribers_url", "/subscribers"),
            ("subscription_url", "/subscription"),
            ("tags_url", "/tags"),
            ("teams_url", "/teams"),
            ("trees_url", "/git/trees{/sha}"),
            ("hooks_url", "/hooks"),
        ]
        .into_iter()
        .map(|(key, path)| (key.to_owned(), Value::from(format!("{url}{path}"))))
        .collect();
        let urls = Value::Object(urls);
        let more = json!({
            "default_branch": repository.default_branch,
            "open_issues_count": repository.issues.len(),
            "is_template": false,
            "topics": [],
            "has_issues": true,
            "has_projects": true,
            "has_wiki": true,
            "has_pages": false,
            "has_downloads": true,
            "has_discussions": false,
            "archived": repository.archived,
            "disabled": false,
            "visibility": repository.visibility.as_str(),
            "pushed_at": Self::stamp(repository.updated_at),
            "created_at": Self::stamp(repository.created_at),
            "updated_at": Self::stamp(repository.updated_at),
            "permissions": {"admin": true, "maintain": true, "push": true, "triage": true, "pull": true},
            "allow_forking": repository.allow_forking,
            "web_commit_signoff_required": repository.web_commit_signoff_required,
            "license": null,
            "forks": 0,
            "open_issues": repository.issues.len(),
            "watchers": 0,
            "security_and_analysis": {
                "advanced_security": status(repository.advanced_security),
                "secret_scanning": status(repository.secret_scanning),
                "secret_scanning_push_protection": status(repository.secret_scanning_push_protection),
                "dependabot_security_updates": status(repository.dependabot_security_updates),
                "secret_scanning_non_provider_patterns": status(false),
                "secret_scanning_delegated_alert_dismissal": status(false),
            },
        });
        for more in [urls, more] {
            if let (Some(object), Value::Object(more)) = (value.as_object_mut(), more) {
                object.extend(more);
            }
        }
        if full && let Some(object) = value.as_object_mut() {
            for (key, field) in [
                ("allow_merge_commit", json!(true)),
                ("allow_squash_merge", json!(true)),
                ("allow_rebase_merge", json!(true)),
                ("allow_auto_merge", json!(false)),
                ("allow_update_branch", json!(false)),
                (
                    "delete_branch_on_merge",
                    json!(repository.delete_branch_on_merge),
                ),
                ("use_squash_pr_title_as_default", json!(false)),
                ("squash_merge_commit_title", json!("COMMIT_OR_PR_TITLE")),
                ("squash_merge_commit_message", json!("COMMIT_MESSAGES")),
                ("merge_commit_title", json!("MERGE_MESSAGE")),
                ("merge_commit_message", json!("PR_TITLE")),
                ("organization", self.owner_json()),
                ("network_count", json!(0)),
                ("subscribers_count", json!(1)),
                ("custom_properties", json!({})),
                ("template_repository", Value::Null),
                ("temp_clone_token", json!("")),
            ] {
                object.insert(key.to_owned(), field);
            }
        }
        value
    }

    pub(crate) fn full_repository_json(&self, name: &str) -> Option<Value> {
        self.repository(name)
            .map(|repository| self.repository_json(repository, true))
    }

    /// `protected-branch`; `None` when the branch is not protected.
    pub(crate) fn protection_json(&self, repository: &str, branch: &str) -> Option<Value> {
        let protection = self.repository(repository)?.protections.get(branch)?;
        let url = self.api(&format!(
            "/repos/{}/{repository}/branches/{branch}/protection",
            self.login
        ));
        let enabled = |on: bool| json!({ "enabled": on });
        let mut value = json!({
            "url": url,
            "enforce_admins": {"url": format!("{url}/enforce_admins"), "enabled": protection.enforce_admins},
            "required_signatures": {"url": format!("{url}/required_signatures"), "enabled": protection.required_signatures},
            "required_linear_history": enabled(protection.required_linear_history),
            "allow_force_pushes": enabled(protection.allow_force_pushes),
            "allow_deletions": enabled(protection.allow_deletions),
            "block_creations": enabled(false),
            "required_conversation_resolution": enabled(protection.required_conversation_resolution),
            "lock_branch": enabled(false),
            "allow_fork_syncing": enabled(false),
        });
        let object = value.as_object_mut()?;
        if !protection.required_status_checks.is_empty() {
            let checks: Vec<Value> = protection
                .required_status_checks
                .iter()
                .map(|context| json!({"context": context, "app_id": null}))
                .collect();
            object.insert(
                "required_status_checks".into(),
                json!({
                    "url": format!("{url}/required_status_checks"),
                    "enforcement_level": if protection.enforce_admins { "everyone" } else { "non_admins" },
                    "strict": protection.strict_status_checks,
                    "contexts": protection.required_status_checks,
                    "contexts_url": format!("{url}/required_status_checks/contexts"),
                    "checks": checks,
                }),
            );
        }
        if let Some(count) = protection.required_approving_review_count {
            object.insert(
                "required_pull_request_reviews".into(),
                json!({
                    "url": format!("{url}/required_pull_request_reviews"),
                    "dismiss_stale_reviews": protection.dismiss_stale_reviews,
                    "require_code_owner_reviews": protection.require_code_owner_reviews,
                    "required_approving_review_count": count,
                    "require_last_push_approval": false,
                }),
            );
        }
        Some(value)
    }

    /// A list by name, in the API's order: members, teams by id; repositories newest first
    /// (`sort=created`, GitHub's default for organization repositories).
    pub(crate) fn list(&self, what: &str) -> Option<Vec<Value>> {
        Some(match what {
            "members" => self.users_json(self.members.iter().copied()),
            "members_2fa_disabled" => self.users_json(
                self.members
                    .iter()
                    .copied()
                    .filter(|id| self.two_factor_disabled.contains(id)),
            ),
            "outside_collaborators" => self.users_json(self.outside_collaborators.iter().copied()),
            "teams" => self.teams.values().map(|t| self.team_json(t)).collect(),
            "repositories" => self
                .repositories
                .values()
                .rev()
                .map(|r| self.repository_json(r, false))
                .collect(),
            _ => return None,
        })
    }

    pub(crate) fn admins_json(&self, role: &str) -> Vec<Value> {
        // The first member is the only owner; everyone else is a plain member.
        let first = self.members.iter().next().copied();
        self.users_json(
            self.members
                .iter()
                .copied()
                .filter(|id| (Some(*id) == first) == (role == "admin")),
        )
    }

    pub(crate) fn team_members_json(&self, slug: &str) -> Option<Vec<Value>> {
        let team = self.teams.values().find(|t| t.slug == slug)?;
        // `team-member`: a `simple-user` with its role on the team.
        let mut members = self.users_json(team.members.iter().copied());
        for member in &mut members {
            if let Some(object) = member.as_object_mut() {
                object.insert("role".into(), json!("member"));
                object.insert("inherited".into(), json!(false));
            }
        }
        Some(members)
    }

    pub(crate) fn team_id(&self, slug: &str) -> Option<u64> {
        self.teams.values().find(|t| t.slug == slug).map(|t| t.id)
    }

    pub(crate) fn team_slug(&self, id: u64) -> Option<String> {
        self.teams.get(&id).map(|team| team.slug.clone())
    }

    fn issue_json(&self, repository: &str, issue: &Issue) -> Value {
        let url = self.api(&format!(
            "/repos/{}/{repository}/issues/{}",
            self.login, issue.number
        ));
        let labels: Vec<Value> = issue
            .labels
            .iter()
            .enumerate()
            .map(|(n, name)| {
                json!({
                    "id": 200_000 + n as u64,
                    "node_id": Self::node_id("Label", 200_000 + n as u64),
                    "url": self.api(&format!("/repos/{}/{repository}/labels/{name}", self.login)),
                    "name": name,
                    "description": null,
                    "color": "ededed",
                    "default": false,
                })
            })
            .collect();
        let assignees: Vec<Value> = issue
            .assignees
            .iter()
            .filter_map(|login| self.user_id(login).map(|id| (id, login)))
            .map(|(id, login)| self.user_json(id, login, "User"))
            .collect();
        json!({
            "id": issue.id,
            "node_id": Self::node_id("Issue", issue.id),
            "url": url,
            "repository_url": self.api(&format!("/repos/{}/{repository}", self.login)),
            "labels_url": format!("{url}/labels{{/name}}"),
            "comments_url": format!("{url}/comments"),
            "events_url": format!("{url}/events"),
            "html_url": format!("https://github.com/{}/{repository}/issues/{}", self.login, issue.number),
            "number": issue.number,
            "state": "open",
            "state_reason": null,
            "title": issue.title,
            "body": issue.body,
            "user": issue.author,
            "labels": labels,
            "assignee": assignees.first().cloned(),
            "assignees": assignees,
            "milestone": null,
            "locked": false,
            "active_lock_reason": null,
            "comments": issue.comments.len(),
            "closed_at": null,
            "created_at": Self::stamp(issue.created_at),
            "updated_at": Self::stamp(issue.comments.last().map_or(issue.created_at, |c| c.created_at)),
            "closed_by": null,
            "author_association": "MEMBER",
            "pinned_comment": null,
        })
    }

    fn comment_json(&self, repository: &str, number: u64, comment: &Comment) -> Value {
        let repo_url = self.api(&format!("/repos/{}/{repository}", self.login));
        json!({
            "id": comment.id,
            "node_id": Self::node_id("IssueComment", comment.id),
            "url": format!("{repo_url}/issues/comments/{}", comment.id),
            "html_url": format!("https://github.com/{}/{repository}/issues/{number}#issuecomment-{}", self.login, comment.id),
            "body": comment.body,
            "user": comment.author,
            "created_at": Self::stamp(comment.created_at),
            "updated_at": Self::stamp(comment.created_at),
            "issue_url": format!("{repo_url}/issues/{number}"),
            "author_association": "MEMBER",
            "pin": null,
            "minimized": null,
        })
    }

    pub(crate) fn issues_json(&self, repository: &str) -> Vec<Value> {
        self.repository(repository)
            .map(|repo| {
                repo.issues
                    .iter()
                    .map(|issue| self.issue_json(repository, issue))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn comments_json(&self, repository: &str, number: u64) -> Vec<Value> {
        self.repository(repository)
            .and_then(|repo| repo.issues.iter().find(|i| i.number == number))
            .map(|issue| {
                issue
                    .comments
                    .iter()
                    .map(|comment| self.comment_json(repository, number, comment))
                    .collect()
            })
            .unwrap_or_default()
    }
}
