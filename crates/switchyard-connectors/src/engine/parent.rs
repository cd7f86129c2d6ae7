//! A partitioned stream's parent list, revalidated instead of read again.
//!
//! When the parent stream answers with ETags (`incremental: etag`), a complete read of the
//! partitioned stream keeps the parent's pages (as asked, their ETag, where they led, how many
//! partition values each gave) and the values in its checkpoint. The next read asks each kept
//! page with `If-None-Match`: a `304` page gives the values it gave last time, a changed page
//! is read and gives its records' values. An unchanged parent costs only `304`s.
//!
//! What is kept stays small: `partition.record` holds only the top-level fields the stream's
//! request templates read, and a listing whose values outgrow [`LISTING_LIMIT`] is not kept
//! (the next read lists the parent afresh, as without ETags).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde_json::{Map, Value, json};
use serde_json_path::JsonPath;

use super::checkpoint::{PageMemo, PageState, ParentListing, ParentPage, ParentSource};
use super::select;
use crate::connector::ConnectorError;
use crate::manifest::RequestSpec;
use crate::template;

/// The most bytes of partition values (as JSON) a checkpoint keeps between reads.
pub(super) const LISTING_LIMIT: usize = 1 << 20;

/// What the stream's requests read of `partition.record`: the top-level fields they name,
/// or `None` when a template reads the record (or the partition) as a whole.
pub(super) fn record_fields(
    manifest_headers: &BTreeMap<String, String>,
    request: &RequestSpec,
) -> Option<Vec<String>> {
    let mut templates: Vec<&str> = vec![&request.path];
    templates.extend(request.query.values().map(String::as_str));
    templates.extend(manifest_headers.values().map(String::as_str));
    templates.extend(request.headers.values().map(String::as_str));
    if let Some(body) = &request.body {
        strings(body, &mut templates);
    }
    let mut fields = BTreeSet::new();
    for variable in templates.into_iter().flat_map(template::variables) {
        match variable.strip_prefix("partition") {
            Some("" | ".record") => return None,
            Some(rest) => {
                if let Some(field) = rest.strip_prefix(".record.") {
                    fields.insert(field.split('.').next().unwrap_or(field).to_owned());
                }
            }
            None => {}
        }
    }
    Some(fields.into_iter().collect())
}

/// Every string inside a JSON value (a request body's templates).
fn strings<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(text) => out.push(text),
        Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| strings(item, out)),
        _ => {}
    }
}

/// A parent record as a partition: `{"value": …, "record": …}`, the record trimmed to
/// `fields`; `None` when the record has no value at `value`.
pub(super) fn partition(
    record: Value,
    value: &JsonPath,
    fields: Option<&[String]>,
) -> Option<Value> {
    let value = select::first(&record, value)?.clone();
    let record = match fields {
        None => record,
        Some(fields) => Value::Object(
            fields
                .iter()
                .filter_map(|field| Some((field.clone(), record.get(field)?.clone())))
                .collect::<Map<_, _>>(),
        ),
    };
    Some(json!({"value": value, "record": record}))
}

/// What the last complete read listed, ready to revalidate.
pub(super) struct Known {
    listing: Option<ParentListing>,
    /// Each page's values, as a range of `listing.partitions`, by where it was asked.
    ranges: Vec<(PageState, Range<usize>)>,
}

impl Known {
    /// The previous listing when it was made the same way and adds up; else nothing known.
    pub(super) fn new(previous: Option<ParentListing>, source: &ParentSource) -> Self {
        let listing = previous.filter(|listing| {
            &listing.source == source
                && listing.pages.iter().map(|page| page.count).sum::<usize>()
                    == listing.partitions.len()
        });
        let mut ranges = Vec::new();
        if let Some(listing) = &listing {
            let mut start = 0;
            for page in &listing.pages {
                ranges.push((page.state.clone(), start..start + page.count));
                start += page.count;
            }
        }
        Self { listing, ranges }
    }

    /// The checkpoint the parent's read starts from: its pages' ETags (`None`: a plain read).
    pub(super) fn checkpoint(&self) -> Option<Value> {
        let listing = self.listing.as_ref()?;
        let pages: Vec<PageMemo> = listing
            .pages
            .iter()
            .filter_map(|page| {
                Some(PageMemo {
                    partition: 0,
                    state: page.state.clone(),
                    etag: page.etag.clone()?,
                    next: page.next.clone(),
                    // A 304 page's values come from here, not from its keys.
                    keys: Vec::new(),
                })
            })
            .collect();
        (!pages.is_empty()).then(|| json!({ "pages": pages }))
    }

