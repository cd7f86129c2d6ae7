//! The org the Okta stand-in serves: users, groups and their members, factors, applications
//! and the System Log, rendered in the shapes of Okta's Management API description
//! (`ListUsers`, `ListGroupsExample`, `ListFactorsResponse`, `ListLogs` examples).
//!
//! Every change is stamped by the test clock and written to the System Log as the event Okta
//! would publish for it, so the log stream and the event hooks see the same history.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

/// Okta's timestamps: UTC with milliseconds (`2022-05-05T18:15:44.000Z`).
const OKTA_TIME: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

pub(crate) fn okta_time(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(OKTA_TIME)
        .unwrap_or_default()
}

/// A user's lifecycle status (`UserStatus` in the API description).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    Staged,
    Provisioned,
    Active,
    Suspended,
    Deprovisioned,
}

impl UserStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staged => "STAGED",
            Self::Provisioned => "PROVISIONED",
            Self::Active => "ACTIVE",
            Self::Suspended => "SUSPENDED",
            Self::Deprovisioned => "DEPROVISIONED",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaUser {
    pub id: String,
    pub status: UserStatus,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub created: OffsetDateTime,
    pub status_changed: OffsetDateTime,
    pub last_updated: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created: OffsetDateTime,
    pub last_updated: OffsetDateTime,
    pub last_membership_updated: OffsetDateTime,
}

/// An enrolled factor (`UserFactor`): `status` is `ACTIVE` once enrolment completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaFactor {
    pub id: String,
    pub factor_type: String,
    pub provider: String,
    pub status: String,
    pub created: OffsetDateTime,
    pub last_updated: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaApp {
    pub id: String,
    pub name: String,
    pub label: String,
    pub status: String,
    pub sign_on_mode: String,
    pub created: OffsetDateTime,
    pub last_updated: OffsetDateTime,
}

/// One System Log event (`LogEvent`): what happened, to whom, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub uuid: String,
    pub published: OffsetDateTime,
    pub event_type: String,
    pub display_message: String,
    /// `(id, type, displayName)` of each target (`User`, `UserGroup`, `Factor`).
    pub targets: Vec<(String, String, String)>,
}

/// The whole org.
#[derive(Debug, Default)]
pub(crate) struct Org {
    pub(crate) users: BTreeMap<String, OktaUser>,
    pub(crate) groups: BTreeMap<String, OktaGroup>,
    /// Group id → member user ids.
    pub(crate) members: BTreeMap<String, BTreeSet<String>>,
    /// User id → factors by id.
    pub(crate) factors: BTreeMap<String, BTreeMap<String, OktaFactor>>,
    pub(crate) apps: BTreeMap<String, OktaApp>,
    /// In publication order.
    pub(crate) log: Vec<LogEvent>,
    next_id: u64,
}

/// The org's admin, actor of every logged change (the token's owner).
pub(crate) const ADMIN_ID: &str = "00uadmin00000000000a";

impl Org {
    /// A 20-character Okta id with the object's prefix (`00u` users, `00g` groups, `0oa`
    /// apps, `ost`/`sms` factors).
    pub(crate) fn mint(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        let digits = 20usize.saturating_sub(prefix.len() + 4);
        format!("{prefix}{:0>digits$}x0g4", self.next_id)
    }

    pub(crate) fn log_event(
        &mut self,
        at: OffsetDateTime,
        event_type: &str,
        message: &str,
        targets: Vec<(String, String, String)>,
    ) {
        // Deterministic uuids (version-4 shaped), numbered in publication order.
        let uuid = uuid::Uuid::from_u128(
            0x0da1_0000_0000_4000_8000_0000_0000_0000 | (self.log.len() as u128 + 1),
        )
        .to_string();
        self.log.push(LogEvent {
            uuid,
            published: at,
            event_type: event_type.to_owned(),
            display_message: message.to_owned(),
            targets,
        });
    }

    pub(crate) fn user_target(user: &OktaUser) -> (String, String, String) {
        (
            user.id.clone(),
            "User".to_owned(),
            format!("{} {}", user.first_name, user.last_name),
        )
    }

    pub(crate) fn group_target(group: &OktaGroup) -> (String, String, String) {
        (group.id.clone(), "UserGroup".to_owned(), group.name.clone())
    }
}

