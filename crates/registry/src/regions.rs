//! The registries of every region one deployment serves. A [`Registry`] serves the
//! registries of one region (each account's private registry there, and the region-less
//! public ones); [`Registries`] hands out the one a request's region names, or refuses a
//! region the deployment does not serve.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use storage::region::{RegionView, repository_region};

use crate::lifecycle::POLICY as POLICY_SETTING;
use crate::{LifecycleReport, Registry, Result, Service};

/// Regions whose registry is kept between requests. Past it (a client inventing region
/// names), a region's registry is built for each request: correct, only without its caches.
pub const MAX_CACHED_REGIONS: usize = 64;

pub struct Registries {
    /// Built on the whole metadata store: the settings every region's registry copies.
    template: Registry,
    /// The region the data directory was first opened as (see `model::region`).
    home: String,
    /// The configured `region`: what a request that names none (a `/v2` request to the bare
    /// host, the web UI) addresses.
    default: Arc<Registry>,
    by_region: Mutex<HashMap<String, Arc<Registry>>>,
}

impl Registries {
    /// The registries of `allowed` (`None`: every region), with `template`'s settings, whose
    /// region is the default one. Records the home region on a first open.
    pub async fn new(mut template: Registry, allowed: Option<Vec<String>>) -> Result<Self> {
        // The regions served travel with every region's registry (replication checks them).
        template.served_regions = allowed.map(Arc::new);
        let home = storage::region::home_region(&*template.storage.meta, &template.region).await?;
        let default = Arc::new(Self::build(&template, &home, &template.region));
        let mut by_region = HashMap::new();
        by_region.insert(template.region.clone(), default.clone());
        Ok(Self {
            template,
            home,
            default,
            by_region: Mutex::new(by_region),
        })
    }

    fn build(template: &Registry, home: &str, region: &str) -> Registry {
        let view = RegionView::new(
            template.storage.meta.clone(),
            region.to_owned(),
            home.to_owned(),
        );
        template.in_region(region, Arc::new(view))
    }

    /// The registry of the default region.
    pub fn default_region(&self) -> &Arc<Registry> {
        &self.default
    }

    /// The region the data directory was first opened as.
    pub fn home_region(&self) -> &str {
        &self.home
    }

    /// Whether requests for `region` are served.
    pub fn serves(&self, region: &str) -> bool {
        self.template.serves_region(region)
    }

    /// Whether some replication row is due (a read, before the job takes its lease).
    pub async fn replication_due(&self) -> Result<bool> {
        self.default.replication_due().await
    }

    /// Carries out the due replication rows (at most `limit`), each in its source's region,
    /// into its destination's; answers how many it took.
    pub async fn replicate_due(&self, limit: u32, retry: crate::ReplicationRetry) -> Result<u64> {
        let lookup = |region: Option<&str>| self.get(region.unwrap_or(&self.home));
        self.default.replicate_due(limit, retry, &lookup).await
    }

    /// The registry of `region`; `None` if the deployment does not serve it.
    pub fn get(&self, region: &str) -> Option<Arc<Registry>> {
        if region == self.default.region {
            return Some(self.default.clone());
        }
        if !self.serves(region) {
            return None;
        }
        let mut map = self.by_region.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = map.get(region) {
            return Some(r.clone());
        }
        let registry = Arc::new(Self::build(&self.template, &self.home, region));
        if map.len() < MAX_CACHED_REGIONS {
            map.insert(region.to_owned(), registry.clone());
        }
        Some(registry)
    }

    /// Runs every repository's lifecycle policy once, in every region that has one (each
    /// region's registry runs its own repositories).
    pub async fn run_lifecycle(&self, dry_run: bool) -> Result<LifecycleReport> {
        let rows = self
            .template
            .storage
            .meta
            .repositories_with_setting(POLICY_SETTING)
            .await?;
        let mut regions: Vec<String> = rows
            .iter()
            .filter(|(service, ..)| *service == Service::Private)
            .map(|(service, key, _)| {
                repository_region(*service, key)
                    .0
                    .unwrap_or(&self.home)
                    .to_owned()
            })
            .collect();
        regions.sort();
        regions.dedup();
        let mut total = LifecycleReport::default();
        for region in regions {
            // A region no longer served keeps its data, untouched, until it is served again.
            let Some(registry) = self.get(&region) else {
                continue;
            };
            // Destructured, so that a field added to the report is not silently dropped here.
            let LifecycleReport {
                repositories,
                expired,
                archived,
                skipped,
            } = registry.run_lifecycle(dry_run).await?;
            total.repositories += repositories;
            total.expired += expired;
            total.archived += archived;
            total.skipped += skipped;
        }
        Ok(total)
    }
}
