//! Finds the line of a field in block-style YAML from its path (`streams[1].pagination`), so
//! problems found after parsing point where serde's own errors do. Flow-style parts (`{…}`,
//! `[…]`) resolve to the line of the nearest block-style parent.

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// The 1-based line and column of the node at `path`, or of its deepest ancestor found.
pub fn locate(text: &str, path: &[Step]) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    // The region of lines (start..end) holding the current node, and its content indent.
    let (mut start, mut end, mut indent) = (0, lines.len(), 0usize);
    let mut found = None;
    for step in path {
        let mut hit = None;
        match step {
            Step::Key(key) => {
                for (i, line) in lines.iter().enumerate().take(end).skip(start) {
                    let (column, rest) = content(line);
                    // A key of this mapping sits at its indent, or right after a `- `.
                    let rest = rest.strip_prefix("- ").map_or(rest, str::trim_start);
                    let key_column = line.len() - rest.len();
                    if column < indent || (key_column != indent && column != indent) {
                        continue;
                    }
                    if rest
                        .strip_prefix(key.as_str())
                        .is_some_and(|r| r.starts_with(':'))
                    {
                        hit = Some((i, key_column));
                        break;
                    }
                }
            }
            Step::Index(index) => {
                let mut seen = 0;
                for (i, line) in lines.iter().enumerate().take(end).skip(start) {
                    let (column, rest) = content(line);
                    if column >= indent && rest.starts_with("- ") || rest == "-" {
                        if seen == *index {
                            hit = Some((i, column + 2));
                            break;
                        }
                        seen += 1;
                    }
                }
            }
        }
        let Some((line, column)) = hit else { break };
        found = Some((line + 1, column + 1));
        // The node's children: the lines after it indented deeper than its own start.
        let own = content(lines[line]).0;
        start = line + usize::from(matches!(step, Step::Key(_)));
        end = (line + 1..lines.len())
            .find(|&i| {
                let (c, rest) = content(lines[i]);
                !rest.is_empty() && !rest.starts_with('#') && c <= own && i > line
            })
            .unwrap_or(lines.len());
        indent = match step {
            Step::Key(_) => (line + 1..end)
                .map(|i| content(lines[i]))
                .find(|(_, rest)| !rest.is_empty() && !rest.starts_with('#'))
                .map_or(column + 1, |(c, _)| c),
            Step::Index(_) => column,
        };
    }
    found
}

/// A line's indent and its text after it.
fn content(line: &str) -> (usize, &str) {
    let rest = line.trim_start();
    (line.len() - rest.len(), rest)
}

/// Parses `streams[1].pagination.cursor_path` into steps.
pub fn parse_path(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in path.split('.') {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                steps.push(Step::Key(rest[..open].to_owned()));
            }
            rest = &rest[open..];
            while let Some(inner) = rest.strip_prefix('[') {
                let Some(close) = inner.find(']') else { break };
                if let Ok(index) = inner[..close].parse() {
                    steps.push(Step::Index(index));
                }
                rest = &inner[close + 1..];
            }
        } else if !rest.is_empty() {
            steps.push(Step::Key(rest.to_owned()));
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "id: x\nstreams:\n  - name: a\n    records: $.a\n  - name: b\n    pagination:\n      type: cursor\n      cursor_path: $.next\n";

    #[test]
    fn finds_nested_keys_and_list_items() {
        assert_eq!(locate(YAML, &parse_path("streams")), Some((2, 1)));
        assert_eq!(locate(YAML, &parse_path("streams[1]")), Some((5, 5)));
        assert_eq!(locate(YAML, &parse_path("streams[1].name")), Some((5, 5)));
        assert_eq!(
            locate(YAML, &parse_path("streams[0].records")),
            Some((4, 5))
        );
        assert_eq!(
            locate(YAML, &parse_path("streams[1].pagination.cursor_path")),
            Some((8, 7))
        );
    }

    #[test]
    fn a_missing_step_gives_the_deepest_ancestor() {
        assert_eq!(
            locate(YAML, &parse_path("streams[1].pagination.nothing")),
            Some((6, 5))
        );
    }
}
