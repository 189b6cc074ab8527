//! IAM policies: resource policies (repository and registry policies, ecr-api.md section
//! 3.3) and identity policies (per access key), parsed with validation, and AWS's policy
//! evaluation logic across them ([`decide`]).
//!
//! The rules, from the IAM User Guide ("Policy evaluation logic", "Cross-account policy
//! evaluation logic"): an explicit Deny in any policy wins; within one account an Allow in
//! either the identity policy or a resource policy is enough; across accounts both the
//! caller's identity policy and the resource's policy must allow. A key configured without
//! an identity policy is its account's administrator (as berth was before identity policies):
//! its identity side allows everything.

use model::Service;
use serde_json::Value;

use crate::condition::{Condition, Context, glob};

/// The largest policy text ECR accepts.
pub const MAX_POLICY_CHARS: usize = 10_240;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// A list of patterns, or its negation (`NotPrincipal`, `NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Matcher {
    Any(Vec<String>),
    Not(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    /// `None` in an identity policy: the principal is the key the policy is attached to.
    principal: Option<Matcher>,
    action: Matcher,
    /// `None` in a repository policy: the repository is implied.
    resource: Option<Matcher>,
    condition: Option<Condition>,
}

/// What kind of policy a text is, which decides the elements its statements need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Repository,
    Registry,
    Identity,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    statements: Vec<Statement>,
}

/// What a policy says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    ExplicitDeny,
    Allow,
    NotMentioned,
}

/// Who is asking for what, on which resource ARN, with the request's condition keys.
pub struct Request<'a> {
    pub principal_arn: &'a str,
    pub principal_account: &'a str,
    pub action: &'a str,
    pub resource_arn: &'a str,
    pub context: &'a Context,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    /// No policy allowed the request (AccessDenied "because no ... policy allows").
    ImplicitDeny,
    /// A statement denied it (AccessDenied "with an explicit deny").
    ExplicitDeny,
}

/// AWS's evaluation logic for one request: `identity` is the caller's identity policy (`None`:
/// a key without one, which may do anything its resource policies do not deny), `resource`
/// the resource-based policies that apply (repository, registry), `same_account` whether the
/// caller belongs to the account that owns the resource.
pub fn decide(
    identity: Option<&Policy>,
    resource: &[&Policy],
    req: &Request<'_>,
    same_account: bool,
) -> Outcome {
    let identity = identity.map_or(Decision::Allow, |p| p.evaluate(req));
    let resources: Vec<Decision> = resource.iter().map(|p| p.evaluate(req)).collect();
    if identity == Decision::ExplicitDeny || resources.contains(&Decision::ExplicitDeny) {
        return Outcome::ExplicitDeny;
    }
    let resource_allows = resources.contains(&Decision::Allow);
    let identity_allows = identity == Decision::Allow;
    let allowed = if same_account {
        identity_allows || resource_allows
    } else {
        identity_allows && resource_allows
    };
    if allowed {
        Outcome::Allow
    } else {
        Outcome::ImplicitDeny
    }
}

fn strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{what} must be strings"))
            })
            .collect(),
        _ => Err(format!(
            "{what} must be a string or a non-empty list of strings"
        )),
    }
}

fn principals(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) if s == "*" => Ok(vec!["*".into()]),
        Value::Object(m) => {
            let mut out = Vec::new();
            for (kind, ids) in m {
                match kind.as_str() {
                    "AWS" => out.extend(strings(ids, "Principal.AWS")?),
                    // Service principals never sign requests to berth; keep them, matching nothing.
                    "Service" | "Federated" | "CanonicalUser" => {
                        strings(ids, "Principal")?;
                    }
                    other => return Err(format!("unknown principal type '{other}'")),
                }
            }
            Ok(out)
        }
        _ => Err("Principal must be \"*\" or an object such as {\"AWS\": ...}".into()),
    }
}

fn matcher(
    stmt: &serde_json::Map<String, Value>,
    key: &str,
    not_key: &str,
    parse: impl Fn(&Value) -> Result<Vec<String>, String>,
) -> Result<Option<Matcher>, String> {
    match (stmt.get(key), stmt.get(not_key)) {
        (Some(_), Some(_)) => Err(format!("a statement cannot have both {key} and {not_key}")),
        (Some(v), None) => Ok(Some(Matcher::Any(parse(v)?))),
        (None, Some(v)) => Ok(Some(Matcher::Not(parse(v)?))),
        (None, None) => Ok(None),
    }
}

impl Policy {
    /// Parses and validates a policy of the private registry (`ecr:` actions).
    pub fn parse(text: &str, registry: bool) -> Result<Self, String> {
        Self::parse_for(Service::Private, text, registry)
    }

    /// Parses and validates a policy of `service`, whose actions it must name (`ecr:*` in
    /// ECR, `ecr-public:*` in ECR Public: the policy language is the same). `registry`
    /// policies name resources; repository policies must not (the repository is implied).
    pub fn parse_for(service: Service, text: &str, registry: bool) -> Result<Self, String> {
        let kind = if registry {
            Kind::Registry
        } else {
            Kind::Repository
        };
        Self::parse_kind(Some(service), kind, text)
    }

