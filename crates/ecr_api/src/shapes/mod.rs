//! Shapes generated from botocore's models by `crates/ecr_codegen` (one module per service),
//! and the hand-written pieces they use: the blob and timestamp types, and the checks their
//! `validate()` calls, which word a broken constraint as ECR does.

#[rustfmt::skip]
pub mod ecr_public;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ApiError;

/// A timestamp: epoch seconds as a JSON number, as awsJson 1.1 sends them.
pub type Timestamp = f64;

/// A blob member: base64 text on the wire, its bytes here. Text that is not base64 is a
/// SerializationException, as any body that does not fit its shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64_simd::STANDARD.encode_to_string(&self.0))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(d)?;
        base64_simd::STANDARD
            .decode_to_vec(text.as_bytes())
            .map(Blob)
            .map_err(|_| serde::de::Error::custom("Invalid base64"))
    }
}

/// An optional string borrowed from the input where it can be (see `dto::borrowed_str`).
pub(crate) fn borrowed_text<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'de, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'de>>::deserialize(d)?.map(|t| t.0))
}

/// The first constraint of the model a request breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The member's path: `catalogData.description`, `tags.member.Key`, `layerDigests.member`.
    pub path: String,
    /// ECR's text for the constraint, e.g. `Member must not be null`.
    pub constraint: String,
    /// Tag keys and values answer InvalidTagParameterException.
    pub tag: bool,
}

impl From<Violation> for ApiError {
    fn from(v: Violation) -> Self {
        let message = format!(
            "Invalid parameter at '{}' failed to satisfy constraint: '{}'",
            v.path, v.constraint
        );
        if v.tag {
            ApiError::InvalidTagParameter(message)
        } else {
            ApiError::InvalidParameter(message)
        }
    }
}

/// The checks generated `validate()`s call. A path is only built when a check fails.
pub mod check {
    use regex_lite::Regex;

    use super::Violation;

    fn fail(at: &str, member: &str, constraint: String, tag: bool) -> Violation {
        Violation {
            path: format!("{at}{member}"),
            constraint,
            tag,
        }
    }

    /// The prefix for the members of a nested structure.
    pub fn nested(at: &str, member: &str) -> String {
        format!("{at}{member}.")
    }

    /// A string's length as the service counts it: UTF-16 code units (Java's `length()`).
    pub fn text_len(s: &str) -> usize {
        s.encode_utf16().count()
    }

    pub fn required(present: bool, at: &str, member: &str) -> Result<(), Violation> {
        if present {
            Ok(())
        } else {
            Err(fail(at, member, "Member must not be null".into(), false))
        }
    }

    pub fn min_len(
        len: usize,
        min: i64,
        at: &str,
        member: &str,
        tag: bool,
    ) -> Result<(), Violation> {
        if (len as i64) < min {
            return Err(fail(
                at,
                member,
                format!("Member must have length greater than or equal to {min}"),
                tag,
            ));
        }
        Ok(())
    }

    pub fn max_len(
        len: usize,
        max: i64,
        at: &str,
        member: &str,
        tag: bool,
    ) -> Result<(), Violation> {
        if (len as i64) > max {
            return Err(fail(
                at,
                member,
                format!("Member must have length less than or equal to {max}"),
                tag,
            ));
        }
        Ok(())
    }

    pub fn min_value(v: i64, min: i64, at: &str, member: &str) -> Result<(), Violation> {
        if v < min {
            return Err(fail(
                at,
                member,
                format!("Member must have value greater than or equal to {min}"),
                false,
            ));
        }
        Ok(())
    }

    pub fn max_value(v: i64, max: i64, at: &str, member: &str) -> Result<(), Violation> {
        if v > max {
            return Err(fail(
                at,
                member,
                format!("Member must have value less than or equal to {max}"),
                false,
            ));
        }
        Ok(())
    }

    /// `quoted` is the model's pattern as written, which ECR quotes in its message.
    pub fn pattern(
        v: &str,
        re: &Regex,
        quoted: &str,
        at: &str,
        member: &str,
        tag: bool,
    ) -> Result<(), Violation> {
        if re.is_match(v) {
            return Ok(());
        }
        Err(fail(
            at,
            member,
            format!("must satisfy regular expression '{quoted}'"),
            tag,
        ))
    }

    pub fn one_of(v: &str, values: &[&str], at: &str, member: &str) -> Result<(), Violation> {
        if values.contains(&v) {
            return Ok(());
        }
        Err(fail(
            at,
            member,
            format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            ),
            false,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::ecr_public::{self as p, Operation, Request};
    use super::*;

    fn violation(op: Operation, body: &str) -> Violation {
        Request::decode(op, body.as_bytes())
            .expect("decodes")
            .validate()
            .expect_err("violates")
    }

    #[test]
    fn operations_round_trip_by_name() {
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(op));
        }
        assert_eq!(Operation::from_name("BatchGetImage"), None);
        assert_eq!(Operation::from_name("GetDownloadUrlForLayer"), None);
        assert_eq!(p::TARGET_PREFIX, "SpencerFrontendService");
        assert_eq!(p::SIGNING_NAME, "ecr-public");
    }

