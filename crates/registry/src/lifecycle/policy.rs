//! A lifecycle policy: its validation (as ECR validates `lifecyclePolicyText`) and the one
//! evaluation that both StartLifecyclePolicyPreview and the lifecycle job run, so that on the
//! same images they select the same ones.
//!
//! The rules, from the ECR user guide ("Lifecycle policy properties", "How lifecycle policies
//! work"): rules apply in ascending `rulePriority`; an image whose tags meet a rule's
//! selection belongs to that rule, so a later rule never acts on it even when the earlier
//! rule leaves it alone; each image is acted on by at most one rule.

use model::wildcard_match;
use serde_json::{Map, Value};

use storage::Millis;

use crate::RegistryError;

const DAY_MILLIS: i64 = 24 * 3600 * 1000;
/// The shortest stay in the archive a rule may expire after (ECR's minimum storage duration).
const MIN_ARCHIVE_DAYS: i64 = 90;
/// The most `*` a `tagPatternList` entry may hold.
const MAX_WILDCARDS: usize = 4;

/// Which images a rule's tag selection takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSelection {
    /// Images with, for every entry, a tag that starts with it.
    Prefixes(Vec<String>),
    /// Images with, for every entry, a tag that it matches (`*`: any run of characters).
    Patterns(Vec<String>),
    Untagged,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Everything but the newest `n` pushed.
    MoreThan(u64),
    /// Pushed more than this many days ago.
    SincePushed(i64),
    /// Last pulled (or, never pulled, pushed) more than this many days ago.
    SincePulled(i64),
    /// Archived more than this many days ago (archived images only).
    SinceTransitioned(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Expire,
    /// To the archive storage class.
    Archive,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub priority: i64,
    pub tags: TagSelection,
    pub count: Count,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecyclePolicy {
    /// In ascending priority.
    pub rules: Vec<Rule>,
}

/// What the evaluation knows of an image.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub digest: &'a str,
    pub tags: &'a [String],
    pub pushed_at: Millis,
    pub last_pulled_at: Option<Millis>,
    /// When it was archived, if it is.
    pub archived_at: Option<Millis>,
}

/// One image a policy acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Index into the candidates given to [`LifecyclePolicy::evaluate`].
    pub index: usize,
    pub priority: i64,
    pub action: Action,
}

fn fail(reason: impl std::fmt::Display) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {reason}'"
    ))
}

