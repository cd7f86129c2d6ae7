//! The organization the stand-in serves: its accounts, teams, repositories and issues, and
//! the changes a test makes to them. [`json`] shapes them as the API answers.

mod json;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use time::OffsetDateTime;

/// A GitHub account (a member, an outside collaborator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: u64,
    pub login: String,
}

/// A team of the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub description: Option<String>,
    /// `closed` (visible to members) or `secret`.
    pub privacy: String,
    /// Member ids.
    pub members: BTreeSet<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
    Internal,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Internal => "internal",
        }
    }
}

/// A repository and the settings an audit reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub id: u64,
    pub name: String,
    pub description: Option<String>,
    pub visibility: Visibility,
    pub default_branch: String,
    /// Branches that exist (the default branch among them).
    pub branches: BTreeSet<String>,
    pub archived: bool,
    pub allow_forking: bool,
    pub delete_branch_on_merge: bool,
    pub web_commit_signoff_required: bool,
    pub advanced_security: bool,
    pub secret_scanning: bool,
    pub secret_scanning_push_protection: bool,
    pub dependabot_security_updates: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Protection rules by branch.
    pub protections: BTreeMap<String, Protection>,
    issues: Vec<Issue>,
}

/// A branch's protection, as `GET …/branches/{branch}/protection` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protection {
    /// Status checks that must pass (none: no `required_status_checks`).
    pub required_status_checks: Vec<String>,
    pub strict_status_checks: bool,
    pub enforce_admins: bool,
    /// Approving reviews a pull request needs (`None`: no `required_pull_request_reviews`).
    pub required_approving_review_count: Option<u8>,
    pub dismiss_stale_reviews: bool,
    pub require_code_owner_reviews: bool,
    pub required_signatures: bool,
    pub required_linear_history: bool,
    pub allow_force_pushes: bool,
    pub allow_deletions: bool,
    pub required_conversation_resolution: bool,
}

