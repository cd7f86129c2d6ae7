//! Server-rendered HTML for the hosted connect page (`GET /connect/{session_token}`) and the
//! page that reports how a connection attempt ended.
//!
//! The routes build the models; this module only renders them. The pages carry no scripts and
//! load nothing from outside: one inline `<style>` whose hash is pinned in
//! [`CONTENT_SECURITY_POLICY`], so the routes can send a policy that forbids everything else.
//! Every tenant- or user-supplied string goes through maud, which escapes it.

use std::collections::BTreeMap;

use maud::{Markup, PreEscaped, html};

/// The Content-Security-Policy the routes send with these pages: no scripts, no external
/// resources, only the page's own stylesheet (by hash), forms posting back to Switchyard only,
/// and no framing (clickjacking a "Connect" button would hand a stranger the user's account).
///
/// The `sha256-…` source is the hash of [`STYLESHEET`]; a unit test fails when they drift.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; \
     style-src 'sha256-ykFDURqJa7uV1NcVR82BVbpmnmFGlKDbdq58nlLRNXo='; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The page listing the providers a connect session allows.
#[derive(Debug, Clone)]
pub struct ConnectPage<'a> {
    /// The `<h1>` and `<title>`, e.g. "Connect your account".
    pub title: &'a str,
    /// Who asks, e.g. "Acme wants access to …" (tenant-supplied).
    pub intro: Option<&'a str>,
    pub providers: Vec<ProviderChoice<'a>>,
    /// When the session link stops working, already formatted for people.
    pub expires_at: Option<&'a str>,
}

/// One provider the user may connect.
#[derive(Debug, Clone)]
pub struct ProviderChoice<'a> {
    pub id: &'a str,
    pub display_name: &'a str,
    pub description: Option<&'a str>,
    pub method: ChoiceMethod<'a>,
}

/// How the user connects a provider.
#[derive(Debug, Clone)]
pub enum ChoiceMethod<'a> {
    /// A link that starts the OAuth flow.
    OAuth { start_url: &'a str },
    /// A form for API keys, basic auth and connector configuration.
    Form(FormModel<'a>),
}

/// A credentials form, possibly re-rendered after a failed submission.
///
/// `Debug` lists the names in `values`, not the values: a caller that passes a secret there
/// by mistake must not see it in a log.
#[derive(Clone)]
pub struct FormModel<'a> {
    pub action_url: &'a str,
    pub fields: Vec<FormField<'a>>,
    /// An error about the submission as a whole, shown in the `role="alert"` summary.
    pub form_error: Option<&'a str>,
    /// Field name → message.
    pub field_errors: BTreeMap<String, String>,
    /// Field name → value to prefill. Entries for secret fields are ignored.
    pub values: BTreeMap<String, String>,
    /// Open this provider's form (after a failed submit).
    pub expanded: bool,
}

impl std::fmt::Debug for FormModel<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormModel")
            .field("action_url", &self.action_url)
            .field("fields", &self.fields)
            .field("form_error", &self.form_error)
            .field("field_errors", &self.field_errors)
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .field("expanded", &self.expanded)
            .finish()
    }
}

/// One input of a credentials form.
#[derive(Debug, Clone)]
pub struct FormField<'a> {
    /// The form field name, e.g. "config.domain" or "credentials.api_key".
    pub name: &'a str,
    pub label: &'a str,
    pub help: Option<&'a str>,
    /// Rendered as a password input that is never prefilled.
    pub secret: bool,
    pub required: bool,
    pub kind: FieldKind,
}

/// What a field holds, which picks the input type and the phone keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Text,
    Url,
    Email,
    Number,
}

/// The page shown after a connection attempt.
#[derive(Debug, Clone)]
pub struct ResultPage<'a> {
    pub success: bool,
    pub heading: &'a str,
    pub message: &'a str,
    /// The tenant's redirect URL. Only `http(s)` URLs and same-origin paths become a link.
    pub continue_url: Option<&'a str>,
}

/// Renders the connect page as a full HTML document.
pub fn connect_page(page: &ConnectPage<'_>) -> String {
    let failed_forms: Vec<(&ProviderChoice<'_>, &FormModel<'_>)> = page
        .providers
        .iter()
        .filter_map(|provider| match &provider.method {
            ChoiceMethod::Form(form) if has_errors(form) => Some((provider, form)),
            _ => None,
        })
        .collect();
    // Screen readers announce the title first, so a failed submit says so straight away.
    let title = if failed_forms.is_empty() {
        page.title.to_owned()
    } else {
        format!("Error: {}", page.title)
    };
    let only_one_provider = page.providers.len() == 1;

    let body = html! {
        h1 { (page.title) }
        @if let Some(intro) = page.intro {
            p class="intro" { (intro) }
        }
        @for (provider, form) in &failed_forms {
            (error_summary(provider, form))
        }
        @if page.providers.is_empty() {
            p { "There is nothing to connect in this session. Ask the service that sent you here for a new link." }
        } @else {
            ul class="providers" {
                @for provider in &page.providers {
                    (provider_item(provider, only_one_provider))
                }
            }
        }
        @if let Some(expires_at) = page.expires_at {
            p class="muted" { "This link works until " (expires_at) "." }
        }
    };
    document(&title, body)
}

