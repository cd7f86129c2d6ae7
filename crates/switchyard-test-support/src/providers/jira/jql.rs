//! The subset of JQL the Jira manifest sends, parsed the way Jira reads it:
//! `updated >= "yyyy-MM-dd HH:mm" ORDER BY updated ASC` (also `yyyy/MM/dd`, with or without
//! a time, and `>`). Times are in the searching user's time zone, to the minute. Anything
//! else is refused with Jira's 400 messages, including an unbounded query (no restriction
//! before `ORDER BY`), which `/search/jql` rejects.

use time::{Date, PrimitiveDateTime, Time, UtcOffset, macros::format_description};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Query {
    /// The lower bound on `updated`, as an instant.
    pub(crate) since: time::OffsetDateTime,
    /// `>=` (true) or `>`.
    pub(crate) inclusive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JqlError {
    Unbounded,
    Syntax(String),
}

impl JqlError {
    /// The `errorMessages` entry Jira answers.
    pub(crate) fn message(&self) -> String {
        match self {
            Self::Unbounded => "Unbounded JQL queries are not allowed here. Please add a search restriction to your query.".into(),
            Self::Syntax(detail) => format!("Error in the JQL Query: {detail}"),
        }
    }
}

pub(crate) fn parse(jql: &str, zone: UtcOffset) -> Result<Query, JqlError> {
    let tokens = tokenize(jql)?;
    let lower: Vec<String> = tokens.iter().map(|t| t.to_ascii_lowercase()).collect();
    let order_at = lower.iter().position(|t| t == "order");
    let (clause, order) = match order_at {
        Some(at) => (&tokens[..at], &lower[at..]),
        None => (&tokens[..], &lower[lower.len()..]),
    };
    if clause.is_empty() {
        return Err(JqlError::Unbounded);
    }
    if !order.is_empty() && order != ["order", "by", "updated", "asc"] {
        return Err(JqlError::Syntax(
            "the stand-in only sorts by `ORDER BY updated ASC`.".into(),
        ));
    }
    let [field, operator, value] = clause else {
        return Err(JqlError::Syntax(format!(
            "Expecting a single `updated` comparison but got '{}'.",
            clause.join(" ")
        )));
    };
    if !field.eq_ignore_ascii_case("updated") {
        return Err(JqlError::Syntax(format!(
            "Field '{field}' is not supported by the stand-in."
        )));
    }
    let inclusive = match operator.as_str() {
        ">=" => true,
        ">" => false,
        other => {
            return Err(JqlError::Syntax(format!(
                "The operator '{other}' is not supported by the stand-in."
            )));
        }
    };
    let local = local_time(value).ok_or_else(|| {
        JqlError::Syntax(format!(
            "Date value '{value}' for field 'updated' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
        ))
    })?;
    Ok(Query {
        since: local.assume_offset(zone),
        inclusive,
    })
}

/// Words, operators and quoted strings (quotes removed).
fn tokenize(jql: &str) -> Result<Vec<String>, JqlError> {
    let mut tokens = Vec::new();
    let mut chars = jql.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '\'' {
            chars.next();
            let mut text = String::new();
            loop {
                match chars.next() {
                    Some(end) if end == c => break,
                    Some(ch) => text.push(ch),
                    None => {
                        return Err(JqlError::Syntax(
                            "The quoted string is missing its closing quote.".into(),
                        ));
                    }
                }
            }
            tokens.push(text);
        } else if "<>=!".contains(c) {
            let mut op = String::new();
            while let Some(&ch) = chars.peek().filter(|ch| "<>=!".contains(**ch)) {
                op.push(ch);
                chars.next();
            }
            tokens.push(op);
        } else {
            let mut word = String::new();
            while let Some(&ch) = chars
                .peek()
                .filter(|ch| !ch.is_whitespace() && !"<>=!\"'".contains(**ch))
            {
                word.push(ch);
                chars.next();
            }
            tokens.push(word);
        }
    }
    Ok(tokens)
}

fn local_time(value: &str) -> Option<PrimitiveDateTime> {
    let normalized = value.trim().replace('/', "-");
    let with_time = format_description!("[year]-[month]-[day] [hour]:[minute]");
    let date_only = format_description!("[year]-[month]-[day]");
    PrimitiveDateTime::parse(&normalized, with_time)
        .ok()
        .or_else(|| {
            Date::parse(&normalized, date_only)
                .ok()
                .map(|date| date.with_time(Time::MIDNIGHT))
        })
}

#[cfg(test)]
mod tests {
    use time::macros::{datetime, offset};

    use super::*;

    #[test]
    fn reads_the_manifests_query_in_the_users_zone() {
        let query = parse(
            r#"updated >= "2024-01-02 10:30" ORDER BY updated ASC"#,
            offset!(+10),
        )
        .unwrap();
        assert_eq!(query.since, datetime!(2024-01-02 0:30 UTC));
        assert!(query.inclusive);
        let query = parse(r#"updated > "2024/01/02""#, UtcOffset::UTC).unwrap();
        assert_eq!(query.since, datetime!(2024-01-02 0:00 UTC));
        assert!(!query.inclusive);
    }

    #[test]
    fn refuses_what_jira_refuses_or_the_stand_in_does_not_know() {
        assert_eq!(
            parse("ORDER BY updated ASC", UtcOffset::UTC),
            Err(JqlError::Unbounded)
        );
        assert_eq!(parse("", UtcOffset::UTC), Err(JqlError::Unbounded));
        for jql in [
            r#"updated >= "yesterday""#,
            r#"created >= "2024-01-01""#,
            r#"updated >= "2024-01-01" ORDER BY created DESC"#,
            r#"updated >= "2024-01-01" AND project = OPS"#,
            r#"updated >= "2024-01-01"#,
        ] {
            assert!(
                matches!(parse(jql, UtcOffset::UTC), Err(JqlError::Syntax(_))),
                "{jql}"
            );
        }
    }
}