fn string_list(sel: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, RegistryError> {
    let Some(v) = sel.get(key) else {
        return Ok(None);
    };
    let list = v
        .as_array()
        .ok_or_else(|| fail(format!("{key} must be an array of strings")))?;
    if list.is_empty() {
        return Err(fail(format!("{key} must not be empty")));
    }
    list.iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| fail(format!("{key} must be an array of strings")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, RegistryError> {
    v.as_object()
        .ok_or_else(|| fail(format!("{what} must be an object")))
}

fn only_keys(m: &Map<String, Value>, what: &str, allowed: &[&str]) -> Result<(), RegistryError> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(fail(format!(
            "{what} has an unknown property \"{k}\" (allowed: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn parse_rule(v: &Value) -> Result<Rule, RegistryError> {
    let rule = object(v, "rule")?;
    only_keys(
        rule,
        "rule",
        &["rulePriority", "description", "selection", "action"],
    )?;
    let priority = rule
        .get("rulePriority")
        .ok_or_else(|| fail("rule has missing required property \"rulePriority\""))?
        .as_i64()
        .filter(|p| *p >= 1)
        .ok_or_else(|| fail("rulePriority must be an integer of at least 1"))?;
    if let Some(d) = rule.get("description")
        && !d.is_string()
    {
        return Err(fail("description must be a string"));
    }
    let sel = object(
        rule.get("selection")
            .ok_or_else(|| fail("rule has missing required property \"selection\""))?,
        "selection",
    )?;
    only_keys(
        sel,
        "selection",
        &[
            "tagStatus",
            "tagPrefixList",
            "tagPatternList",
            "countType",
            "countUnit",
            "countNumber",
            "storageClass",
        ],
    )?;
    let prefixes = string_list(sel, "tagPrefixList")?;
    let patterns = string_list(sel, "tagPatternList")?;
    let tags = match sel.get("tagStatus").and_then(Value::as_str) {
        None => {
            return Err(fail(
                "selection has missing required property \"tagStatus\"",
            ));
        }
        Some("tagged") => match (prefixes, patterns) {
            (Some(_), Some(_)) => {
                return Err(fail(
                    "tagPrefixList and tagPatternList cannot both be specified in a rule",
                ));
            }
            (Some(p), None) => TagSelection::Prefixes(p),
            (None, Some(p)) => {
                if let Some(bad) = p.iter().find(|p| p.matches('*').count() > MAX_WILDCARDS) {
                    return Err(fail(format!(
                        "tagPatternList entry '{bad}' has more than {MAX_WILDCARDS} wildcards (*)"
                    )));
                }
                TagSelection::Patterns(p)
            }
            (None, None) => {
                return Err(fail(
                    "tagPrefixList or tagPatternList is required when tagStatus is tagged",
                ));
            }
        },
        Some(s @ ("untagged" | "any")) => {
            if prefixes.is_some() || patterns.is_some() {
                return Err(fail(format!(
                    "tagPrefixList and tagPatternList must be omitted when tagStatus is {s}"
                )));
            }
            if s == "untagged" {
                TagSelection::Untagged
            } else {
                TagSelection::Any
            }
        }
        Some(other) => {
            return Err(fail(format!(
                "tagStatus '{other}' is not one of [tagged, untagged, any]"
            )));
        }
    };
    let number = sel
        .get("countNumber")
        .ok_or_else(|| fail("selection has missing required property \"countNumber\""))?
        .as_i64()
        .filter(|n| *n >= 1)
        .ok_or_else(|| fail("countNumber must be an integer of at least 1"))?;
    let unit = sel.get("countUnit").map(|u| u.as_str());
    let days = |kind: &str| match unit {
        Some(Some("days")) => Ok(number),
        None => Err(fail(format!(
            "countUnit is required when countType is {kind}"
        ))),
        Some(_) => Err(fail("countUnit must be days")),
    };
    let count = match sel.get("countType").and_then(Value::as_str) {
        None => {
            return Err(fail(
                "selection has missing required property \"countType\"",
            ));
        }
        Some("imageCountMoreThan") => {
            if unit.is_some() {
                return Err(fail(
                    "countUnit must be omitted when countType is imageCountMoreThan",
                ));
            }
            Count::MoreThan(number as u64)
        }
        Some(k @ "sinceImagePushed") => Count::SincePushed(days(k)?),
        Some(k @ "sinceImagePulled") => Count::SincePulled(days(k)?),
        Some(k @ "sinceImageTransitioned") => Count::SinceTransitioned(days(k)?),
        Some(other) => {
            return Err(fail(format!(
                "countType '{other}' is not one of [imageCountMoreThan, sinceImagePushed, sinceImagePulled, sinceImageTransitioned]"
            )));
        }
    };
    let storage_class = sel.get("storageClass").map(|s| s.as_str());
    match (count, storage_class) {
        (Count::SinceTransitioned(_), Some(Some("archive"))) => {}
        (Count::SinceTransitioned(_), _) => {
            return Err(fail(
                "storageClass archive is required when countType is sinceImageTransitioned",
            ));
        }
        (_, None | Some(Some("standard"))) => {}
        (_, Some(_)) => {
            return Err(fail(
                "storageClass archive is only allowed with countType sinceImageTransitioned",
            ));
        }
    }
    let action = object(
        rule.get("action")
            .ok_or_else(|| fail("rule has missing required property \"action\""))?,
        "action",
    )?;
    only_keys(action, "action", &["type", "targetStorageClass"])?;
    let target = action.get("targetStorageClass").map(|t| t.as_str());
    let action = match action.get("type").and_then(Value::as_str) {
        Some("expire") if target.is_none() => Action::Expire,
        Some("expire") => {
            return Err(fail(
                "targetStorageClass is only allowed when the action type is transition",
            ));
        }
        Some("transition") => match target {
            Some(Some("archive")) => Action::Archive,
            _ => {
                return Err(fail(
                    "targetStorageClass archive is required when the action type is transition",
                ));
            }
        },
        _ => return Err(fail("action type must be one of [expire, transition]")),
    };
    // "Archived images have a minimum storage duration of 90 days. You cannot configure
    // lifecycle policies that delete images that have been in archive for less than 90 days."
    if let Count::SinceTransitioned(days) = count
        && days < MIN_ARCHIVE_DAYS
    {
        return Err(fail(format!(
            "countNumber must be at least {MIN_ARCHIVE_DAYS} when countType is sinceImageTransitioned: archived images are kept for at least {MIN_ARCHIVE_DAYS} days"
        )));
    }
    if action == Action::Archive && matches!(count, Count::SinceTransitioned(_)) {
        return Err(fail(
            "an archived image can only be expired: transition cannot follow sinceImageTransitioned",
        ));
    }
    Ok(Rule {
        priority,
        tags,
        count,
        action,
    })
}

impl LifecyclePolicy {
    /// Parses and validates `lifecyclePolicyText`.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| fail(format!("the policy is not valid JSON: {e}")))?;
        let doc = object(&doc, "the policy")?;
        only_keys(doc, "the policy", &["rules"])?;
        let rules = doc
            .get("rules")
            .ok_or_else(|| fail("object has missing required properties ([\"rules\"])"))?
            .as_array()
            .ok_or_else(|| fail("rules must be an array"))?;
        if rules.is_empty() {
            return Err(fail("rules must hold at least one rule"));
        }
        let mut rules = rules
            .iter()
            .map(parse_rule)
            .collect::<Result<Vec<_>, _>>()?;
        rules.sort_by_key(|r| r.priority);
        if let Some(w) = rules.windows(2).find(|w| w[0].priority == w[1].priority) {
            return Err(fail(format!(
                "rulePriority {} is used by more than one rule",
                w[0].priority
            )));
        }
        if let Some(i) = rules
            .iter()
            .position(|r| r.tags == TagSelection::Any && r.action == Action::Expire)
            && i + 1 != rules.len()
        {
            return Err(fail(
                "a rule with tagStatus any must have the highest rulePriority",
            ));
        }
        Ok(Self { rules })
    }

    /// The images the policy acts on at `now`, by rule. Rules see the images in their given
    /// order; ties of push time keep it.
    pub fn evaluate(&self, images: &[Candidate<'_>], now: Millis) -> Vec<Selected> {
        let mut claimed = vec![false; images.len()];
        let mut out = Vec::new();
        for rule in &self.rules {
            // An archived image is only seen by rules on archived images, and the reverse.
            let archived_rule = matches!(rule.count, Count::SinceTransitioned(_));
            let mut matched: Vec<usize> = (0..images.len())
                .filter(|&i| !claimed[i])
                .filter(|&i| images[i].archived_at.is_some() == archived_rule)
                .filter(|&i| rule.tags.matches(images[i].tags))
                .collect();
            for &i in &matched {
                claimed[i] = true;
            }
            let older_than = |days: i64, t: Millis| t < now - days * DAY_MILLIS;
            let chosen: Vec<usize> = match rule.count {
                Count::MoreThan(n) => {
                    // Newest first; the newest `n` stay.
                    matched.sort_by_key(|&i| std::cmp::Reverse(images[i].pushed_at));
                    matched.into_iter().skip(n as usize).collect()
                }
                Count::SincePushed(d) => matched
                    .into_iter()
                    .filter(|&i| older_than(d, images[i].pushed_at))
                    .collect(),
                Count::SincePulled(d) => matched
                    .into_iter()
                    .filter(|&i| {
                        older_than(d, images[i].last_pulled_at.unwrap_or(images[i].pushed_at))
                    })
                    .collect(),
                Count::SinceTransitioned(d) => matched
                    .into_iter()
                    .filter(|&i| images[i].archived_at.is_some_and(|t| older_than(d, t)))
                    .collect(),
            };
            out.extend(chosen.into_iter().map(|index| Selected {
                index,
                priority: rule.priority,
                action: rule.action,
            }));
        }
        out.sort_by_key(|s| s.index);
        out
    }
}

impl TagSelection {
    fn matches(&self, tags: &[String]) -> bool {
        match self {
            TagSelection::Any => true,
            TagSelection::Untagged => tags.is_empty(),
            TagSelection::Prefixes(p) => p
                .iter()
                .all(|p| tags.iter().any(|t| t.starts_with(p.as_str()))),
            TagSelection::Patterns(p) => {
                p.iter().all(|p| tags.iter().any(|t| wildcard_match(p, t)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> String {
        match LifecyclePolicy::parse(text) {
            Err(RegistryError::InvalidParameter(m)) => m,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn rule(priority: i64, selection: &str, action: &str) -> String {
        format!(r#"{{"rulePriority":{priority},"selection":{selection},"action":{action}}}"#)
    }

    const EXPIRE: &str = r#"{"type":"expire"}"#;

    #[test]
    fn refuses_what_ecr_refuses() {
        let untagged =
            r#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#;
        for (text, want) in [
            ("not json".to_owned(), "not valid JSON"),
            (r#"{"rules":[]}"#.to_owned(), "at least one rule"),
            (r#"{}"#.to_owned(), "\"rules\""),
            (
                format!(
                    r#"{{"rules":[{},{}]}}"#,
                    rule(1, untagged, EXPIRE),
                    rule(1, untagged, EXPIRE)
                ),
                "rulePriority 1 is used by more than one rule",
            ),
            (
                format!(r#"{{"rules":[{}]}}"#, rule(0, untagged, EXPIRE)),
                "at least 1",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"TAGGED","countType":"imageCountMoreThan","countNumber":1}"#,
                        EXPIRE
                    )
                ),
                "tagStatus 'TAGGED'",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#,
                        EXPIRE
                    )
                ),
                "tagPrefixList or tagPatternList is required",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1}"#,
                        EXPIRE
                    )
                ),
                "must be omitted when tagStatus is untagged",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"tagged","tagPatternList":["*a*b*c*d*e"],"countType":"imageCountMoreThan","countNumber":1}"#,
                        EXPIRE
                    )
                ),
                "more than 4 wildcards",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"any","countType":"sinceImagePushed","countNumber":1}"#,
                        EXPIRE
                    )
                ),
                "countUnit is required",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}"#,
                        EXPIRE
                    )
                ),
                "countUnit must be omitted",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"hours","countNumber":1}"#,
                        EXPIRE
                    )
                ),
                "countUnit must be days",
            ),
            (
                format!(
                    r#"{{"rules":[{},{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#,
                        EXPIRE
                    ),
                    rule(2, untagged, EXPIRE)
                ),
                "tagStatus any must have the highest rulePriority",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(1, untagged, r#"{"type":"delete"}"#)
                ),
                "action type must be one of",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(1, untagged, r#"{"type":"transition"}"#)
                ),
                "targetStorageClass archive is required",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":30}"#,
                        EXPIRE
                    )
                ),
                "at least 90",
            ),
            (
                format!(
                    r#"{{"rules":[{}]}}"#,
                    rule(
                        1,
                        r#"{"tagStatus":"any","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90}"#,
                        EXPIRE
                    )
                ),
                "storageClass archive is required",
            ),
        ] {
            let m = msg(&text);
            assert!(
                m.starts_with("Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: "),
                "{m}"
            );
            assert!(m.contains(want), "{text}: {m}");
        }
    }

    #[test]
    fn rules_claim_images_in_priority_order() {
        let p = LifecyclePolicy::parse(&format!(
            r#"{{"rules":[{},{},{}]}}"#,
            rule(
                3,
                r#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":10}"#,
                EXPIRE
            ),
            rule(
                1,
                r#"{"tagStatus":"tagged","tagPrefixList":["prod"],"countType":"imageCountMoreThan","countNumber":1}"#,
                EXPIRE
            ),
            rule(
                2,
                r#"{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#,
                EXPIRE
            ),
        ))
        .unwrap();
        let now = 100 * DAY_MILLIS;
        let tags = |t: &[&str]| t.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let t = [
            tags(&["prod-1"]),
            tags(&["prod-2"]),
            tags(&[]),
            tags(&[]),
            tags(&["dev"]),
            tags(&["dev"]),
        ];
        let ages = [50, 40, 5, 0, 30, 3];
        let images: Vec<Candidate> = (0..6)
            .map(|i| Candidate {
                digest: "d",
                tags: &t[i],
                pushed_at: now - ages[i] * DAY_MILLIS,
                last_pulled_at: None,
                archived_at: None,
            })
            .collect();
        let got: Vec<(usize, i64)> = p
            .evaluate(&images, now)
            .iter()
            .map(|s| (s.index, s.priority))
            .collect();
        // prod-1 (older of two prod), the 5-day-old untagged one, the 30-day-old dev one: the
        // old prod-2 is kept by rule 1 and never reaches rule 3.
        assert_eq!(got, vec![(0, 1), (2, 2), (4, 3)]);
    }

    #[test]
    fn patterns_and_prefixes_need_every_entry() {
        let tags = vec!["prod-1".to_owned(), "release".to_owned()];
        assert!(TagSelection::Patterns(vec!["prod*".into(), "rel*".into()]).matches(&tags));
        assert!(!TagSelection::Patterns(vec!["prod*".into(), "beta".into()]).matches(&tags));
        assert!(TagSelection::Prefixes(vec!["prod".into()]).matches(&tags));
        assert!(!TagSelection::Prefixes(vec!["dev".into()]).matches(&tags));
        assert!(!TagSelection::Untagged.matches(&tags));
    }
}