    /// The values the page asked as `state` gave last time (it answered `304`).
    pub(super) fn values(&self, state: &PageState) -> Result<Vec<Value>, ConnectorError> {
        let listing = self.listing.as_ref();
        self.ranges
            .iter()
            .find(|(asked, _)| asked == state)
            .and_then(|(_, range)| listing?.partitions.get(range.clone()))
            .map(<[Value]>::to_vec)
            .ok_or_else(|| {
                ConnectorError::Checkpoint("a parent page answered 304 but is not kept".into())
            })
    }
}

/// Where the parent read's next page will be asked, from the checkpoint it continues with.
pub(super) fn asked(checkpoint: Option<&Value>) -> Result<PageState, ConnectorError> {
    match checkpoint
        .and_then(|c| c.get("progress"))
        .and_then(|p| p.get("page"))
    {
        None => Ok(PageState::First),
        Some(page) => serde_json::from_value(page.clone())
            .map_err(|e| ConnectorError::Checkpoint(e.to_string())),
    }
}

/// A parent listing under way: each page's values as it comes.
pub(super) struct Listing {
    source: ParentSource,
    pages: Vec<ParentPage>,
    partitions: Vec<Value>,
}

impl Listing {
    pub(super) fn new(source: ParentSource) -> Self {
        Self {
            source,
            pages: Vec::new(),
            partitions: Vec::new(),
        }
    }

    pub(super) fn source(&self) -> &ParentSource {
        &self.source
    }

    pub(super) fn push(&mut self, state: PageState, values: Vec<Value>) {
        self.pages.push(ParentPage {
            state,
            etag: None,
            next: None,
            count: values.len(),
        });
        self.partitions.extend(values);
    }

    /// The partition values, and the pages to keep for the next read: with their ETags and
    /// where they led from the parent's final checkpoint (`pages`, its `etag` memos); `None`
    /// when no page had an ETag, so nothing could be revalidated.
    pub(super) fn finish(
        mut self,
        final_checkpoint: &Value,
    ) -> Result<(Vec<Value>, Option<ParentListing>), ConnectorError> {
        let memos: Vec<PageMemo> = match final_checkpoint.get("pages") {
            Some(pages) => serde_json::from_value(pages.clone())
                .map_err(|e| ConnectorError::Checkpoint(e.to_string()))?,
            None => Vec::new(),
        };
        for page in &mut self.pages {
            if let Some(memo) = memos.iter().find(|memo| memo.state == page.state) {
                page.etag = Some(memo.etag.clone());
                page.next.clone_from(&memo.next);
            }
        }
        let revalidatable = self.pages.iter().any(|page| page.etag.is_some());
        let listing = revalidatable.then(|| ParentListing {
            source: self.source,
            pages: self.pages,
            partitions: Vec::new(),
        });
        Ok((self.partitions, listing))
    }
}

/// The listing a complete read keeps, with its values; `None` past [`LISTING_LIMIT`] or when
/// the values do not match the pages.
pub(super) fn keep(
    mut listing: ParentListing,
    partitions: Option<Vec<Value>>,
) -> Option<ParentListing> {
    let partitions = partitions?;
    let counted: usize = listing.pages.iter().map(|page| page.count).sum();
    if counted != partitions.len() || json_size(&partitions) > LISTING_LIMIT {
        return None;
    }
    listing.partitions = partitions;
    Some(listing)
}