impl Default for Protection {
    /// What a typical "protect main" rule looks like.
    fn default() -> Self {
        Self {
            required_status_checks: vec!["ci/build".into()],
            strict_status_checks: true,
            enforce_admins: true,
            required_approving_review_count: Some(1),
            dismiss_stale_reviews: true,
            require_code_owner_reviews: false,
            required_signatures: false,
            required_linear_history: false,
            allow_force_pushes: false,
            allow_deletions: false,
            required_conversation_resolution: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Issue {
    id: u64,
    number: u64,
    title: String,
    body: Option<String>,
    labels: Vec<String>,
    assignees: Vec<String>,
    author: Value,
    created_at: OffsetDateTime,
    comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comment {
    id: u64,
    body: String,
    author: Value,
    created_at: OffsetDateTime,
}

/// What [`super::GitHub::seed`] adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed {
    /// Members `member-0001`…; every fourth has two-factor authentication disabled.
    pub members: usize,
    /// Outside collaborators `collaborator-01`….
    pub outside_collaborators: usize,
    /// Teams `team-01`…: member `n` belongs to team `n % teams`, and `member-0001` to every
    /// team (one account in several teams).
    pub teams: usize,
    /// Repositories `repo-001`…, visibility cycling public, private, internal; the odd ones
    /// protect their default branch (`main`, `trunk` for `repo-003`).
    pub repositories: usize,
}

impl Default for Seed {
    /// More members than one page of 100 holds.
    fn default() -> Self {
        Self {
            members: 130,
            outside_collaborators: 5,
            teams: 4,
            repositories: 6,
        }
    }
}

/// The organization: its accounts, teams and repositories.
#[derive(Debug)]
pub struct Org {
    pub login: String,
    pub id: u64,
    base_url: String,
    /// The test clock's time of the change being made.
    pub(crate) now: OffsetDateTime,
    users: BTreeMap<u64, User>,
    members: BTreeSet<u64>,
    two_factor_disabled: BTreeSet<u64>,
    outside_collaborators: BTreeSet<u64>,
    teams: BTreeMap<u64, Team>,
    repositories: BTreeMap<u64, Repository>,
    next_id: u64,
}

impl Org {
    pub(crate) fn new(login: &str, base_url: &str) -> Self {
        Self {
            login: login.to_owned(),
            id: 9_000_001,
            base_url: base_url.to_owned(),
            now: OffsetDateTime::UNIX_EPOCH,
            users: BTreeMap::new(),
            members: BTreeSet::new(),
            two_factor_disabled: BTreeSet::new(),
            outside_collaborators: BTreeSet::new(),
            teams: BTreeMap::new(),
            repositories: BTreeMap::new(),
            next_id: 1_000,
        }
    }

    pub(crate) fn seed(&mut self, seed: &Seed, at: OffsetDateTime) {
        self.now = at;
        let mut members = Vec::new();
        for n in 1..=seed.members {
            let id = self.add_member(&format!("member-{n:04}"));
            if n % 4 == 0 {
                self.two_factor_disabled.insert(id);
            }
            members.push(id);
        }
        for n in 1..=seed.outside_collaborators {
            self.add_outside_collaborator(&format!("collaborator-{n:02}"));
        }
        for t in 0..seed.teams {
            let slug = self.add_team(&format!("Team {:02}", t + 1));
            let team = self.team_mut(&slug).map(|team| &mut team.members);
            if let Some(team) = team {
                for (i, id) in members.iter().enumerate() {
                    if (i + 1) % seed.teams == t || i == 0 {
                        team.insert(*id);
                    }
                }
            }
        }
        for n in 1..=seed.repositories {
            let visibility = match n % 3 {
                1 => Visibility::Public,
                2 => Visibility::Private,
                _ => Visibility::Internal,
            };
            let repository = self.add_repository(&format!("repo-{n:03}"), visibility);
            if n == 3 {
                repository.default_branch = "trunk".into();
                repository.branches = BTreeSet::from(["trunk".to_owned()]);
            }
            repository.secret_scanning = n % 2 == 1;
            if n % 2 == 1 {
                let branch = repository.default_branch.clone();
                repository.protections.insert(branch, Protection::default());
            }
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn user(&mut self, login: &str) -> u64 {
        if let Some(user) = self.users.values().find(|u| u.login == login) {
            return user.id;
        }
        let id = self.id();
        self.users.insert(
            id,
            User {
                id,
                login: login.to_owned(),
            },
        );
        id
    }

    fn user_id(&self, login: &str) -> Option<u64> {
        self.users.values().find(|u| u.login == login).map(|u| u.id)
    }

    /// Adds an organization member (the account too, if new); returns its id.
    pub fn add_member(&mut self, login: &str) -> u64 {
        let id = self.user(login);
        self.members.insert(id);
        self.outside_collaborators.remove(&id);
        id
    }

    /// Removes a member from the organization and its teams; `false` when it was none.
    pub fn remove_member(&mut self, login: &str) -> bool {
        let Some(id) = self.user_id(login) else {
            return false;
        };
        for team in self.teams.values_mut() {
            team.members.remove(&id);
        }
        self.two_factor_disabled.remove(&id);
        self.members.remove(&id)
    }

    pub fn set_two_factor(&mut self, login: &str, enabled: bool) {
        if let Some(id) = self.user_id(login) {
            if enabled {
                self.two_factor_disabled.remove(&id);
            } else {
                self.two_factor_disabled.insert(id);
            }
        }
    }

    pub fn add_outside_collaborator(&mut self, login: &str) -> u64 {
        let id = self.user(login);
        self.outside_collaborators.insert(id);
        id
    }

    /// Adds a team named `name`; returns its slug (lower case, spaces as `-`).
    pub fn add_team(&mut self, name: &str) -> String {
        let id = self.id();
        let slug = name.to_lowercase().replace(' ', "-");
        self.teams.insert(
            id,
            Team {
                id,
                name: name.to_owned(),
                slug: slug.clone(),
                description: Some(format!("The {name} team")),
                privacy: "closed".into(),
                members: BTreeSet::new(),
            },
        );
        slug
    }

    pub fn team_mut(&mut self, slug: &str) -> Option<&mut Team> {
        self.teams.values_mut().find(|team| team.slug == slug)
    }

    pub fn delete_team(&mut self, slug: &str) -> bool {
        let id = self.teams.values().find(|t| t.slug == slug).map(|t| t.id);
        id.is_some_and(|id| self.teams.remove(&id).is_some())
    }

    /// Adds a member (an organization member already, or made one) to a team.
    pub fn add_team_member(&mut self, slug: &str, login: &str) {
        let id = self.add_member(login);
        if let Some(team) = self.team_mut(slug) {
            team.members.insert(id);
        }
    }

    pub fn remove_team_member(&mut self, slug: &str, login: &str) {
        let id = self.user_id(login);
        if let (Some(team), Some(id)) = (self.team_mut(slug), id) {
            team.members.remove(&id);
        }
    }

    /// Adds a repository with a `main` branch, created and updated now.
    pub fn add_repository(&mut self, name: &str, visibility: Visibility) -> &mut Repository {
        let id = self.id();
        let now = self.now;
        self.repositories.entry(id).or_insert(Repository {
            id,
            name: name.to_owned(),
            description: Some(format!("The {name} repository")),
            visibility,
            default_branch: "main".into(),
            branches: BTreeSet::from(["main".to_owned()]),
            archived: false,
            allow_forking: visibility != Visibility::Public,
            delete_branch_on_merge: false,
            web_commit_signoff_required: false,
            advanced_security: false,
            secret_scanning: false,
            secret_scanning_push_protection: false,
            dependabot_security_updates: false,
            created_at: now,
            updated_at: now,
            protections: BTreeMap::new(),
            issues: Vec::new(),
        })
    }

    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.values().find(|r| r.name == name)
    }

    /// The repository to change; its `updated_at` becomes now.
    pub fn repository_mut(&mut self, name: &str) -> Option<&mut Repository> {
        let now = self.now;
        let repository = self.repositories.values_mut().find(|r| r.name == name)?;
        repository.updated_at = now;
        Some(repository)
    }

    pub fn delete_repository(&mut self, name: &str) -> bool {
        let id = self.repository(name).map(|r| r.id);
        id.is_some_and(|id| self.repositories.remove(&id).is_some())
    }

    /// Opens an issue; `None` when there is no such repository.
    pub(crate) fn create_issue(
        &mut self,
        repository: &str,
        title: String,
        body: Option<String>,
        labels: Vec<String>,
        assignees: Vec<String>,
        author: Value,
    ) -> Option<Value> {
        let id = self.id();
        let now = self.now;
        let repo = self
            .repositories
            .values_mut()
            .find(|r| r.name == repository)?;
        let number = repo.issues.len() as u64 + 1;
        repo.issues.push(Issue {
            id,
            number,
            title,
            body,
            labels,
            assignees,
            author,
            created_at: now,
            comments: Vec::new(),
        });
        self.issues_json(repository).pop()
    }

    /// Comments on an issue; `None` when there is no such repository or issue.
    pub(crate) fn create_comment(
        &mut self,
        repository: &str,
        number: u64,
        body: String,
        author: Value,
    ) -> Option<Value> {
        let id = self.id();
        let now = self.now;
        let repo = self
            .repositories
            .values_mut()
            .find(|r| r.name == repository)?;
        let issue = repo.issues.iter_mut().find(|i| i.number == number)?;
        issue.comments.push(Comment {
            id,
            body,
            author,
            created_at: now,
        });
        self.comments_json(repository, number).pop()
    }
}
