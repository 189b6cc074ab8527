//! The `Condition` element of IAM policies: parsing with validation, and evaluation against a
//! request's context keys, following the IAM reference ("IAM JSON policy elements: Condition
//! operators", "Condition keys for multivalued context keys", "AWS global condition context
//! keys"):
//!
//! - condition keys are matched case-insensitively, operator names case-sensitively;
//! - within one block, every operator and every key must hold (AND); the values listed for one
//!   key are alternatives (OR), except for the negated operators (`StringNotEquals`,
//!   `NotIpAddress`, ...), where the context value must match none of them (NOR);
//! - a key the request does not carry makes a positive operator false and a negated one true;
//!   `...IfExists` makes either true; `Null` tests exactly that presence. berth carries no
//!   unknown key, so a key it does not know behaves as a key the request lacks, as in AWS;
//! - `ForAnyValue:` holds when some context value matches (false when the key is missing or
//!   empty), `ForAllValues:` when every context value matches (true when missing or empty).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

/// The values a request carries for condition keys. Names are lower-cased on insertion and
/// lookup, as condition key names are case-insensitive.
#[derive(Debug, Clone, Default)]
pub struct Context {
    keys: BTreeMap<String, Vec<String>>,
}

impl Context {
    /// Sets a single-valued key.
    pub fn set(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.keys
            .insert(key.to_ascii_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multivalued key (such as `aws:TagKeys`).
    pub fn set_all(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.keys.insert(key.to_ascii_lowercase(), values);
        self
    }

    fn get(&self, key: &str) -> Option<&[String]> {
        self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    String,
    StringIgnoreCase,
    StringLike,
    Numeric,
    Date,
    Bool,
    Ip,
    ArnEquals,
    ArnLike,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    None,
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, PartialEq)]
struct Operator {
    kind: Kind,
    cmp: Cmp,
    negated: bool,
    if_exists: bool,
    set: SetOp,
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    op: Operator,
    key: String,
    values: Vec<String>,
}

/// One statement's `Condition` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Condition {
    clauses: Vec<Clause>,
}

fn operator(name: &str) -> Option<Operator> {
    let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
        (SetOp::AnyValue, r)
    } else if let Some(r) = name.strip_prefix("ForAllValues:") {
        (SetOp::AllValues, r)
    } else {
        (SetOp::None, name)
    };
    // `Null` takes no IfExists: it is the presence test itself.
    if rest == "Null" {
        return Some(Operator {
            kind: Kind::Null,
            cmp: Cmp::Eq,
            negated: false,
            if_exists: false,
            set,
        });
    }
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(b) => (true, b),
        None => (false, rest),
    };
    use Cmp::*;
    use Kind::*;
    let (kind, cmp, negated) = match base {
        "StringEquals" => (String, Eq, false),
        "StringNotEquals" => (String, Eq, true),
        "StringEqualsIgnoreCase" => (StringIgnoreCase, Eq, false),
        "StringNotEqualsIgnoreCase" => (StringIgnoreCase, Eq, true),
        "StringLike" => (StringLike, Eq, false),
        "StringNotLike" => (StringLike, Eq, true),
        "NumericEquals" => (Numeric, Eq, false),
        "NumericNotEquals" => (Numeric, Eq, true),
        "NumericLessThan" => (Numeric, Lt, false),
        "NumericLessThanEquals" => (Numeric, Le, false),
        "NumericGreaterThan" => (Numeric, Gt, false),
        "NumericGreaterThanEquals" => (Numeric, Ge, false),
        "DateEquals" => (Date, Eq, false),
        "DateNotEquals" => (Date, Eq, true),
        "DateLessThan" => (Date, Lt, false),
        "DateLessThanEquals" => (Date, Le, false),
        "DateGreaterThan" => (Date, Gt, false),
        "DateGreaterThanEquals" => (Date, Ge, false),
        "Bool" => (Bool, Eq, false),
        "IpAddress" => (Ip, Eq, false),
        "NotIpAddress" => (Ip, Eq, true),
        "ArnEquals" => (ArnEquals, Eq, false),
        "ArnNotEquals" => (ArnEquals, Eq, true),
        "ArnLike" => (ArnLike, Eq, false),
        "ArnNotLike" => (ArnLike, Eq, true),
        _ => return None,
    };
    Some(Operator {
        kind,
        cmp,
        negated,
        if_exists,
        set,
    })
}

