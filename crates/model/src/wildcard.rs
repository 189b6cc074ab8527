/// Matches `s` against a pattern where `*` stands for any run of characters and everything
/// else for itself (ECR's WILDCARD filters, berth's repository patterns).
pub fn wildcard_match(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first) || s.len() < first.len() + last.len() || !s.ends_with(last) {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("prod*", "prod-1"));
        assert!(wildcard_match("*-rc*", "1.0-rc2"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("public/*", "public/tools/jq"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("prod*", "dev"));
        assert!(!wildcard_match("a*a", "a"));
    }
}
