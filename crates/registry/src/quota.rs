//! Per-principal request-rate quotas: a token bucket per (principal, operation) in this
//! process. ECR documents its rates per account and region for the image operations
//! (ecr-api.md section 5); berth applies the same numbers per principal and per node, so a
//! deployment of N nodes behind a load balancer admits up to N times the rate in the worst
//! case (about the rate when one client's requests stay on one node). Operations ECR gives
//! no rate for are not limited.
//!
//! A bucket holds `burst_secs` seconds of its rate, so short bursts pass (ECR, too, absorbs
//! bursts), and refills continuously.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// ECR's documented default rates (requests per second), by operation.
pub const DEFAULT_RATES: &[(&str, f64)] = &[
    ("BatchCheckLayerAvailability", 1000.0),
    ("BatchGetImage", 2000.0),
    ("GetAuthorizationToken", 500.0),
    ("GetDownloadUrlForLayer", 3000.0),
    ("InitiateLayerUpload", 100.0),
    ("UploadLayerPart", 500.0),
    ("CompleteLayerUpload", 100.0),
    ("PutImage", 10.0),
];

/// Seconds of rate a bucket holds by default.
pub const DEFAULT_BURST_SECS: f64 = 5.0;

#[derive(Debug)]
pub struct Quotas {
    /// Requests per second by operation (without the service prefix); 0 or absent: no limit.
    rates: HashMap<String, f64>,
    burst_secs: f64,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Default for Quotas {
    fn default() -> Self {
        Self::new(&[], DEFAULT_BURST_SECS)
    }
}

impl Quotas {
    /// ECR's rates with `overrides` (operation, requests per second; 0 lifts the limit; `*`
    /// sets every operation ECR gives a rate for, before the named ones).
    pub fn new(overrides: &[(String, f64)], burst_secs: f64) -> Self {
        let mut rates: HashMap<String, f64> = DEFAULT_RATES
            .iter()
            .map(|(op, r)| ((*op).to_owned(), *r))
            .collect();
        for (_, r) in overrides.iter().filter(|(op, _)| op == "*") {
            rates.values_mut().for_each(|v| *v = *r);
        }
        for (op, r) in overrides.iter().filter(|(op, _)| op != "*") {
            rates.insert(op.clone(), *r);
        }
        Self {
            rates,
            burst_secs: burst_secs.max(0.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request of `principal` for `action` (`ecr:PutImage`, `ecr-public:PutImage`:
    /// both count against `PutImage`). `Err(seconds)` to wait before a retry may pass.
    pub fn take(&self, principal: &str, action: &str) -> Result<(), u64> {
        let op = action.rsplit(':').next().unwrap_or(action);
        let Some(&rate) = self.rates.get(op).filter(|r| **r > 0.0) else {
            return Ok(());
        };
        let capacity = (rate * self.burst_secs).max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let b = buckets
            .entry((principal.to_owned(), op.to_owned()))
            .or_insert(Bucket {
                tokens: capacity,
                at: now,
            });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_past_the_bucket_is_refused_and_refills() {
        let q = Quotas::new(&[("PutImage".into(), 2.0)], 1.0);
        assert_eq!(q.take("a", "ecr:PutImage"), Ok(()));
        assert_eq!(q.take("a", "ecr-public:PutImage"), Ok(()));
        assert_eq!(q.take("a", "ecr:PutImage"), Err(1));
        // Per principal, per operation; unlimited operations pass.
        assert_eq!(q.take("b", "ecr:PutImage"), Ok(()));
        for _ in 0..100 {
            assert_eq!(q.take("a", "ecr:DescribeRepositories"), Ok(()));
        }
        std::thread::sleep(std::time::Duration::from_millis(600));
        assert_eq!(q.take("a", "ecr:PutImage"), Ok(()));
        let off = Quotas::new(&[("PutImage".into(), 0.0)], 1.0);
        for _ in 0..100 {
            assert_eq!(off.take("a", "ecr:PutImage"), Ok(()));
        }
        let all_off = Quotas::new(&[("*".into(), 0.0), ("PutImage".into(), 1.0)], 1.0);
        for _ in 0..100 {
            assert_eq!(all_off.take("a", "ecr:BatchGetImage"), Ok(()));
        }
        assert_eq!(all_off.take("a", "ecr:PutImage"), Ok(()));
        assert_eq!(all_off.take("a", "ecr:PutImage"), Err(1));
    }
}