/// A condition value as written: strings, numbers and booleans all compare as their text.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Condition {
    /// Parses a statement's `Condition` object, refusing what IAM's policy validation refuses:
    /// unknown operators, keys without values, and values the operator cannot read (a number
    /// for `Numeric*`, a date for `Date*`, an address or CIDR for `IpAddress`, `true`/`false`
    /// for `Bool` and `Null`).
    pub fn parse(v: &Value) -> Result<Self, String> {
        let blocks = v.as_object().ok_or("Condition must be an object")?;
        let mut clauses = Vec::new();
        for (name, block) in blocks {
            let op =
                operator(name).ok_or_else(|| format!("unknown condition operator '{name}'"))?;
            let block = block
                .as_object()
                .ok_or_else(|| format!("condition operator '{name}' must map keys to values"))?;
            if block.is_empty() {
                return Err(format!("condition operator '{name}' names no key"));
            }
            for (key, values) in block {
                if key.is_empty() {
                    return Err(format!("condition operator '{name}' has an empty key"));
                }
                let values: Vec<String> = match values {
                    Value::Array(items) if !items.is_empty() => items
                        .iter()
                        .map(scalar)
                        .collect::<Option<_>>()
                        .ok_or_else(|| format!("condition values of '{key}' must be strings"))?,
                    v => vec![scalar(v).ok_or_else(|| {
                        format!("condition values of '{key}' must be a string or a non-empty list")
                    })?],
                };
                for value in &values {
                    check_value(op.kind, value).map_err(|e| format!("{name} on '{key}': {e}"))?;
                }
                clauses.push(Clause {
                    op: op.clone(),
                    key: key.clone(),
                    values,
                });
            }
        }
        Ok(Self { clauses })
    }

    /// Whether every clause holds in `ctx`.
    pub fn holds(&self, ctx: &Context) -> bool {
        self.clauses.iter().all(|c| c.holds(ctx))
    }
}

fn check_value(kind: Kind, value: &str) -> Result<(), String> {
    let ok = match kind {
        Kind::Numeric => value.parse::<f64>().is_ok(),
        Kind::Date => parse_date(value).is_some(),
        Kind::Ip => parse_cidr(value).is_some(),
        Kind::Bool | Kind::Null => {
            value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
        }
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("'{value}' is not a valid value for this operator"))
    }
}

impl Clause {
    fn holds(&self, ctx: &Context) -> bool {
        let present = ctx.get(&self.key);
        if self.op.kind == Kind::Null {
            let want_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            let absent = present.is_none_or(<[String]>::is_empty);
            return want_absent == absent;
        }
        let context_values = match present {
            Some(v) if !v.is_empty() => v,
            // A missing key (or an empty set): AWS's table of outcomes.
            _ => {
                return match self.op.set {
                    SetOp::AllValues => true,
                    SetOp::AnyValue => false,
                    SetOp::None => self.op.if_exists || self.op.negated,
                };
            }
        };
        // Policy variables in the values; a value whose variable the request lacks matches
        // nothing.
        let values: Vec<String> = self
            .values
            .iter()
            .filter_map(|v| substitute(v, ctx))
            .collect();
        // One context value against the policy's values: positive operators need one match,
        // negated operators need none.
        let one = |cv: &str| {
            let any = values.iter().any(|pv| matches(&self.op, pv, cv));
            any != self.op.negated
        };
        match self.op.set {
            SetOp::AllValues => context_values.iter().all(|cv| one(cv)),
            // Without a set operator a multivalued key is read as ForAnyValue.
            SetOp::AnyValue | SetOp::None => context_values.iter().any(|cv| one(cv)),
        }
    }
}