/// Renders the objects as the API does, with `_links` on the stand-in's own origin.
pub(crate) struct Render<'a> {
    pub(crate) base: &'a str,
}

impl Render<'_> {
    pub(crate) fn user(&self, user: &OktaUser) -> Value {
        let activated = match user.status {
            UserStatus::Staged => Value::Null,
            _ => json!(okta_time(user.created)),
        };
        json!({
            "id": user.id,
            "status": user.status.as_str(),
            "created": okta_time(user.created),
            "activated": activated,
            "statusChanged": okta_time(user.status_changed),
            "lastLogin": null,
            "lastUpdated": okta_time(user.last_updated),
            "passwordChanged": okta_time(user.created),
            "type": {"id": "oty1162QAr8hJjTaq0g4"},
            "profile": {
                "firstName": user.first_name,
                "lastName": user.last_name,
                "mobilePhone": null,
                "secondEmail": null,
                "login": user.email,
                "email": user.email,
            },
            "credentials": {"password": {}, "provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": format!("{}/api/v1/users/{}", self.base, user.id)}},
        })
    }

    pub(crate) fn group(&self, group: &OktaGroup) -> Value {
        let href = |rest: &str| format!("{}/api/v1/groups/{}{rest}", self.base, group.id);
        json!({
            "id": group.id,
            "created": okta_time(group.created),
            "lastUpdated": okta_time(group.last_updated),
            "lastMembershipUpdated": okta_time(group.last_membership_updated),
            "objectClass": ["okta:user_group"],
            "type": "OKTA_GROUP",
            "profile": {"name": group.name, "description": group.description},
            "_links": {
                "logo": [
                    {"name": "medium", "href": format!("{}/img/logos/groups/okta-medium.png", self.base), "type": "image/png"},
                    {"name": "large", "href": format!("{}/img/logos/groups/okta-large.png", self.base), "type": "image/png"},
                ],
                "users": {"href": href("/users")},
                "apps": {"href": href("/apps")},
            },
        })
    }

    /// A factor as `ListFactorsResults` shows them: a pending one links to its activation
    /// (a TOTP with its `_embedded.activation`), an active one to `verify`, except a
    /// security question, which links to the question catalogue.
    pub(crate) fn factor(&self, user_id: &str, factor: &OktaFactor) -> Value {
        let user = format!("{}/api/v1/users/{user_id}", self.base);
        let href = format!("{user}/factors/{}", factor.id);
        let link = |href: String, allow: &[&str]| json!({"href": href, "hints": {"allow": allow}});
        let profile = match factor.factor_type.as_str() {
            "sms" | "call" => json!({"phoneNumber": "+15554151337"}),
            "question" => {
                json!({"question": "favorite_art_piece", "questionText": "What is your favorite piece of art?"})
            }
            "push" => json!({
                "credentialId": format!("{user_id}@example.test"),
                "deviceType": "SmartPhone_IPhone",
                "name": "Test iPhone",
                "platform": "IOS",
                "version": "9.0",
            }),
            _ => json!({"credentialId": format!("{user_id}@example.test")}),
        };
        let pending = factor.status == "PENDING_ACTIVATION";
        let mut links = json!({"user": link(user.clone(), &["GET"])});
        if pending {
            links["self"] = link(href.clone(), &["GET"]);
            links["next"] = link(format!("{href}/lifecycle/activate"), &["POST"]);
            links["next"]["name"] = json!("activate");
        } else {
            links["self"] = link(href.clone(), &["GET", "DELETE"]);
            if factor.factor_type == "question" {
                links["questions"] = link(format!("{user}/factors/questions"), &["GET"]);
            } else {
                links["verify"] = link(format!("{href}/verify"), &["POST"]);
            }
        }
        let mut answer = json!({
            "id": factor.id,
            "factorType": factor.factor_type,
            "provider": factor.provider,
            "vendorName": factor.provider,
            "status": factor.status,
            "created": okta_time(factor.created),
            "lastUpdated": okta_time(factor.last_updated),
            "profile": profile,
            "_links": links,
        });
        if pending && factor.factor_type == "token:software:totp" {
            answer["_embedded"] = json!({"activation": {
                "timeStep": 30, "sharedSecret": "HE64TMLL2IUZW2ZLB", "encoding": "base32", "keyLength": 16,
            }});
        }
        answer
    }

    pub(crate) fn app(&self, app: &OktaApp) -> Value {
        json!({
            "id": app.id,
            "orn": format!("orn:okta:idp:00o1n8sbwArJ7OQRw406:apps:{}:{}", app.name, app.id),
            "name": app.name,
            "label": app.label,
            "status": app.status,
            "lastUpdated": okta_time(app.last_updated),
            "created": okta_time(app.created),
            "accessibility": {"selfService": false, "errorRedirectUrl": null, "loginRedirectUrl": null},
            "visibility": {
                "autoSubmitToolbar": false,
                "hide": {"iOS": false, "web": false},
                "appLinks": {format!("{}_link", app.name): true},
            },
            "features": [],
            "signOnMode": app.sign_on_mode,
            "credentials": {"userNameTemplate": {"template": "${source.login}", "type": "BUILT_IN"}, "signing": {}},
            "settings": {
                "app": {},
                "notifications": {"vpn": {"network": {"connection": "DISABLED"}, "message": null, "helpUrl": null}},
            },
            "_links": {
                "users": {"href": format!("{}/api/v1/apps/{}/users", self.base, app.id)},
                "groups": {"href": format!("{}/api/v1/apps/{}/groups", self.base, app.id)},
            },
        })
    }

    pub(crate) fn log_event(&self, event: &LogEvent) -> Value {
        let targets: Vec<Value> = event
            .targets
            .iter()
            .map(|(id, kind, name)| {
                json!({"id": id, "type": kind, "alternateId": name, "displayName": name, "detailEntry": null})
            })
            .collect();
        json!({
            "actor": {"id": ADMIN_ID, "type": "User", "alternateId": "admin@example.test", "displayName": "Org Admin", "detailEntry": null},
            "client": {
                "userAgent": {"rawUserAgent": "okta-sdk", "os": "Unknown", "browser": "UNKNOWN"},
                "zone": null, "device": "Unknown", "id": null, "ipAddress": "10.0.0.1",
                "geographicalContext": null,
            },
            "authenticationContext": {
                "authenticationProvider": null, "credentialProvider": null, "credentialType": null,
                "issuer": null, "interface": null, "authenticationStep": 0,
                "rootSessionId": "trs-stand-in", "externalSessionId": "trs-stand-in",
            },
            "displayMessage": event.display_message,
            "eventType": event.event_type,
            "outcome": {"result": "SUCCESS", "reason": null},
            "published": okta_time(event.published),
            "securityContext": {"asNumber": null, "asOrg": null, "isp": null, "domain": null, "isProxy": null},
            "severity": "INFO",
            "debugContext": {"debugData": {"requestId": format!("req-{}", event.uuid)}},
            "legacyEventType": null,
            "transaction": {"type": "WEB", "id": format!("tx-{}", event.uuid), "detail": {}},
            "uuid": event.uuid,
            "version": "0",
            // A private address: Okta resolves no geographical context for it.
            "request": {"ipChain": [{"ip": "10.0.0.1", "geographicalContext": null, "version": "V4", "source": null}]},
            "target": targets,
        })
    }
}

