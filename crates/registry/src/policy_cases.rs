//! The evaluation suite: policies x requests -> allow or deny, each case taken from AWS's
//! documentation of policy evaluation logic, condition operators and ECR's policy examples
//! (the URL of its source beside every case). Account `111122223333` owns the repository
//! `project-a/app` in us-west-2; `444455556666` is another account. Context values are given
//! per case, as the server would build them from the request.

use crate::condition::Context;
use crate::policy::{Outcome, Policy, Request, decide};

const EVAL: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html";
const CROSS: &str = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html";
const OPS: &str = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html";
const MULTI: &str = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-single-vs-multi-valued-context-keys.html";
const MULTI_EX: &str = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition_examples-multi-valued-context-keys.html";
const GLOBAL: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html";
const DENY_IP: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_examples_aws_deny-ip.html";
const NOT_ACTION: &str =
    "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html";
const NOT_PRINCIPAL: &str = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html";
const ECR_REPO: &str =
    "https://docs.aws.amazon.com/AmazonECR/latest/userguide/repository-policy-examples.html";
const ECR_ID: &str = "https://docs.aws.amazon.com/AmazonECR/latest/userguide/security_iam_id-based-policy-examples.html";
const ECR_TAGS: &str =
    "https://docs.aws.amazon.com/AmazonECR/latest/userguide/ecr-supported-iam-actions-tagging.html";

const REPO: &str = "arn:aws:ecr:us-west-2:111122223333:repository/project-a/app";
const OTHER_REPO: &str = "arn:aws:ecr:us-west-2:111122223333:repository/project-b/app";

struct Case {
    source: &'static str,
    /// What the case checks, for the failure message.
    what: &'static str,
    identity: Option<&'static str>,
    repository: Option<&'static str>,
    principal: &'static str,
    action: &'static str,
    resource: &'static str,
    context: &'static [(&'static str, &'static [&'static str])],
    expect: Outcome,
}

use Outcome::{Allow, ExplicitDeny as Deny, ImplicitDeny as Implicit};

const USER: &str = "arn:aws:iam::111122223333:user/dev";
const OTHER_USER: &str = "arn:aws:iam::444455556666:user/ci";