/// Replaces the policy variables of `value` (`${aws:username}`, `${aws:PrincipalTag/team}`,
/// and the escapes `${*}`, `${?}`, `${$}`) with the request's values ("IAM policy elements:
/// Variables and tags"); `${key, 'default'}` gives a default. `None` when a variable has
/// neither a value nor a default.
fn substitute(value: &str, ctx: &Context) -> Option<String> {
    if !value.contains("${") {
        return Some(value.to_owned());
    }
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Some(out);
        };
        let inner = after[..end].trim();
        match inner {
            "*" | "?" | "$" => out.push_str(inner),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((k, d)) => (k.trim(), Some(d.trim().trim_matches('\''))),
                    None => (inner, None),
                };
                match ctx.get(key).and_then(|v| v.first()) {
                    Some(v) => out.push_str(v),
                    None => out.push_str(default?),
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Whether context value `cv` satisfies the (un-negated) operator for policy value `pv`.
fn matches(op: &Operator, pv: &str, cv: &str) -> bool {
    match op.kind {
        Kind::String => pv == cv,
        Kind::StringIgnoreCase => pv.to_lowercase() == cv.to_lowercase(),
        Kind::StringLike => glob(pv, cv),
        Kind::Bool => pv.eq_ignore_ascii_case(cv),
        Kind::Numeric => match (pv.parse::<f64>(), cv.parse::<f64>()) {
            (Ok(p), Ok(c)) => compare(op.cmp, c.partial_cmp(&p)),
            _ => false,
        },
        Kind::Date => match (parse_date(pv), parse_date(cv)) {
            (Some(p), Some(c)) => compare(op.cmp, Some(c.cmp(&p))),
            _ => false,
        },
        Kind::Ip => match (parse_cidr(pv), cv.parse::<IpAddr>()) {
            (Some((net, bits)), Ok(ip)) => in_network(net, bits, ip),
            _ => false,
        },
        Kind::ArnEquals | Kind::ArnLike => arn_like(pv, cv),
        Kind::Null => false,
    }
}

fn compare(cmp: Cmp, ord: Option<std::cmp::Ordering>) -> bool {
    use std::cmp::Ordering::*;
    matches!(
        (cmp, ord),
        (Cmp::Eq, Some(Equal))
            | (Cmp::Lt, Some(Less))
            | (Cmp::Le, Some(Less | Equal))
            | (Cmp::Gt, Some(Greater))
            | (Cmp::Ge, Some(Greater | Equal))
    )
}

/// IAM's wildcard match: `*` any run of characters (also none), `?` exactly one; case-sensitive.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), s.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, si));
            pi += 1;
        } else if let Some((bp, bs)) = backtrack {
            pi = bp + 1;
            si = bs + 1;
            backtrack = Some((bp, bs + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `ArnEquals`/`ArnLike`: the six colon-separated parts are matched one by one, each with
/// wildcards (the resource part keeps its own colons).
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    if p.len() != 6 || a.len() != 6 {
        // Not an ARN (e.g. `*`): compare whole.
        return glob(pattern, arn);
    }
    p.iter().zip(&a).all(|(p, a)| glob(p, a))
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().ok()?)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

fn in_network(net: IpAddr, bits: u8, ip: IpAddr) -> bool {
    // An IPv4-mapped IPv6 peer (dual-stack listener) is its IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// A date as IAM's `Date*` operators read it: ISO 8601 (`2020-01-01`, `2020-01-01T12:00:00Z`,
/// with optional fractions and a `±hh:mm` offset) or seconds since the epoch. Answers
/// milliseconds since the epoch.
pub fn parse_date(s: &str) -> Option<i64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !s.contains('-') {
        return s.parse::<i64>().ok()?.checked_mul(1000);
    }
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let mut millis = days_from_civil(y, mo, d) * 86_400_000;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(millis);
    }
    let rest = rest.strip_prefix('T')?;
    let rb = rest.as_bytes();
    if rb.len() < 8 || rb[2] != b':' || rb[5] != b':' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = rest.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (h, mi, sec) = (n(0..2)?, n(3..5)?, n(6..8)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    millis += (h * 3600 + mi * 60 + sec) * 1000;
    let mut tail = &rest[8..];
    if let Some(frac) = tail.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits]
            .chars()
            .chain("000".chars())
            .take(3)
            .collect();
        millis += ms.parse::<i64>().ok()?;
        tail = &frac[digits..];
    }
    let offset = match tail {
        "Z" | "" => 0,
        t if (t.starts_with('+') || t.starts_with('-')) && t.len() == 6 && &t[3..4] == ":" => {
            let sign = if t.starts_with('-') { -1 } else { 1 };
            let (oh, om) = (t[1..3].parse::<i64>().ok()?, t[4..6].parse::<i64>().ok()?);
            sign * (oh * 3600 + om * 60) * 1000
        }
        _ => return None,
    };
    Some(millis - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `millis` since the epoch as ISO 8601 UTC (`aws:CurrentTime`).
pub fn format_date(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_dates_and_networks() {
        assert!(glob("a*c", "abbc"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("A*", "abc"), "case-sensitive");
        assert_eq!(parse_date("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_date("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_date("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_date("1970-01-01T00:00:00.5Z"), Some(500));
        assert_eq!(parse_date("86400"), Some(86_400_000));
        assert_eq!(parse_date("2020-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        let t = parse_date("2024-02-29T23:59:59Z").unwrap();
        assert_eq!(format_date(t), "2024-02-29T23:59:59Z");
        let (n, b) = parse_cidr("203.0.113.0/24").unwrap();
        assert!(in_network(n, b, "203.0.113.9".parse().unwrap()));
        assert!(!in_network(n, b, "203.0.114.9".parse().unwrap()));
        assert!(in_network(n, b, "::ffff:203.0.113.1".parse().unwrap()));
        let (n, b) = parse_cidr("2001:db8::/32").unwrap();
        assert!(in_network(n, b, "2001:db8::1".parse().unwrap()));
        assert!(parse_cidr("10.0.0.0/33").is_none());
        let (n, b) = parse_cidr("0.0.0.0/0").unwrap();
        assert!(in_network(n, b, "10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn malformed_conditions_are_refused() {
        for bad in [
            r#"[]"#,
            r#"{"StringEquality":{"aws:username":"a"}}"#,
            r#"{"stringequals":{"aws:username":"a"}}"#,
            r#"{"StringEquals":"a"}"#,
            r#"{"StringEquals":{}}"#,
            r#"{"StringEquals":{"aws:username":[]}}"#,
            r#"{"StringEquals":{"aws:username":{"a":1}}}"#,
            r#"{"NumericLessThan":{"s3:max-keys":"ten"}}"#,
            r#"{"DateGreaterThan":{"aws:CurrentTime":"tomorrow"}}"#,
            r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/40"}}"#,
            r#"{"Bool":{"aws:SecureTransport":"yes"}}"#,
            r#"{"NullIfExists":{"aws:username":"true"}}"#,
        ] {
            let v: Value = serde_json::from_str(bad).unwrap();
            assert!(Condition::parse(&v).is_err(), "{bad}");
        }
    }
}