    /// Parses and validates an identity policy (attached to an access key): no `Principal`,
    /// a `Resource` in every statement, actions of any service (`ecr:*`, `ecr-public:*`,
    /// `sts:GetServiceBearerToken`, ...).
    pub fn parse_identity(text: &str) -> Result<Self, String> {
        Self::parse_kind(None, Kind::Identity, text)
    }

    fn parse_kind(service: Option<Service>, kind: Kind, text: &str) -> Result<Self, String> {
        let prefix = service.map(|s| format!("{}:", s.action_prefix()));
        if text.chars().count() > MAX_POLICY_CHARS {
            return Err(format!(
                "the policy is longer than {MAX_POLICY_CHARS} characters"
            ));
        }
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let doc = v.as_object().ok_or("the policy must be a JSON object")?;
        match doc.get("Version").and_then(Value::as_str) {
            Some("2012-10-17" | "2008-10-17") => {}
            _ => return Err("Version must be \"2012-10-17\" or \"2008-10-17\"".into()),
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(s)) => s.clone(),
            Some(s @ Value::Object(_)) => vec![s.clone()],
            _ => return Err("Statement must be an object or a list of objects".into()),
        };
        if statements.is_empty() {
            return Err("Statement must not be empty".into());
        }
        let mut out = Vec::with_capacity(statements.len());
        for s in &statements {
            let s = s.as_object().ok_or("each statement must be an object")?;
            for k in s.keys() {
                if !matches!(
                    k.as_str(),
                    "Sid"
                        | "Effect"
                        | "Principal"
                        | "NotPrincipal"
                        | "Action"
                        | "NotAction"
                        | "Resource"
                        | "NotResource"
                        | "Condition"
                ) {
                    return Err(format!("unknown statement element '{k}'"));
                }
            }
            let effect = match s.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err("Effect must be \"Allow\" or \"Deny\"".into()),
            };
            let principal = matcher(s, "Principal", "NotPrincipal", principals)?;
            match (kind, &principal) {
                (Kind::Identity, Some(_)) => {
                    return Err("an identity policy statement cannot name a Principal".into());
                }
                (Kind::Repository | Kind::Registry, None) => {
                    return Err("a resource policy statement needs a Principal".into());
                }
                _ => {}
            }
            let action = matcher(s, "Action", "NotAction", |v| strings(v, "Action"))?
                .ok_or("a statement needs an Action")?;
            let (Matcher::Any(actions) | Matcher::Not(actions)) = &action;
            for a in actions {
                match &prefix {
                    Some(prefix) => {
                        if a != "*" && !a.to_ascii_lowercase().starts_with(prefix) {
                            return Err(format!("action '{a}' is not an {prefix} action"));
                        }
                    }
                    None => {
                        if a != "*"
                            && !a
                                .split_once(':')
                                .is_some_and(|(svc, op)| !svc.is_empty() && !op.is_empty())
                        {
                            return Err(format!("action '{a}' is not of the form service:Action"));
                        }
                    }
                }
            }
            let resource = matcher(s, "Resource", "NotResource", |v| strings(v, "Resource"))?;
            match (kind, &resource) {
                (Kind::Registry, None) => {
                    return Err("a registry policy statement needs a Resource".into());
                }
                (Kind::Identity, None) => {
                    return Err("an identity policy statement needs a Resource".into());
                }
                (Kind::Repository, Some(_)) => {
                    return Err("a repository policy statement cannot name a Resource (the repository is implied)".into());
                }
                _ => {}
            }
            let condition = s.get("Condition").map(Condition::parse).transpose()?;
            out.push(Statement {
                effect,
                principal,
                action,
                resource,
                condition,
            });
        }
        Ok(Self { statements: out })
    }

    pub fn evaluate(&self, req: &Request<'_>) -> Decision {
        let mut allowed = false;
        for s in &self.statements {
            // Action names are case-insensitive, resource ARNs case-sensitive (IAM's rules).
            let applies = s
                .principal
                .as_ref()
                .is_none_or(|m| m.matches(|p| principal_matches(p, req)))
                && s.action
                    .matches(|a| glob(&a.to_ascii_lowercase(), &req.action.to_ascii_lowercase()))
                && s.resource
                    .as_ref()
                    .is_none_or(|r| r.matches(|p| glob(p, req.resource_arn)))
                && s.condition.as_ref().is_none_or(|c| c.holds(req.context));
            match (applies, &s.effect) {
                (true, Effect::Deny) => return Decision::ExplicitDeny,
                (true, Effect::Allow) => allowed = true,
                _ => {}
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::NotMentioned
        }
    }
}

impl Matcher {
    fn matches(&self, f: impl Fn(&str) -> bool) -> bool {
        match self {
            Matcher::Any(items) => items.iter().any(|i| f(i)),
            Matcher::Not(items) => !items.iter().any(|i| f(i)),
        }
    }
}