// Changes to the org, each stamped `at` and published to the System Log.

pub(crate) fn create_user(
    org: &mut Org,
    first_name: &str,
    last_name: &str,
    email: &str,
    at: OffsetDateTime,
) -> String {
    let id = org.mint("00u");
    let user = OktaUser {
        id: id.clone(),
        status: UserStatus::Active,
        first_name: first_name.to_owned(),
        last_name: last_name.to_owned(),
        email: email.to_owned(),
        created: at,
        status_changed: at,
        last_updated: at,
    };
    let target = Org::user_target(&user);
    org.users.insert(id.clone(), user);
    org.log_event(
        at,
        "user.lifecycle.create",
        "Create okta user",
        vec![target],
    );
    id
}

pub(crate) fn seed_user(org: &mut Org, number: u64, at: OffsetDateTime) -> String {
    let id = create_user(
        org,
        "User",
        &number.to_string(),
        &format!("user{number}@example.test"),
        at,
    );
    if number.is_multiple_of(10) {
        update_user(org, &id, |user| user.status = UserStatus::Suspended, at);
    }
    id
}

/// # Panics
/// When there is no such user: a mistake in the test.
pub(crate) fn update_user(
    org: &mut Org,
    id: &str,
    change: impl FnOnce(&mut OktaUser),
    at: OffsetDateTime,
) -> OktaUser {
    let user = org
        .users
        .get_mut(id)
        .unwrap_or_else(|| panic!("no user {id}"));
    let before = user.status;
    change(user);
    user.last_updated = at;
    let (event_type, message) = if user.status == before {
        (
            "user.account.update_profile",
            "Update user profile for Okta",
        )
    } else {
        user.status_changed = at;
        match user.status {
            UserStatus::Suspended => ("user.lifecycle.suspend", "Suspend Okta user"),
            UserStatus::Deprovisioned => ("user.lifecycle.deactivate", "Deactivate Okta user"),
            UserStatus::Active if before == UserStatus::Suspended => {
                ("user.lifecycle.unsuspend", "Unsuspend Okta user")
            }
            _ => ("user.lifecycle.activate", "Activate Okta user"),
        }
    };
    let user = user.clone();
    org.log_event(at, event_type, message, vec![Org::user_target(&user)]);
    user
}