/// The bytes `value` takes as JSON, counted without building the text.
fn json_size(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(path: &str, query: &[(&str, &str)], body: Option<Value>) -> RequestSpec {
        serde_json::from_value(json!({
            "path": path,
            "query": query.iter().copied().collect::<BTreeMap<_, _>>(),
            "body": body,
        }))
        .unwrap()
    }

    fn fields(request: &RequestSpec) -> Option<Vec<String>> {
        record_fields(&BTreeMap::new(), request)
    }

    #[test]
    fn only_the_record_fields_a_request_reads_are_kept() {
        let spec = request(
            "/repos/{{ config.org }}/{{ partition.value }}/branches/{{ partition.record.default_branch }}",
            &[("owner", "{{ partition.record.owner.login }}")],
            Some(json!({"q": "{{ partition.record.topics | join(',') }}"})),
        );
        assert_eq!(
            fields(&spec),
            Some(vec![
                "default_branch".into(),
                "owner".into(),
                "topics".into()
            ])
        );
        let value_only = request("/teams/{{ partition.value }}/members", &[], None);
        assert_eq!(fields(&value_only), Some(Vec::new()));
    }

    #[test]
    fn a_record_read_whole_is_kept_whole() {
        for path in [
            "/x/{{ partition.record | tojson }}",
            "/x/{{ partition['record']['id'] }}",
            "{% set r = partition.record %}/x/{{ r.id }}",
        ] {
            assert_eq!(fields(&request(path, &[], None)), None, "{path}");
        }
    }

    #[test]
    fn a_partition_carries_its_value_and_the_kept_fields() {
        let record = json!({"name": "api", "default_branch": "main", "size": 9});
        let path = select::path("$.name").unwrap();
        let kept = ["default_branch".to_owned(), "missing".to_owned()];
        assert_eq!(
            partition(record.clone(), &path, Some(&kept)),
            Some(json!({"value": "api", "record": {"default_branch": "main"}}))
        );
        assert_eq!(
            partition(record.clone(), &path, None),
            Some(json!({"value": "api", "record": record}))
        );
        let unnamed = json!({"default_branch": "main"});
        assert_eq!(partition(unnamed, &path, Some(&kept)), None);
    }

    fn source() -> ParentSource {
        ParentSource {
            stream: "teams".into(),
            value: "$.slug".into(),
            record_fields: Some(Vec::new()),
        }
    }

    fn listing(partitions: Vec<Value>) -> ParentListing {
        let next = PageState::Url {
            url: "https://api.example.test/teams?page=2".into(),
        };
        ParentListing {
            source: source(),
            pages: vec![
                ParentPage {
                    state: PageState::First,
                    etag: Some("W/\"one\"".into()),
                    next: Some(next.clone()),
                    count: 2,
                },
                ParentPage {
                    state: next,
                    etag: None,
                    next: None,
                    count: 1,
                },
            ],
            partitions,
        }
    }

    #[test]
    fn a_kept_listing_asks_its_pages_with_etags_and_answers_their_values() {
        let values = vec![
            json!({"value": "a"}),
            json!({"value": "b"}),
            json!({"value": "c"}),
        ];
        let known = Known::new(Some(listing(values.clone())), &source());
        let checkpoint = known.checkpoint().unwrap();
        let memos: Vec<PageMemo> = serde_json::from_value(checkpoint["pages"].clone()).unwrap();
        assert_eq!(memos.len(), 1, "the page without an ETag is read plainly");
        assert_eq!(memos[0].etag, "W/\"one\"");
        assert_eq!(known.values(&PageState::First).unwrap(), values[..2]);
        let later = PageState::Url {
            url: "https://api.example.test/teams?page=2".into(),
        };
        assert_eq!(known.values(&later).unwrap(), values[2..]);
    }

    #[test]
    fn a_listing_made_otherwise_or_inconsistent_is_not_used() {
        let values = vec![
            json!({"value": "a"}),
            json!({"value": "b"}),
            json!({"value": "c"}),
        ];
        let mut other = source();
        other.value = "$.id".into();
        assert!(
            Known::new(Some(listing(values.clone())), &other)
                .checkpoint()
                .is_none()
        );
        let short = Known::new(Some(listing(values[..2].to_vec())), &source());
        assert!(short.checkpoint().is_none());
        assert!(short.values(&PageState::First).is_err());
    }

    #[test]
    fn a_listing_is_kept_only_within_its_limit() {
        let small = vec![
            json!({"value": "a"}),
            json!({"value": "b"}),
            json!({"value": "c"}),
        ];
        let kept = keep(listing(Vec::new()), Some(small.clone())).unwrap();
        assert_eq!(kept.partitions, small);
        assert!(keep(listing(Vec::new()), Some(small[..1].to_vec())).is_none());
        let big = "x".repeat(LISTING_LIMIT / 2);
        let large = vec![
            json!({"value": big}),
            json!({"value": big}),
            json!({"value": "c"}),
        ];
        assert!(keep(listing(Vec::new()), Some(large)).is_none());
        assert_eq!(json_size(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#.len());
    }

    #[test]
    fn the_asked_page_is_read_from_the_checkpoint() {
        assert_eq!(asked(None).unwrap(), PageState::First);
        assert_eq!(
            asked(Some(&json!({"pages": []}))).unwrap(),
            PageState::First
        );
        let mid = json!({"progress": {"page": {"at": "page", "page": 3}}});
        assert_eq!(asked(Some(&mid)).unwrap(), PageState::Page { page: 3 });
    }
}