/// Renders the outcome of a connection attempt as a full HTML document.
pub fn result_page(page: &ResultPage<'_>) -> String {
    let (status_class, status_text, icon) = if page.success {
        ("status status-ok", "Connected", "✓")
    } else {
        ("status status-failed", "Not connected", "!")
    };
    let body = html! {
        p class=(status_class) {
            span class="status-icon" aria-hidden="true" { (icon) }
            " " (status_text)
        }
        h1 { (page.heading) }
        p { (page.message) }
        @match page.continue_url.filter(|url| is_safe_link(url)) {
            // The page URL holds the session token: keep it out of the tenant's logs.
            Some(url) => {
                a class="button" href=(url) rel="noreferrer" { "Continue" }
            }
            None => {
                p class="muted" { "You can close this window." }
            }
        }
    };
    document(page.heading, body)
}

/// The single stylesheet of both pages. Changing it changes its hash in
/// [`CONTENT_SECURITY_POLICY`] (the `csp_pins_the_stylesheet_hash` test prints the new value).
///
/// Colours meet WCAG AA: text ≥ 4.5:1 and input borders ≥ 3:1 against the card (tested).
pub const STYLESHEET: &str = r#"
:root {
  color-scheme: light;
  --fg: #1f2933;
  --muted: #4b5563;
  --bg: #f3f4f6;
  --card: #ffffff;
  --line: #d1d5db;
  --input-border: #6b7280;
  --accent: #1d4ed8;
  --accent-hover: #1e40af;
  --focus: #1e3a8a;
  --error: #b91c1c;
  --error-bg: #fef2f2;
  --ok: #166534;
  --ok-bg: #f0fdf4;
  --on-accent: #ffffff;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body {
  margin: 0;
  min-height: 100vh;
  padding: 3rem 1rem;
  background: var(--bg);
  color: var(--fg);
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 1rem;
  line-height: 1.5;
}
main {
  max-width: 34rem;
  margin: 0 auto;
  padding: 2rem;
  background: var(--card);
  border: 1px solid var(--line);
  border-radius: 12px;
  box-shadow: 0 1px 3px rgba(0, 0, 0, 0.06), 0 8px 24px rgba(0, 0, 0, 0.04);
}
h1 { font-size: 1.5rem; line-height: 1.25; margin: 0 0 0.75rem; }
h2 { font-size: 1.125rem; line-height: 1.3; margin: 0; }
p { margin: 0 0 1rem; }
.intro { font-size: 1.0625rem; }
.muted, .hint { color: var(--muted); }
.providers { list-style: none; margin: 1.5rem 0; padding: 0; }
.provider { padding: 1.25rem 0; border-top: 1px solid var(--line); }
.provider:last-child { border-bottom: 1px solid var(--line); }
.provider p { margin: 0.25rem 0 0.75rem; }
a { color: var(--accent); text-underline-offset: 0.15em; }
.button {
  display: inline-block;
  min-height: 2.75rem;
  padding: 0.625rem 1.25rem;
  border: 0;
  border-radius: 8px;
  background: var(--accent);
  color: var(--on-accent);
  font: inherit;
  font-weight: 600;
  text-decoration: none;
  cursor: pointer;
}
.button:hover { background: var(--accent-hover); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
details { margin-top: 0.5rem; }
summary { cursor: pointer; color: var(--accent); font-weight: 600; padding: 0.25rem 0; }
details[open] > summary { margin-bottom: 0.75rem; }
.field { margin-bottom: 1.25rem; }
label { display: block; font-weight: 600; margin-bottom: 0.25rem; }
.required { font-weight: 400; color: var(--muted); }
.hint { font-size: 0.9375rem; margin: 0 0 0.375rem; }
input {
  display: block;
  width: 100%;
  min-height: 2.75rem;
  padding: 0.5rem 0.75rem;
  border: 1px solid var(--input-border);
  border-radius: 6px;
  background: var(--card);
  color: var(--fg);
  font: inherit;
}
input[aria-invalid="true"] { border: 2px solid var(--error); }
.field-error, .form-error { color: var(--error); font-weight: 600; margin: 0 0 0.375rem; }
.error-summary {
  margin: 1.25rem 0;
  padding: 1rem 1.25rem;
  border: 3px solid var(--error);
  border-radius: 8px;
  background: var(--error-bg);
}
.error-summary h2 { margin-bottom: 0.5rem; }
.error-summary ul { margin: 0; padding-left: 1.25rem; }
.error-summary a { color: var(--error); font-weight: 600; }
.status { display: inline-block; margin: 0 0 1rem; padding: 0.25rem 0.75rem; border-radius: 999px; font-weight: 600; }
.status-ok { color: var(--ok); background: var(--ok-bg); }
.status-failed { color: var(--error); background: var(--error-bg); }
.visually-hidden {
  position: absolute !important;
  width: 1px; height: 1px;
  margin: -1px; padding: 0; border: 0;
  overflow: hidden;
  clip: rect(0 0 0 0);
  white-space: nowrap;
}
@media (max-width: 30rem) {
  body { padding: 0; background: var(--card); }
  main { padding: 1.5rem 1.25rem; border: 0; border-radius: 0; box-shadow: none; }
  .button { width: 100%; text-align: center; }
}
"#;

fn document(title: &str, body: Markup) -> String {
    html! {
        (PreEscaped("<!doctype html>"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // The URL carries the session token; links out must not leak it.
                meta name="referrer" content="no-referrer";
                meta name="robots" content="noindex, nofollow";
                title { (title) }
                style { (PreEscaped(STYLESHEET)) }
            }
            body {
                main { (body) }
            }
        }
    }
    .into_string()
}

fn provider_item(provider: &ProviderChoice<'_>, only_one_provider: bool) -> Markup {
    html! {
        li class="provider" id=(provider_anchor(provider.id)) {
            h2 { (provider.display_name) }
            @if let Some(description) = provider.description {
                p class="muted" { (description) }
            }
            @match &provider.method {
                ChoiceMethod::OAuth { start_url } => {
                    a class="button" href=(start_url) { "Connect " (provider.display_name) }
                }
                ChoiceMethod::Form(form) => (credentials_form(provider, form, only_one_provider)),
            }
        }
    }
}

fn credentials_form(
    provider: &ProviderChoice<'_>,
    form: &FormModel<'_>,
    only_one_provider: bool,
) -> Markup {
    // `<details>` keeps a long list of providers short without any script; a lone provider
    // or a form to correct is shown open.
    let open = form.expanded || only_one_provider || has_errors(form);
    html! {
        details open[open] {
            summary { "Enter your " (provider.display_name) " credentials" }
            form method="post" action=(form.action_url) accept-charset="utf-8" {
                @if let Some(form_error) = form.form_error {
                    p class="form-error" { (form_error) }
                }
                @for field in &form.fields {
                    (form_field(provider.id, field, form))
                }
                button type="submit" class="button" { "Connect " (provider.display_name) }
            }
        }
    }
}

fn form_field(provider_id: &str, field: &FormField<'_>, form: &FormModel<'_>) -> Markup {
    let id = field_dom_id(provider_id, field.name);
    let help_id = format!("{id}__help");
    let error_id = format!("{id}__error");
    let error = form.field_errors.get(field.name);
    let described_by: Vec<&str> = [
        field.help.map(|_| help_id.as_str()),
        error.map(|_| error_id.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let described_by = (!described_by.is_empty()).then(|| described_by.join(" "));
    let value = if field.secret {
        None
    } else {
        form.values.get(field.name)
    };
    let input_type = match (field.secret, field.kind) {
        (true, _) => "password",
        (false, FieldKind::Url) => "url",
        (false, FieldKind::Email) => "email",
        // A text input: number inputs silently drop what they cannot parse, which would hide
        // the server's validation message behind an empty field.
        (false, FieldKind::Text | FieldKind::Number) => "text",
    };
    let input_mode = (field.kind == FieldKind::Number && !field.secret).then_some("decimal");
    html! {
        div class="field" {
            label for=(id) {
                (field.label)
                @if field.required {
                    " " span class="required" { "(required)" }
                }
            }
            @if let Some(help) = field.help {
                p class="hint" id=(help_id) { (help) }
            }
            @if let Some(error) = error {
                p class="field-error" id=(error_id) {
                    span class="visually-hidden" { "Error: " }
                    (error)
                }
            }
            input type=(input_type) id=(id) name=(field.name) value=[value]
                required[field.required]
                inputmode=[input_mode]
                autocomplete=[field.secret.then_some("off")]
                spellcheck=[field.secret.then_some("false")]
                autocapitalize=[(field.secret || field.kind != FieldKind::Text).then_some("none")]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[described_by];
        }
    }
}

/// The summary at the top of the page after a failed submit. It takes focus on load
/// (`autofocus` works without scripts) and links each message to its field.
fn error_summary(provider: &ProviderChoice<'_>, form: &FormModel<'_>) -> Markup {
    let known_fields: Vec<&str> = form.fields.iter().map(|field| field.name).collect();
    let field_messages: Vec<(Option<String>, &str)> = form
        .fields
        .iter()
        .filter_map(|field| {
            let message = form.field_errors.get(field.name)?;
            Some((
                Some(field_dom_id(provider.id, field.name)),
                message.as_str(),
            ))
        })
        .chain(
            // Errors about fields the form does not show still deserve to be read.
            form.field_errors
                .iter()
                .filter(|(name, _)| !known_fields.contains(&name.as_str()))
                .map(|(_, message)| (None, message.as_str())),
        )
        .collect();
    let title_id = format!("{}__errors", provider_anchor(provider.id));
    html! {
        div class="error-summary" role="alert" tabindex="-1" autofocus aria-labelledby=(title_id) {
            h2 id=(title_id) {
                "There is a problem connecting " (provider.display_name)
            }
            @if let Some(form_error) = form.form_error {
                p { (form_error) }
            }
            @if !field_messages.is_empty() {
                ul {
                    @for (target, message) in &field_messages {
                        li {
                            @match target {
                                Some(id) => {
                                    a href=(format!("#{id}")) { (message) }
                                }
                                None => { (message) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn has_errors(form: &FormModel<'_>) -> bool {
    form.form_error.is_some() || !form.field_errors.is_empty()
}

fn provider_anchor(provider_id: &str) -> String {
    format!("provider-{}", encode_id_part(provider_id))
}

/// A DOM id unique per (provider, field): two providers may both have "credentials.api_key".
fn field_dom_id(provider_id: &str, field_name: &str) -> String {
    format!(
        "field-{}__{}",
        encode_id_part(provider_id),
        encode_id_part(field_name)
    )
}

/// Maps any string to `[A-Za-z0-9-]` plus `_xx` escapes, injectively, so ids stay valid in
/// fragments and never collide ("a.b" and "a-b" stay apart). The output never holds "__",
/// which therefore separates the parts of composed ids ("field-{provider}__{field}__help").
fn encode_id_part(raw: &str) -> String {
    let mut encoded = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("_{byte:02x}"));
        }
    }
    encoded
}

/// Whether a tenant-supplied URL may become a link: `http(s)` or a same-origin path, never
/// `javascript:`/`data:` or other schemes.
fn is_safe_link(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://")
        || lower.starts_with("http://")
        || (lower.starts_with('/') && !lower.starts_with("//") && !lower.starts_with("/\\"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use scraper::{ElementRef, Html, Selector};
    use sha2::{Digest, Sha256};

    fn select<'h>(doc: &'h Html, css: &str) -> Vec<ElementRef<'h>> {
        let selector = Selector::parse(css).expect("test selector parses");
        doc.select(&selector).collect()
    }

    fn only<'h>(doc: &'h Html, css: &str) -> ElementRef<'h> {
        let found = select(doc, css);
        assert_eq!(
            found.len(),
            1,
            "expected exactly one `{css}`, found {}",
            found.len()
        );
        found[0]
    }

    fn text(element: ElementRef<'_>) -> String {
        element.text().collect::<String>()
    }

    fn attr<'h>(element: ElementRef<'h>, name: &str) -> Option<&'h str> {
        element.value().attr(name)
    }

    fn field<'a>(name: &'a str, label: &'a str) -> FormField<'a> {
        FormField {
            name,
            label,
            help: None,
            secret: false,
            required: false,
            kind: FieldKind::Text,
        }
    }

    fn jira_form<'a>() -> FormModel<'a> {
        FormModel {
            action_url: "/connect/tok/credentials/jira",
            fields: vec![
                FormField {
                    help: Some("Your site, e.g. acme.atlassian.net"),
                    required: true,
                    kind: FieldKind::Url,
                    ..field("config.domain", "Site URL")
                },
                FormField {
                    kind: FieldKind::Email,
                    required: true,
                    ..field("credentials.email", "Email")
                },
                FormField {
                    secret: true,
                    required: true,
                    help: Some("Create one under Account settings"),
                    ..field("credentials.api_token", "API token")
                },
                FormField {
                    kind: FieldKind::Number,
                    ..field("config.page_size", "Page size")
                },
            ],
            form_error: None,
            field_errors: BTreeMap::new(),
            values: BTreeMap::new(),
            expanded: false,
        }
    }

    fn page_with<'a>(providers: Vec<ProviderChoice<'a>>) -> ConnectPage<'a> {
        ConnectPage {
            title: "Connect your account",
            intro: Some("Acme wants access to your tools."),
            providers,
            expires_at: Some("12 May 2025, 14:00 UTC"),
        }
    }

    fn slack<'a>() -> ProviderChoice<'a> {
        ProviderChoice {
            id: "slack",
            display_name: "Slack",
            description: Some("Messages and channels"),
            method: ChoiceMethod::OAuth {
                start_url: "/connect/tok/oauth/slack",
            },
        }
    }

    fn jira(form: FormModel<'_>) -> ProviderChoice<'_> {
        ProviderChoice {
            id: "jira",
            display_name: "Jira",
            description: None,
            method: ChoiceMethod::Form(form),
        }
    }

    fn failed_jira_form<'a>() -> FormModel<'a> {
        let mut form = jira_form();
        form.form_error = Some("Jira rejected these credentials.");
        form.field_errors.insert(
            "config.domain".to_owned(),
            "Enter a URL starting with https://".to_owned(),
        );
        form.field_errors.insert(
            "credentials.api_token".to_owned(),
            "Enter your API token".to_owned(),
        );
        form.values
            .insert("config.domain".to_owned(), "acme.example".to_owned());
        form.values
            .insert("credentials.email".to_owned(), "me@acme.example".to_owned());
        form.values.insert(
            "credentials.api_token".to_owned(),
            "super-secret-token".to_owned(),
        );
        form.expanded = true;
        form
    }

    fn render(page: &ConnectPage<'_>) -> (String, Html) {
        let raw = connect_page(page);
        let doc = Html::parse_document(&raw);
        (raw, doc)
    }

    fn assert_document_basics(raw: &str, doc: &Html) {
        assert!(raw.starts_with("<!doctype html>"), "{}", &raw[..40]);
        assert_eq!(attr(only(doc, "html"), "lang"), Some("en"));
        let viewport = only(doc, r#"meta[name="viewport"]"#);
        assert!(attr(viewport, "content").is_some_and(|c| c.contains("width=device-width")));
        assert!(!text(only(doc, "head > title")).is_empty());
        only(doc, "main");
        only(doc, "main h1");
        only(doc, "style");
        // Self-contained and script-free.
        for forbidden in [
            "script", "link", "img", "iframe", "object", "embed", "noscript",
        ] {
            assert!(select(doc, forbidden).is_empty(), "found <{forbidden}>");
        }
        for element in select(doc, "*") {
            for (name, _) in element.value().attrs() {
                assert!(!name.starts_with("on"), "event handler attribute {name}");
                assert_ne!(name, "src");
                assert_ne!(name, "style");
            }
        }
    }

    #[test]
    fn connect_page_is_one_self_contained_accessible_document() {
        let (raw, doc) = render(&page_with(vec![slack(), jira(failed_jira_form())]));
        assert_document_basics(&raw, &doc);
        assert_eq!(text(only(&doc, "h1")), "Connect your account");
        assert!(text(only(&doc, "main")).contains("Acme wants access to your tools."));
        assert!(text(only(&doc, "main")).contains("12 May 2025, 14:00 UTC"));
    }

    #[test]
    fn result_page_is_one_self_contained_document() {
        let raw = result_page(&ResultPage {
            success: true,
            heading: "Slack is connected",
            message: "You can go back to Acme.",
            continue_url: Some("https://acme.example/done"),
        });
        let doc = Html::parse_document(&raw);
        assert_document_basics(&raw, &doc);
        assert_eq!(text(only(&doc, "title")), "Slack is connected");
    }

    #[test]
    fn oauth_provider_is_a_link_named_after_the_provider() {
        let (_, doc) = render(&page_with(vec![slack()]));
        let link = only(&doc, "a.button");
        assert_eq!(attr(link, "href"), Some("/connect/tok/oauth/slack"));
        assert_eq!(text(link), "Connect Slack");
        assert!(select(&doc, "form").is_empty());
    }

    #[test]
    fn form_posts_to_switchyard_with_a_named_submit_button() {
        let (_, doc) = render(&page_with(vec![slack(), jira(jira_form())]));
        let form = only(&doc, "form");
        assert_eq!(attr(form, "method"), Some("post"));
        assert_eq!(attr(form, "action"), Some("/connect/tok/credentials/jira"));
        let button = only(&doc, "form button");
        assert_eq!(attr(button, "type"), Some("submit"));
        assert_eq!(text(button), "Connect Jira");
        let names: Vec<_> = select(&doc, "form input")
            .into_iter()
            .filter_map(|input| attr(input, "name"))
            .collect();
        assert_eq!(
            names,
            [
                "config.domain",
                "credentials.email",
                "credentials.api_token",
                "config.page_size"
            ]
        );
    }

    #[test]
    fn every_input_has_its_own_label_and_unique_id() {
        let second = ProviderChoice {
            id: "jira.dc",
            display_name: "Jira Data Center",
            ..jira(jira_form())
        };
        let (_, doc) = render(&page_with(vec![jira(jira_form()), second]));
        let inputs = select(&doc, "input");
        assert_eq!(inputs.len(), 8);
        let mut ids: Vec<&str> = inputs
            .iter()
            .filter_map(|input| attr(*input, "id"))
            .collect();
        assert_eq!(ids.len(), 8, "every input has an id");
        for id in &ids {
            let labels = select(&doc, &format!(r#"label[for="{id}"]"#));
            assert_eq!(labels.len(), 1, "label for {id}");
        }
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(
            ids.len(),
            8,
            "same field names in two providers get distinct ids"
        );
    }

    #[test]
    fn ids_do_not_collide_for_lookalike_names() {
        assert_ne!(field_dom_id("a", "x.y"), field_dom_id("a", "x-y"));
        assert_ne!(field_dom_id("a", "x_y"), field_dom_id("a", "x-y"));
        assert_ne!(field_dom_id("a__b", "c"), field_dom_id("a", "b__c"));
        assert!(!encode_id_part("a__b-_x").contains("__"));
        // Help and error ids hang off the field id and cannot meet another field's id.
        let page = page_with(vec![jira(FormModel {
            fields: vec![
                FormField {
                    help: Some("help text"),
                    ..field("x", "X")
                },
                field("x-help", "X help"),
                field("x_help", "X help 2"),
            ],
            ..jira_form()
        })]);
        let (_, doc) = render(&page);
        let ids: Vec<&str> = select(&doc, "[id]")
            .into_iter()
            .filter_map(|element| attr(element, "id"))
            .collect();
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "duplicate ids in {ids:?}");
        assert!(
            field_dom_id("p q", "<x>")
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn help_text_is_linked_with_aria_describedby() {
        let (_, doc) = render(&page_with(vec![jira(jira_form())]));
        let domain = only(&doc, r#"input[name="config.domain"]"#);
        let described_by = attr(domain, "aria-describedby").expect("help linked");
        let help = only(&doc, &format!("#{described_by}"));
        assert_eq!(text(help), "Your site, e.g. acme.atlassian.net");
        let email = only(&doc, r#"input[name="credentials.email"]"#);
        assert_eq!(attr(email, "aria-describedby"), None);
    }

    #[test]
    fn required_fields_say_so_in_the_attribute_and_the_label() {
        let (_, doc) = render(&page_with(vec![jira(jira_form())]));
        for input in select(&doc, "input") {
            let id = attr(input, "id").expect("id");
            let label = text(only(&doc, &format!(r#"label[for="{id}"]"#)));
            let required = attr(input, "required").is_some();
            assert_eq!(label.contains("(required)"), required, "{label}");
        }
        assert!(attr(only(&doc, r#"input[name="config.domain"]"#), "required").is_some());
        assert!(attr(only(&doc, r#"input[name="config.page_size"]"#), "required").is_none());
    }

    #[test]
    fn field_kinds_pick_input_types() {
        let (_, doc) = render(&page_with(vec![jira(jira_form())]));
        let type_of = |name: &str| {
            attr(only(&doc, &format!(r#"input[name="{name}"]"#)), "type").map(str::to_owned)
        };
        assert_eq!(type_of("config.domain").as_deref(), Some("url"));
        assert_eq!(type_of("credentials.email").as_deref(), Some("email"));
        assert_eq!(
            type_of("credentials.api_token").as_deref(),
            Some("password")
        );
        assert_eq!(type_of("config.page_size").as_deref(), Some("text"));
        let page_size = only(&doc, r#"input[name="config.page_size"]"#);
        assert_eq!(attr(page_size, "inputmode"), Some("decimal"));
    }

    #[test]
    fn secret_fields_are_password_inputs_never_prefilled() {
        let (raw, doc) = render(&page_with(vec![jira(failed_jira_form())]));
        let token = only(&doc, r#"input[name="credentials.api_token"]"#);
        assert_eq!(attr(token, "type"), Some("password"));
        assert_eq!(attr(token, "autocomplete"), Some("off"));
        assert_eq!(attr(token, "value"), None);
        assert!(!raw.contains("super-secret-token"));
    }

    #[test]
    fn form_debug_output_omits_values() {
        let debug = format!("{:?}", failed_jira_form());
        assert!(!debug.contains("super-secret-token"), "{debug}");
        assert!(debug.contains("credentials.api_token"));
    }

    #[test]
    fn non_secret_values_are_kept_after_a_failed_submit() {
        let (_, doc) = render(&page_with(vec![jira(failed_jira_form())]));
        let value_of = |name: &str| attr(only(&doc, &format!(r#"input[name="{name}"]"#)), "value");
        assert_eq!(value_of("config.domain"), Some("acme.example"));
        assert_eq!(value_of("credentials.email"), Some("me@acme.example"));
        assert_eq!(value_of("config.page_size"), None);
    }

    #[test]
    fn field_errors_are_marked_invalid_and_linked() {
        let (_, doc) = render(&page_with(vec![slack(), jira(failed_jira_form())]));
        let domain = only(&doc, r#"input[name="config.domain"]"#);
        assert_eq!(attr(domain, "aria-invalid"), Some("true"));
        let described_by: Vec<&str> = attr(domain, "aria-describedby")
            .expect("described")
            .split(' ')
            .collect();
        assert_eq!(described_by.len(), 2, "help and error");
        let messages: Vec<String> = described_by
            .iter()
            .map(|id| text(only(&doc, &format!("#{id}"))))
            .collect();
        assert!(
            messages
                .iter()
                .any(|m| m == "Error: Enter a URL starting with https://")
        );
        let email = only(&doc, r#"input[name="credentials.email"]"#);
        assert_eq!(attr(email, "aria-invalid"), None);
    }

    #[test]
    fn error_summary_is_an_alert_linking_to_the_fields() {
        let (_, doc) = render(&page_with(vec![slack(), jira(failed_jira_form())]));
        let summary = only(&doc, r#"[role="alert"]"#);
        let summary_text = text(summary);
        assert!(summary_text.contains("Jira rejected these credentials."));
        assert!(summary_text.contains("There is a problem connecting Jira"));
        let links: Vec<ElementRef<'_>> = summary
            .select(&Selector::parse("a").expect("selector"))
            .collect();
        assert_eq!(links.len(), 2);
        // Summary order follows the form, and every link lands on an invalid input.
        assert_eq!(text(links[0]), "Enter a URL starting with https://");
        assert_eq!(text(links[1]), "Enter your API token");
        for link in links {
            let target = attr(link, "href").expect("href");
            let input = only(&doc, &format!("input{target}"));
            assert_eq!(attr(input, "aria-invalid"), Some("true"));
        }
        assert!(text(only(&doc, "title")).starts_with("Error: "));
    }

    #[test]
    fn errors_for_unknown_fields_are_still_shown() {
        let mut form = jira_form();
        form.field_errors
            .insert("credentials.region".to_owned(), "Pick a region".to_owned());
        let (_, doc) = render(&page_with(vec![jira(form)]));
        let summary = only(&doc, r#"[role="alert"]"#);
        assert!(text(summary).contains("Pick a region"));
    }

    #[test]
    fn no_error_summary_without_errors() {
        let (_, doc) = render(&page_with(vec![slack(), jira(jira_form())]));
        assert!(select(&doc, r#"[role="alert"]"#).is_empty());
        assert!(select(&doc, r#"[aria-invalid]"#).is_empty());
        assert_eq!(text(only(&doc, "title")), "Connect your account");
    }

    #[test]
    fn forms_open_when_expanded_or_alone() {
        let (_, doc) = render(&page_with(vec![slack(), jira(jira_form())]));
        assert_eq!(attr(only(&doc, "details"), "open"), None);
        assert_eq!(
            text(only(&doc, "details > summary")),
            "Enter your Jira credentials"
        );

        let mut expanded = jira_form();
        expanded.expanded = true;
        let (_, doc) = render(&page_with(vec![slack(), jira(expanded)]));
        assert!(attr(only(&doc, "details"), "open").is_some());

        let (_, doc) = render(&page_with(vec![jira(jira_form())]));
        assert!(attr(only(&doc, "details"), "open").is_some());
    }

    #[test]
    fn empty_session_says_there_is_nothing_to_connect() {
        let (_, doc) = render(&page_with(vec![]));
        assert!(text(only(&doc, "main")).contains("nothing to connect"));
        assert!(select(&doc, "ul.providers").is_empty());
    }

    #[test]
    fn tenant_and_user_text_is_escaped() {
        const EVIL: &str = r#"<script>alert(1)</script>"#;
        const EVIL_ATTR: &str = r#""><script>alert(2)</script>"#;
        let mut form = jira_form();
        form.form_error = Some(EVIL);
        form.field_errors
            .insert("config.domain".to_owned(), EVIL.to_owned());
        form.values
            .insert("config.domain".to_owned(), EVIL_ATTR.to_owned());
        let provider = ProviderChoice {
            id: EVIL_ATTR,
            display_name: EVIL,
            description: Some(EVIL),
            method: ChoiceMethod::Form(form),
        };
        let oauth = ProviderChoice {
            display_name: EVIL,
            method: ChoiceMethod::OAuth {
                start_url: EVIL_ATTR,
            },
            ..slack()
        };
        let page = ConnectPage {
            title: EVIL,
            intro: Some(EVIL),
            providers: vec![provider, oauth],
            expires_at: Some(EVIL),
        };
        let (raw, doc) = render(&page);
        assert!(!raw.contains("<script"), "{raw}");
        assert!(raw.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(select(&doc, "script").is_empty());
        assert_eq!(text(only(&doc, "h1")), EVIL);
        let domain = only(&doc, r#"input[name="config.domain"]"#);
        assert_eq!(attr(domain, "value"), Some(EVIL_ATTR));

        let raw = result_page(&ResultPage {
            success: false,
            heading: EVIL,
            message: EVIL,
            continue_url: Some(&format!("https://acme.example/{EVIL_ATTR}")),
        });
        assert!(!raw.contains("<script"), "{raw}");
        assert!(select(&Html::parse_document(&raw), "script").is_empty());
    }

    #[test]
    fn result_page_offers_continue_only_with_a_safe_url() {
        let render_result = |success: bool, continue_url: Option<&str>| {
            Html::parse_document(&result_page(&ResultPage {
                success,
                heading: "Jira is connected",
                message: "All done.",
                continue_url,
            }))
        };
        let doc = render_result(true, Some("https://acme.example/back?x=1&y=2"));
        let link = only(&doc, "a.button");
        assert_eq!(
            attr(link, "href"),
            Some("https://acme.example/back?x=1&y=2")
        );
        assert_eq!(text(link), "Continue");
        assert_eq!(attr(link, "rel"), Some("noreferrer"));
        assert_eq!(text(only(&doc, "h1")), "Jira is connected");
        assert!(text(only(&doc, ".status")).contains("Connected"));

        let doc = render_result(false, None);
        assert!(select(&doc, "a").is_empty());
        assert!(text(only(&doc, "main")).contains("close this window"));
        assert!(text(only(&doc, ".status")).contains("Not connected"));

        for unsafe_url in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "data:text/html,hi",
            "//evil.example",
            "vbscript:x",
        ] {
            let doc = render_result(false, Some(unsafe_url));
            assert!(select(&doc, "a").is_empty(), "{unsafe_url} became a link");
        }
        let doc = render_result(true, Some("/app/done"));
        assert_eq!(attr(only(&doc, "a"), "href"), Some("/app/done"));
    }

    #[test]
    fn links_out_do_not_leak_the_session_token() {
        let (_, doc) = render(&page_with(vec![slack()]));
        let referrer = only(&doc, r#"meta[name="referrer"]"#);
        assert_eq!(attr(referrer, "content"), Some("no-referrer"));
    }

    #[test]
    fn csp_pins_the_stylesheet_hash_and_forbids_scripts_and_framing() {
        let digest = Sha256::digest(STYLESHEET.as_bytes());
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        let expected = format!("style-src 'sha256-{hash}'");
        assert!(
            CONTENT_SECURITY_POLICY.contains(&expected),
            "update CONTENT_SECURITY_POLICY to: {expected}"
        );
        let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split(';').map(str::trim).collect();
        for required in [
            "default-src 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(directives.contains(&required), "missing {required}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("script-src"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        // The served <style> is byte-for-byte what the hash covers.
        let (raw, _) = render(&page_with(vec![slack()]));
        assert!(raw.contains(&format!("<style>{STYLESHEET}</style>")));
    }

    #[test]
    fn stylesheet_has_visible_focus_and_fits_phones() {
        assert!(STYLESHEET.contains(":focus-visible { outline: 3px solid"));
        assert!(STYLESHEET.contains("@media (max-width:"));
        assert!(STYLESHEET.contains("font-family: system-ui"));
    }

    /// WCAG 2 relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |range: std::ops::Range<usize>| {
            let value = f64::from(u8::from_str_radix(&hex[range], 16).expect("hex colour")) / 255.0;
            if value <= 0.039_28 {
                value / 12.92
            } else {
                ((value + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1..3) + 0.7152 * channel(3..5) + 0.0722 * channel(5..7)
    }

    fn colour(name: &str) -> &'static str {
        let needle = format!("--{name}: ");
        let start = STYLESHEET.find(&needle).expect("colour defined") + needle.len();
        &STYLESHEET[start..start + 7]
    }

    fn contrast(foreground: &str, background: &str) -> f64 {
        let (a, b) = (luminance(colour(foreground)), luminance(colour(background)));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    #[test]
    fn colours_meet_wcag_aa_contrast() {
        for (foreground, background) in [
            ("fg", "card"),
            ("fg", "bg"),
            ("muted", "card"),
            ("accent", "card"),
            ("on-accent", "accent"),
            ("on-accent", "accent-hover"),
            ("error", "card"),
            ("error", "error-bg"),
            ("ok", "ok-bg"),
            ("muted", "error-bg"),
        ] {
            let ratio = contrast(foreground, background);
            assert!(ratio >= 4.5, "{foreground} on {background}: {ratio:.2}");
        }
        // Non-text contrast (WCAG 1.4.11): input borders and the focus ring.
        for (foreground, background) in [
            ("input-border", "card"),
            ("focus", "card"),
            ("focus", "bg"),
            ("error", "card"),
        ] {
            let ratio = contrast(foreground, background);
            assert!(ratio >= 3.0, "{foreground} on {background}: {ratio:.2}");
        }
    }
}
