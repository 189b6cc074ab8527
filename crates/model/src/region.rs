//! AWS region names, and how a private registry outside the deployment's home region is told
//! apart in storage.
//!
//! A registry is an (account, region) pair, as in AWS; ECR Public's registries are
//! region-less. The metadata store files the private registry of an account in the *home
//! region* (the region the data directory was first opened as) under the account id alone, as
//! berth did before it served several regions, so that existing data needs no rewrite. A
//! private registry in any other region is filed under `<account>:<region>`: account ids are
//! 12 digits and region names hold no `:`, so no two registries share a key.

use std::borrow::Cow;

/// Longest region name accepted (AWS's longest today, `ap-southeast-5` or `us-isob-east-1`,
/// is well below it): bounds what a signature or host name can make the server keep.
pub const MAX_REGION_LEN: usize = 32;

/// Whether `s` is shaped like an AWS region name in any partition: two letters, one or more
/// `-word`s and a `-number` (`us-east-1`, `us-gov-west-1`, `eu-isoe-west-1`, `cn-north-1`).
pub fn is_region_name(s: &str) -> bool {
    if s.len() > MAX_REGION_LEN {
        return false;
    }
    let parts: Vec<&str> = s.split('-').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return false;
    };
    first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && !middle.is_empty()
        && middle
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && (1..=2).contains(&last.len())
        && last.bytes().all(|b| b.is_ascii_digit())
}

/// The account key of the private registry of `account` in `region`: the account id itself in
/// the home region, `<account>:<region>` elsewhere (see the module note).
pub fn regional_key<'a>(account: &'a str, region: &str, home: &str) -> Cow<'a, str> {
    if region == home {
        Cow::Borrowed(account)
    } else {
        Cow::Owned(format!("{account}:{region}"))
    }
}

/// The (account, region) a [`regional_key`] stands for; `None` for the home region.
pub fn split_regional_key(key: &str) -> (&str, Option<&str>) {
    match key.split_once(':') {
        Some((account, region)) => (account, Some(region)),
        None => (key, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_of_every_partition_and_nothing_else() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-gov-west-1",
            "cn-northwest-1",
            "us-isob-east-1",
            "eu-isoe-west-1",
            "il-central-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "us-east-",
            "useast-1",
            "US-EAST-1",
            "us-east-1a",
            "us--east-1",
            "us-east-123",
            "u-east-1",
            "us-east-1 ",
            "us:east-1",
            "xx-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }

    #[test]
    fn home_region_keys_are_account_ids_and_keys_round_trip() {
        assert_eq!(
            regional_key("123456789012", "eu-west-1", "eu-west-1"),
            "123456789012"
        );
        let key = regional_key("123456789012", "us-east-1", "eu-west-1");
        assert_eq!(key, "123456789012:us-east-1");
        assert_eq!(
            split_regional_key(&key),
            ("123456789012", Some("us-east-1"))
        );
        assert_eq!(split_regional_key("123456789012"), ("123456789012", None));
    }
}