const PULL_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchCheckLayerAvailability","ecr:GetDownloadUrlForLayer","ecr:BatchGetImage","ecr:DescribeImages","ecr:ListImages"],"Resource":"*"}]}"#;
const PUSH_TEAM_A: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:CompleteLayerUpload","ecr:UploadLayerPart","ecr:InitiateLayerUpload","ecr:BatchCheckLayerAvailability","ecr:PutImage"],"Resource":"arn:aws:ecr:us-west-2:111122223333:repository/project-a/*"}]}"#;
const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
const DENY_DELETE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Effect":"Deny","Action":["ecr:DeleteRepository","ecr:BatchDeleteImage"],"Resource":"*"}]}"#;
const REPO_PUSH_PULL_USERS: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowPushPull","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:user/push-pull-user-1","arn:aws:iam::111122223333:user/push-pull-user-2"]},"Action":["ecr:BatchGetImage","ecr:BatchCheckLayerAvailability","ecr:CompleteLayerUpload","ecr:GetDownloadUrlForLayer","ecr:InitiateLayerUpload","ecr:PutImage","ecr:UploadLayerPart"]}]}"#;
const REPO_CROSS_PUSH: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowCrossAccountPush","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["ecr:BatchCheckLayerAvailability","ecr:CompleteLayerUpload","ecr:InitiateLayerUpload","ecr:PutImage","ecr:UploadLayerPart"]}]}"#;
const REPO_DENY_ALL_OTHERS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}"#;
const REPO_IP: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"IPAllow","Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}}]}"#;
const DENY_NOT_IP: &str = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}}}"#;
const REPO_HTTPS_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},{"Effect":"Deny","Principal":"*","Action":"ecr:*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
const ORG_ACCOUNT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage","Condition":{"StringEquals":{"aws:PrincipalAccount":"444455556666"}}}]}"#;
const PRINCIPAL_ARN_LIKE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::444455556666:user/ci*"}}}]}"#;
const PRINCIPAL_ARN_NOT_EQUALS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/release"}}}]}"#;
const TAG_TEAM_MATCH: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"ecr:ResourceTag/team":"${aws:PrincipalTag/team}"}}}]}"#;
const RESOURCE_TAG_DEV: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:PutImage"],"Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/environment":"dev"}}}]}"#;
const RESOURCE_TAG_IGNORE_CASE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"ecr:ResourceTag/Environment":"DEV"}}}]}"#;
const PRINCIPAL_TAG_LIKE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringLike":{"aws:PrincipalTag/job-category":"iamuser-admin*"}}}]}"#;
const TAG_KEYS_ALL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:TagResource","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}}]}"#;
const TAG_KEYS_ALL_NOT_NULL: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:TagResource","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]},"Null":{"aws:TagKeys":"false"}}}]}"#;
const TAG_KEYS_ANY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:TagResource","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}}]}"#;
const DENY_TAG_KEYS_NOT_LIKE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Sid":"DenyRestrictedTags","Effect":"Deny","Action":["ecr:TagResource","ecr:UntagResource"],"Resource":"*","Condition":{"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}}}]}"#;
const REQUEST_TAG: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:CreateRepository","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":["a","b"]}}}]}"#;
const BEFORE_2030: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-04-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2030-06-30T23:59:59Z"}}}]}"#;
const EPOCH: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"DateLessThanEquals":{"aws:EpochTime":"1893456000"}}}]}"#;
const NUMERIC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:ListImages","Resource":"*","Condition":{"NumericLessThanEquals":{"s3:max-keys":"10"}}}]}"#;
const USERNAME_VAR: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:username":"dev"}}}]}"#;
const USERNAME_IF_EXISTS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImage","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:username":"dev"}}}]}"#;
const NULL_TRUE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"ecr:*","Resource":"*","Condition":{"Null":{"aws:PrincipalTag/team":"true"}}},{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#;
const NOT_ACTION_DENY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Effect":"Deny","NotAction":["ecr:Describe*","ecr:List*","ecr:BatchGetImage"],"Resource":"*"}]}"#;
const NOT_RESOURCE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","NotResource":"arn:aws:ecr:us-west-2:111122223333:repository/project-b/*"}]}"#;
const NOT_PRINCIPAL_DENY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"},{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/ci","444455556666"]},"Action":"ecr:*"}]}"#;
const STRING_NOT_EQUALS_MULTI: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Effect":"Deny","Action":"ecr:*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalTag/team":["a","b"]}}}]}"#;
const TWO_KEYS_AND: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"a","aws:PrincipalTag/role":"ci"}}}]}"#;
const QUESTION_MARK: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:BatchGetImag?","Resource":"arn:aws:ecr:us-west-2:111122223333:repository/project-?/*"}]}"#;
const IPV6: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["203.0.113.0/24","2001:DB8:1234:5678::/64"]}}}]}"#;
const ACTION_CASE: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ECR:batchgetimage","Resource":"*"}]}"#;

#[rustfmt::skip]
const CASES: &[Case] = &[
    // Evaluation logic: identity and resource policies within one account.
    Case { source: EVAL, what: "default deny: no policy allows", identity: Some(PULL_ONLY), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: EVAL, what: "identity Allow is enough in the same account", identity: Some(PULL_ONLY), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Allow },
    Case { source: EVAL, what: "resource Allow is enough in the same account", identity: Some(PULL_ONLY), repository: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/dev"},"Action":"ecr:PutImage"}]}"#), principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Allow },
    Case { source: EVAL, what: "explicit Deny in the identity policy beats its Allow", identity: Some(DENY_DELETE), repository: None, principal: USER, action: "ecr:DeleteRepository", resource: REPO, context: &[], expect: Deny },
    Case { source: EVAL, what: "Allow * of the identity policy with a Deny of other actions", identity: Some(DENY_DELETE), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Allow },
    Case { source: EVAL, what: "explicit Deny in the resource policy beats the identity Allow", identity: Some(ALLOW_ALL), repository: Some(REPO_DENY_ALL_OTHERS), principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Deny },
    Case { source: EVAL, what: "a key without identity policy is its account's administrator", identity: None, repository: None, principal: USER, action: "ecr:DeleteRepository", resource: REPO, context: &[], expect: Allow },
    Case { source: EVAL, what: "a resource Deny binds a key without identity policy too", identity: None, repository: Some(REPO_DENY_ALL_OTHERS), principal: USER, action: "ecr:ListImages", resource: REPO, context: &[], expect: Deny },
    Case { source: ECR_ID, what: "push limited to project-a/*: allowed there", identity: Some(PUSH_TEAM_A), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Allow },
    Case { source: ECR_ID, what: "push limited to project-a/*: not elsewhere", identity: Some(PUSH_TEAM_A), repository: None, principal: USER, action: "ecr:PutImage", resource: OTHER_REPO, context: &[], expect: Implicit },
    Case { source: ECR_ID, what: "push-only key cannot pull", identity: Some(PUSH_TEAM_A), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: ECR_REPO, what: "repository policy names the users who may push", identity: Some(PULL_ONLY), repository: Some(REPO_PUSH_PULL_USERS), principal: "arn:aws:iam::111122223333:user/push-pull-user-2", action: "ecr:UploadLayerPart", resource: REPO, context: &[], expect: Allow },
    Case { source: ECR_REPO, what: "a user the repository policy does not name gets only its identity rights", identity: Some(PULL_ONLY), repository: Some(REPO_PUSH_PULL_USERS), principal: USER, action: "ecr:UploadLayerPart", resource: REPO, context: &[], expect: Implicit },
    // Across accounts both sides must allow.
    Case { source: CROSS, what: "cross-account: resource Allow alone is not enough", identity: Some(PULL_ONLY), repository: Some(REPO_CROSS_PUSH), principal: OTHER_USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: CROSS, what: "cross-account: identity Allow alone is not enough", identity: Some(PUSH_TEAM_A), repository: None, principal: OTHER_USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: CROSS, what: "cross-account: both allow", identity: Some(PUSH_TEAM_A), repository: Some(REPO_CROSS_PUSH), principal: OTHER_USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Allow },
    Case { source: CROSS, what: "cross-account: a key without identity policy relies on the resource policy", identity: None, repository: Some(REPO_CROSS_PUSH), principal: OTHER_USER, action: "ecr:InitiateLayerUpload", resource: REPO, context: &[], expect: Allow },
    Case { source: CROSS, what: "cross-account: no resource policy, nothing", identity: None, repository: None, principal: OTHER_USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: CROSS, what: "cross-account: the account root in Principal covers its users", identity: Some(ALLOW_ALL), repository: Some(REPO_CROSS_PUSH), principal: OTHER_USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Implicit },
    // NotAction, NotResource, NotPrincipal.
    Case { source: NOT_ACTION, what: "Deny with NotAction spares the listed actions", identity: Some(NOT_ACTION_DENY), repository: None, principal: USER, action: "ecr:DescribeImages", resource: REPO, context: &[], expect: Allow },
    Case { source: NOT_ACTION, what: "Deny with NotAction denies everything else", identity: Some(NOT_ACTION_DENY), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Deny },
    Case { source: EVAL, what: "NotResource allows outside the excluded repositories", identity: Some(NOT_RESOURCE), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Allow },
    Case { source: EVAL, what: "NotResource does not allow the excluded repositories", identity: Some(NOT_RESOURCE), repository: None, principal: USER, action: "ecr:PutImage", resource: OTHER_REPO, context: &[], expect: Implicit },
    Case { source: NOT_PRINCIPAL, what: "Deny with NotPrincipal spares the named principal", identity: Some(ALLOW_ALL), repository: Some(NOT_PRINCIPAL_DENY), principal: OTHER_USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Allow },
    Case { source: NOT_PRINCIPAL, what: "Deny with NotPrincipal denies everyone else", identity: Some(ALLOW_ALL), repository: Some(NOT_PRINCIPAL_DENY), principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Deny },
    Case { source: EVAL, what: "Action names match case-insensitively", identity: Some(ACTION_CASE), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Allow },
    Case { source: EVAL, what: "? matches one character in Action and Resource", identity: Some(QUESTION_MARK), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Allow },
    Case { source: EVAL, what: "? does not match more than one character", identity: Some(QUESTION_MARK), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: "arn:aws:ecr:us-west-2:111122223333:repository/project-ab/app", context: &[], expect: Implicit },
    // aws:SourceIp (IpAddress / NotIpAddress).
    Case { source: DENY_IP, what: "deny outside the listed ranges: inside", identity: Some(DENY_NOT_IP), repository: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#), principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:SourceIp", &["203.0.113.7"])], expect: Allow },
    Case { source: DENY_IP, what: "deny outside the listed ranges: outside", identity: Some(DENY_NOT_IP), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:SourceIp", &["198.51.100.7"])], expect: Deny },
    Case { source: ECR_REPO, what: "repository policy denying addresses outside a range: outside", identity: None, repository: Some(REPO_IP), principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("aws:SourceIp", &["127.0.0.2"])], expect: Deny },
    Case { source: ECR_REPO, what: "repository policy denying addresses outside a range: inside", identity: None, repository: Some(REPO_IP), principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("aws:SourceIp", &["192.0.2.10"])], expect: Allow },
    Case { source: OPS, what: "NotIpAddress with no aws:SourceIp in the request is true", identity: None, repository: Some(REPO_IP), principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Deny },
    Case { source: OPS, what: "IpAddress matches an IPv6 range", identity: Some(IPV6), repository: None, principal: USER, action: "ecr:ListImages", resource: REPO, context: &[("aws:SourceIp", &["2001:db8:1234:5678::9"])], expect: Allow },
    Case { source: OPS, what: "IpAddress outside every range", identity: Some(IPV6), repository: None, principal: USER, action: "ecr:ListImages", resource: REPO, context: &[("aws:SourceIp", &["2001:db8:1234:9999::9"])], expect: Implicit },
    // aws:SecureTransport (Bool).
    Case { source: GLOBAL, what: "Bool aws:SecureTransport false denies plain HTTP", identity: None, repository: Some(REPO_HTTPS_ONLY), principal: OTHER_USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("aws:SecureTransport", &["false"])], expect: Deny },
    Case { source: GLOBAL, what: "Bool aws:SecureTransport over TLS", identity: None, repository: Some(REPO_HTTPS_ONLY), principal: OTHER_USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("aws:SecureTransport", &["true"])], expect: Allow },
    // aws:PrincipalAccount, aws:PrincipalArn (String*, Arn*).
    Case { source: GLOBAL, what: "aws:PrincipalAccount StringEquals", identity: None, repository: Some(ORG_ACCOUNT), principal: OTHER_USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Allow },
    Case { source: GLOBAL, what: "aws:PrincipalAccount of a third account", identity: None, repository: Some(ORG_ACCOUNT), principal: "arn:aws:iam::777788889999:user/ci", action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: OPS, what: "ArnLike on aws:PrincipalArn with a wildcard", identity: None, repository: Some(PRINCIPAL_ARN_LIKE), principal: "arn:aws:iam::444455556666:user/ci-runner", action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Allow },
    Case { source: OPS, what: "ArnLike is case-sensitive", identity: None, repository: Some(PRINCIPAL_ARN_LIKE), principal: "arn:aws:iam::444455556666:user/CI-runner", action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: OPS, what: "ArnNotEquals denies everyone but the release user", identity: None, repository: Some(PRINCIPAL_ARN_NOT_EQUALS), principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Deny },
    Case { source: OPS, what: "ArnNotEquals spares the release user", identity: None, repository: Some(PRINCIPAL_ARN_NOT_EQUALS), principal: "arn:aws:iam::111122223333:user/release", action: "ecr:PutImage", resource: REPO, context: &[], expect: Allow },
    // Tags: ecr:ResourceTag, aws:ResourceTag, aws:PrincipalTag, aws:RequestTag, aws:TagKeys.
    Case { source: ECR_TAGS, what: "ecr:ResourceTag equal to a literal value", identity: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"ecr:ResourceTag/team":"a"}}}]}"#), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("ecr:ResourceTag/team", &["a"])], expect: Allow },
    Case { source: ECR_TAGS, what: "ecr:ResourceTag equal to the caller's tag (policy variable)", identity: Some(TAG_TEAM_MATCH), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("ecr:ResourceTag/team", &["a"]), ("aws:PrincipalTag/team", &["a"])], expect: Allow },
    Case { source: ECR_TAGS, what: "ecr:ResourceTag with another value", identity: Some(TAG_TEAM_MATCH), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("ecr:ResourceTag/team", &["b"]), ("aws:PrincipalTag/team", &["a"])], expect: Implicit },
    Case { source: GLOBAL, what: "aws:ResourceTag StringEquals is case-sensitive in the value", identity: Some(RESOURCE_TAG_DEV), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("aws:ResourceTag/environment", &["Dev"])], expect: Implicit },
    Case { source: GLOBAL, what: "aws:ResourceTag StringEquals", identity: Some(RESOURCE_TAG_DEV), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("aws:ResourceTag/environment", &["dev"])], expect: Allow },
    Case { source: OPS, what: "StringEqualsIgnoreCase; condition key names are case-insensitive", identity: Some(RESOURCE_TAG_IGNORE_CASE), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("ECR:resourcetag/environment", &["dev"])], expect: Allow },
    Case { source: GLOBAL, what: "untagged repository: a tag condition does not match", identity: Some(RESOURCE_TAG_DEV), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: OPS, what: "StringLike on aws:PrincipalTag", identity: Some(PRINCIPAL_TAG_LIKE), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:PrincipalTag/job-category", &["iamuser-admin-2"])], expect: Allow },
    Case { source: OPS, what: "StringLike is case-sensitive", identity: Some(PRINCIPAL_TAG_LIKE), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:PrincipalTag/job-category", &["IAMUSER-admin"])], expect: Implicit },
    Case { source: OPS, what: "several keys in a block must all match (one fails)", identity: Some(TWO_KEYS_AND), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:PrincipalTag/team", &["a"]), ("aws:PrincipalTag/role", &["dev"])], expect: Implicit },
    Case { source: OPS, what: "several keys in a block must all match (both do)", identity: Some(TWO_KEYS_AND), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:PrincipalTag/team", &["a"]), ("aws:PrincipalTag/role", &["ci"])], expect: Allow },
    Case { source: OPS, what: "StringNotEquals with several values: none may match (one does)", identity: Some(STRING_NOT_EQUALS_MULTI), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:PrincipalTag/team", &["b"])], expect: Allow },
    Case { source: OPS, what: "StringNotEquals with several values: none may match (none does)", identity: Some(STRING_NOT_EQUALS_MULTI), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:PrincipalTag/team", &["c"])], expect: Deny },
    Case { source: OPS, what: "StringNotEquals with the key missing is true", identity: Some(STRING_NOT_EQUALS_MULTI), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Deny },
    Case { source: GLOBAL, what: "aws:RequestTag with either listed value", identity: Some(REQUEST_TAG), repository: None, principal: USER, action: "ecr:CreateRepository", resource: REPO, context: &[("aws:RequestTag/team", &["b"])], expect: Allow },
    Case { source: GLOBAL, what: "aws:RequestTag absent", identity: Some(REQUEST_TAG), repository: None, principal: USER, action: "ecr:CreateRepository", resource: REPO, context: &[], expect: Implicit },
    Case { source: MULTI, what: "ForAllValues: every tag key listed", identity: Some(TAG_KEYS_ALL), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[("aws:TagKeys", &["environment", "cost-center"])], expect: Allow },
    Case { source: MULTI, what: "ForAllValues: one tag key not listed", identity: Some(TAG_KEYS_ALL), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[("aws:TagKeys", &["environment", "owner"])], expect: Implicit },
    Case { source: MULTI, what: "ForAllValues with the key missing is true", identity: Some(TAG_KEYS_ALL), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[], expect: Allow },
    Case { source: MULTI, what: "ForAllValues with Null false refuses a missing key", identity: Some(TAG_KEYS_ALL_NOT_NULL), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[], expect: Implicit },
    Case { source: MULTI, what: "ForAnyValue: one tag key listed", identity: Some(TAG_KEYS_ANY), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[("aws:TagKeys", &["owner", "cost-center"])], expect: Allow },
    Case { source: MULTI, what: "ForAnyValue with the key missing is false", identity: Some(TAG_KEYS_ANY), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[], expect: Implicit },
    Case { source: MULTI_EX, what: "ForAllValues:StringNotLike key1*: key1:legal does not match the Deny", identity: Some(DENY_TAG_KEYS_NOT_LIKE), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[("aws:TagKeys", &["key1:legal"])], expect: Allow },
    Case { source: MULTI_EX, what: "ForAllValues:StringNotLike key1*: key1:hr, key1:personnel do not match", identity: Some(DENY_TAG_KEYS_NOT_LIKE), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[("aws:TagKeys", &["key1:hr", "key1:personnel"])], expect: Allow },
    Case { source: MULTI_EX, what: "ForAllValues:StringNotLike key1*: key2:audit matches the Deny", identity: Some(DENY_TAG_KEYS_NOT_LIKE), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[("aws:TagKeys", &["key2:audit"])], expect: Deny },
    Case { source: MULTI_EX, what: "ForAllValues:StringNotLike key1*: no aws:TagKeys matches the Deny", identity: Some(DENY_TAG_KEYS_NOT_LIKE), repository: None, principal: USER, action: "ecr:TagResource", resource: REPO, context: &[], expect: Deny },
    // Date*, Numeric*, IfExists, Null.
    Case { source: OPS, what: "DateGreaterThan and DateLessThan bracket aws:CurrentTime (inside)", identity: Some(BEFORE_2030), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:CurrentTime", &["2026-12-07T01:00:00Z"])], expect: Allow },
    Case { source: OPS, what: "DateGreaterThan and DateLessThan bracket aws:CurrentTime (after)", identity: Some(BEFORE_2030), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:CurrentTime", &["2031-01-01T00:00:00Z"])], expect: Implicit },
    Case { source: OPS, what: "Date operators read epoch seconds (aws:EpochTime)", identity: Some(EPOCH), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:EpochTime", &["1765069200"])], expect: Allow },
    Case { source: OPS, what: "Date operators read epoch seconds: later", identity: Some(EPOCH), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:EpochTime", &["1893456001"])], expect: Implicit },
    Case { source: OPS, what: "NumericLessThanEquals within bound", identity: Some(NUMERIC), repository: None, principal: USER, action: "ecr:ListImages", resource: REPO, context: &[("s3:max-keys", &["10"])], expect: Allow },
    Case { source: OPS, what: "NumericLessThanEquals past bound", identity: Some(NUMERIC), repository: None, principal: USER, action: "ecr:ListImages", resource: REPO, context: &[("s3:max-keys", &["11"])], expect: Implicit },
    Case { source: GLOBAL, what: "aws:username of an IAM user", identity: Some(USERNAME_VAR), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:username", &["dev"])], expect: Allow },
    Case { source: OPS, what: "a positive operator on a missing key is false", identity: Some(USERNAME_VAR), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Implicit },
    Case { source: OPS, what: "...IfExists on a missing key is true", identity: Some(USERNAME_IF_EXISTS), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[], expect: Allow },
    Case { source: OPS, what: "...IfExists on a present key compares", identity: Some(USERNAME_IF_EXISTS), repository: None, principal: USER, action: "ecr:BatchGetImage", resource: REPO, context: &[("aws:username", &["someone"])], expect: Implicit },
    Case { source: OPS, what: "Null true: the key is missing", identity: Some(NULL_TRUE), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Deny },
    Case { source: OPS, what: "Null true: the key is present", identity: Some(NULL_TRUE), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[("aws:PrincipalTag/team", &["a"])], expect: Allow },
    Case { source: GLOBAL, what: "an unknown key behaves as one missing from the request", identity: Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":{"StringEquals":{"aws:NoSuchKey":"x"}}}]}"#), repository: None, principal: USER, action: "ecr:PutImage", resource: REPO, context: &[], expect: Implicit },
];

fn account_of(arn: &str) -> &str {
    arn.split(':').nth(4).unwrap_or_default()
}

#[test]
fn documented_cases() {
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        let identity = c.identity.map(|t| Policy::parse_identity(t).expect(c.what));
        let repository = c.repository.map(|t| Policy::parse(t, false).expect(c.what));
        // The principal keys every signed request carries (see `access::context`).
        let mut ctx = Context::default();
        ctx.set("aws:PrincipalArn", c.principal)
            .set("aws:PrincipalAccount", account_of(c.principal));
        for (k, v) in c.context {
            ctx.set_all(k, v.iter().map(|s| (*s).to_owned()).collect());
        }
        let req = Request {
            principal_arn: c.principal,
            principal_account: account_of(c.principal),
            action: c.action,
            resource_arn: c.resource,
            context: &ctx,
        };
        let same = account_of(c.principal) == account_of(c.resource);
        let got = decide(
            identity.as_ref(),
            &repository.iter().collect::<Vec<_>>(),
            &req,
            same,
        );
        if got != c.expect {
            failures.push(format!(
                "case {i} ({}): {}: expected {:?}, got {got:?}",
                c.source, c.what, c.expect
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