    #[test]
    fn required_then_length_then_pattern() {
        let v = violation(Operation::CreateRepository, "{}");
        assert_eq!(v.path, "repositoryName");
        assert_eq!(v.constraint, "Member must not be null");
        let v = violation(Operation::CreateRepository, r#"{"repositoryName":"a"}"#);
        assert_eq!(
            v.constraint,
            "Member must have length greater than or equal to 2"
        );
        let long = "a".repeat(206);
        let v = violation(
            Operation::CreateRepository,
            &format!(r#"{{"repositoryName":"{long}"}}"#),
        );
        assert_eq!(
            v.constraint,
            "Member must have length less than or equal to 205"
        );
        let v = violation(Operation::CreateRepository, r#"{"repositoryName":"a__b"}"#);
        assert_eq!(
            v.constraint,
            format!(
                "must satisfy regular expression '{}'",
                model::RepositoryName::PATTERN
            )
        );
        // 205 is fine, and the pattern is anchored both ends.
        let ok = "a".repeat(205);
        assert!(
            Request::decode(
                Operation::CreateRepository,
                format!(r#"{{"repositoryName":"{ok}"}}"#).as_bytes()
            )
            .unwrap()
            .validate()
            .is_ok()
        );
        violation(Operation::CreateRepository, r#"{"repositoryName":"app/"}"#);
    }

    #[test]
    fn nested_members_have_dotted_paths() {
        let v = violation(
            Operation::PutRepositoryCatalogData,
            &format!(
                r#"{{"repositoryName":"app","catalogData":{{"description":"{}"}}}}"#,
                "d".repeat(1025)
            ),
        );
        assert_eq!(v.path, "catalogData.description");
        let v = violation(
            Operation::PutRepositoryCatalogData,
            r#"{"repositoryName":"app","catalogData":{"architectures":[""]}}"#,
        );
        assert_eq!(v.path, "catalogData.architectures.member");
        assert_eq!(
            v.constraint,
            "Member must have length greater than or equal to 1"
        );
    }

    #[test]
    fn tag_members_are_tag_violations() {
        let arn = "arn:aws:ecr-public::123456789012:repository/app";
        let v = violation(
            Operation::TagResource,
            &format!(r#"{{"resourceArn":"{arn}","tags":[{{"Key":"","Value":"v"}}]}}"#),
        );
        assert_eq!(v.path, "tags.member.Key");
        assert!(v.tag);
        let v = violation(
            Operation::UntagResource,
            &format!(
                r#"{{"resourceArn":"{arn}","tagKeys":["{}"]}}"#,
                "k".repeat(129)
            ),
        );
        assert_eq!(v.path, "tagKeys.member");
        assert!(v.tag);
    }

    #[test]
    fn ranges_and_logo_size() {
        let v = violation(Operation::DescribeRegistries, r#"{"maxResults":0}"#);
        assert_eq!(
            v.constraint,
            "Member must have value greater than or equal to 1"
        );
        let v = violation(
            Operation::DescribeRegistries,
            r#"{"maxResults":5000000000}"#,
        );
        assert_eq!(
            v.constraint,
            "Member must have value less than or equal to 1000"
        );
        let logo = base64_simd::STANDARD.encode_to_string(vec![0u8; 512_001]);
        let v = violation(
            Operation::PutRepositoryCatalogData,
            &format!(r#"{{"repositoryName":"app","catalogData":{{"logoImageBlob":"{logo}"}}}}"#),
        );
        assert_eq!(v.path, "catalogData.logoImageBlob");
        assert_eq!(
            v.constraint,
            "Member must have length less than or equal to 512000"
        );
    }

    #[test]
    fn bad_base64_does_not_decode() {
        assert!(
            Request::decode(
                Operation::PutRepositoryCatalogData,
                br#"{"repositoryName":"app","catalogData":{"logoImageBlob":"%%%"}}"#
            )
            .is_err()
        );
    }

    #[test]
    fn enums_parse_their_values() {
        assert_eq!(
            p::RegistryAliasStatus::parse("ACTIVE"),
            Some(p::RegistryAliasStatus::Active)
        );
        assert_eq!(p::RegistryAliasStatus::Active.as_str(), "ACTIVE");
        assert_eq!(p::LayerAvailability::VALUES, ["AVAILABLE", "UNAVAILABLE"]);
        assert_eq!(p::RegistryAliasStatus::parse("active"), None);
    }

    #[test]
    fn layer_part_blob_is_borrowed() {
        let body = br#"{"repositoryName":"app","layerPartBlob":"QUJD"}"#;
        match Request::decode(Operation::UploadLayerPart, body).unwrap() {
            Request::UploadLayerPart(r) => {
                assert!(matches!(r.layer_part_blob, Some(Cow::Borrowed("QUJD"))));
            }
            other => panic!("{other:?}"),
        }
    }
}