/// `*`, an account id, the account's root ARN (all of its principals), or one principal's ARN.
fn principal_matches(p: &str, req: &Request<'_>) -> bool {
    p == "*"
        || p == req.principal_account
        || p == format!("arn:aws:iam::{}:root", req.principal_account)
        || p == req.principal_arn
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(arn: &'a str, account: &'a str, action: &'a str) -> Request<'a> {
        Request {
            principal_arn: arn,
            principal_account: account,
            action,
            resource_arn: "arn:aws:ecr:us-east-1:000000000000:repository/team/app",
            context: Box::leak(Box::default()),
        }
    }

    const PULL_FOR_B: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow",
        "Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#;

    #[test]
    fn allow_deny_and_silence() {
        let p = Policy::parse(PULL_FOR_B, false).unwrap();
        let b = "arn:aws:iam::111111111111:user/ci";
        assert_eq!(
            p.evaluate(&req(b, "111111111111", "ecr:BatchGetImage")),
            Decision::Allow
        );
        assert_eq!(
            p.evaluate(&req(b, "111111111111", "ecr:PutImage")),
            Decision::NotMentioned
        );
        assert_eq!(
            p.evaluate(&req(
                "arn:aws:iam::222222222222:root",
                "222222222222",
                "ecr:BatchGetImage"
            )),
            Decision::NotMentioned
        );

        let deny = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Principal":"*","Action":"ecr:*"},
                {"Effect":"Deny","Principal":{"AWS":["arn:aws:iam::111111111111:user/ci"]},"Action":"ecr:Batch*"}]}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            deny.evaluate(&req(b, "111111111111", "ecr:BatchGetImage")),
            Decision::ExplicitDeny
        );
        assert_eq!(
            deny.evaluate(&req(b, "111111111111", "ecr:DescribeImages")),
            Decision::Allow
        );
        let not_action = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"111111111111"},"NotAction":"ecr:Describe*"}}"#,
            false,
        )
        .unwrap();
        assert_eq!(
            not_action.evaluate(&req("arn:aws:iam::3:root", "333333333333", "ecr:PutImage")),
            Decision::ExplicitDeny
        );
        assert_eq!(
            not_action.evaluate(&req(
                "arn:aws:iam::3:root",
                "333333333333",
                "ecr:DescribeImages"
            )),
            Decision::NotMentioned
        );
        assert_eq!(
            not_action.evaluate(&req(b, "111111111111", "ecr:PutImage")),
            Decision::NotMentioned
        );
    }

    #[test]
    fn registry_policies_match_resources_and_unknown_condition_keys_never_hold() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},
                "Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:000000000000:repository/team/*"},
               {"Effect":"Allow","Principal":"*","Action":"ecr:PutImage","Resource":"*","Condition":{"StringEquals":{"aws:x":"y"}}}]}"#,
            true,
        )
        .unwrap();
        assert_eq!(
            p.evaluate(&req(
                "arn:aws:iam::111111111111:root",
                "111111111111",
                "ecr:ListImages"
            )),
            Decision::Allow
        );
        let mut other = req(
            "arn:aws:iam::111111111111:root",
            "111111111111",
            "ecr:ListImages",
        );
        other.resource_arn = "arn:aws:ecr:us-east-1:000000000000:repository/other/app";
        assert_eq!(p.evaluate(&other), Decision::NotMentioned);
        assert_eq!(
            p.evaluate(&req("x", "222222222222", "ecr:PutImage")),
            Decision::NotMentioned,
            "an Allow conditioned on a key the request lacks"
        );
    }

    #[test]
    fn invalid_policies_are_refused() {
        for bad in [
            "not json",
            "[]",
            r#"{"Statement":[]}"#,
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Principal":"*","Action":"ecr:*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}"#,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Bogus":1}]}"#,
        ] {
            assert!(Policy::parse(bad, false).is_err(), "{bad}");
        }
        assert!(Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#, true).is_err(), "registry statements name resources");
        assert!(Policy::parse(&" ".repeat(10_241), false).is_err());
    }

    #[test]
    fn public_repository_policies_name_ecr_public_actions() {
        let text = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":["ecr-public:PutImage","ecr-public:Initiate*"]}]}"#;
        assert!(Policy::parse(text, false).is_err(), "not an ecr: action");
        let p = Policy::parse_for(Service::Public, text, false).unwrap();
        let mut r = req(
            "arn:aws:iam::111111111111:root",
            "111111111111",
            "ecr-public:PutImage",
        );
        r.resource_arn = "arn:aws:ecr-public::000000000000:repository/team/app";
        assert_eq!(p.evaluate(&r), Decision::Allow);
        r.action = "ecr-public:InitiateLayerUpload";
        assert_eq!(p.evaluate(&r), Decision::Allow);
        r.action = "ecr:PutImage";
        assert_eq!(p.evaluate(&r), Decision::NotMentioned);
        assert!(
            Policy::parse_for(
                Service::Public,
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:PutImage"}]}"#,
                false
            )
            .is_err()
        );
    }
}
