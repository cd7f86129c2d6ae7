//! The `rel="next"` target of an RFC 8288 `Link` header.

/// `<https://api.github.com/…?page=2>; rel="next", <…>; rel="last"` → the first URL.
pub fn next(header: &str) -> Option<String> {
    header.split(',').find_map(|link| {
        let (target, params) = link.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let is_next = params.split(';').any(|param| {
            let Some((name, value)) = param.split_once('=') else {
                return false;
            };
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::next;

    #[test]
    fn finds_next_among_other_relations() {
        let header = r#"<https://api.github.com/x?page=1>; rel="prev", <https://api.github.com/x?page=3>; rel="next", <https://api.github.com/x?page=9>; rel="last""#;
        assert_eq!(
            next(header).as_deref(),
            Some("https://api.github.com/x?page=3")
        );
        assert_eq!(next(r#"<https://a/x?page=9>; rel="last""#), None);
        assert_eq!(next("garbage"), None);
        assert_eq!(next("<https://a/n>; rel=next"), Some("https://a/n".into()));
    }
}