pub(crate) fn seed_group(org: &mut Org, number: u64, at: OffsetDateTime) -> String {
    let id = org.mint("00g");
    let group = OktaGroup {
        id: id.clone(),
        name: format!("Group {number}"),
        description: format!("Seeded group {number}"),
        created: at,
        last_updated: at,
        last_membership_updated: at,
    };
    let target = Org::group_target(&group);
    org.groups.insert(id.clone(), group);
    org.members.insert(id.clone(), BTreeSet::new());
    org.log_event(
        at,
        "group.lifecycle.create",
        "Create okta group",
        vec![target],
    );
    id
}

/// # Panics
/// When the group or user does not exist: a mistake in the test.
pub(crate) fn add_member(org: &mut Org, group: &str, user: &str, at: OffsetDateTime) {
    let user = org
        .users
        .get(user)
        .cloned()
        .unwrap_or_else(|| panic!("no user {user}"));
    let record = org
        .groups
        .get_mut(group)
        .unwrap_or_else(|| panic!("no group {group}"));
    record.last_membership_updated = at;
    let targets = vec![Org::user_target(&user), Org::group_target(record)];
    org.members
        .entry(group.to_owned())
        .or_default()
        .insert(user.id.clone());
    org.log_event(
        at,
        "group.user_membership.add",
        "Add user to group membership",
        targets,
    );
}

/// # Panics
/// When the user does not exist: a mistake in the test.
pub(crate) fn enroll(
    org: &mut Org,
    user: &str,
    factor_type: &str,
    status: &str,
    at: OffsetDateTime,
) -> OktaFactor {
    let owner = org
        .users
        .get(user)
        .cloned()
        .unwrap_or_else(|| panic!("no user {user}"));
    let prefix = match factor_type {
        "sms" => "sms",
        "push" => "opf",
        _ => "ost",
    };
    let factor = OktaFactor {
        id: org.mint(prefix),
        factor_type: factor_type.to_owned(),
        provider: "OKTA".into(),
        status: status.to_owned(),
        created: at,
        last_updated: at,
    };
    org.factors
        .entry(user.to_owned())
        .or_default()
        .insert(factor.id.clone(), factor.clone());
    let (event_type, message) = if status == "ACTIVE" {
        (
            "user.mfa.factor.activate",
            "Activate factor or authenticator",
        )
    } else {
        ("user.mfa.factor.update", "Update factor or authenticator")
    };
    org.log_event(at, event_type, message, vec![Org::user_target(&owner)]);
    factor
}

pub(crate) fn add_app(org: &mut Org, name: &str, label: &str, mode: &str, at: OffsetDateTime) {
    let id = org.mint("0oa");
    org.apps.insert(
        id.clone(),
        OktaApp {
            id,
            name: name.to_owned(),
            label: label.to_owned(),
            status: "ACTIVE".into(),
            sign_on_mode: mode.to_owned(),
            created: at,
            last_updated: at,
        },
    );
}
