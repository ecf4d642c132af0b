//! `GroupingConfig`: the settings of grouping scan positions into solution regions (spec §2.3, the
//! reference's `generate_grouped_data` arguments). Not a config of its own: it is the grouping
//! part of a validated [`TrainingConfig`] or [`InferenceConfig`](crate::InferenceConfig), taken
//! with `Valid<TrainingConfig>::grouping()` / `Valid<InferenceConfig>::grouping()` (in
//! `validate.rs`), so its defaults and rules are theirs.

use crate::training::TrainingConfig;

/// Grouping settings. Which of them a dataset can satisfy (K ≥ C for the archive's gridsize, enough
/// scan points, memory) is checked when grouping, because it depends on the data.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupingConfig {
    /// Number of groups wanted (`nsamples` / `n_groups`), ≥ 1.
    pub n_groups: usize,
    /// K: nearest neighbours considered per seed (seed excluded), ≥ 1.
    pub neighbor_count: usize,
    /// Seed of the random draws.
    pub seed: u64,
    /// Seeds are `0, 1, …` instead of a random draw.
    pub sequential_sampling: bool,
    /// Allow more groups than scan points (gridsize > 1 only).
    pub enable_oversampling: bool,
    /// Neighbour pool size for oversampling (None = `neighbor_count`), ≥ 1 when given.
    pub neighbor_pool_size: Option<usize>,
    /// Each seed is the first member of its own group, the other C − 1 members drawn from its K
    /// nearest neighbours (inference at gridsize ≥ 2: every group sits on its seed, so one group
    /// per scan point covers the scan). False: all C members drawn from the K nearest neighbours,
    /// the seed excluded (the reference's `generate_grouped_data`, training). Not used by
    /// oversampling or at gridsize 1.
    pub seed_in_group: bool,
}

impl Default for GroupingConfig {
    /// The grouping part of `TrainingConfig::default()`.
    fn default() -> Self {
        TrainingConfig::default().grouping_part()
    }
}

impl TrainingConfig {
    /// The grouping fields of this config (validated as part of it).
    pub(crate) fn grouping_part(&self) -> GroupingConfig {
        GroupingConfig {
            n_groups: self.n_groups,
            neighbor_count: self.neighbor_count,
            seed: self.seed,
            sequential_sampling: self.sequential_sampling,
            enable_oversampling: self.enable_oversampling,
            neighbor_pool_size: self.neighbor_pool_size,
            seed_in_group: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::InferenceConfig;
    use crate::model::ModelConfig;

    #[test]
    fn training_grouping_carries_the_training_values() {
        let cfg = TrainingConfig {
            model: ModelConfig {
                gridsize: 2,
                ..Default::default()
            },
            n_groups: 77,
            neighbor_count: 6,
            seed: 3,
            sequential_sampling: true,
            enable_oversampling: true,
            neighbor_pool_size: Some(5),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let g = cfg.grouping();
        assert_eq!(
            *g,
            GroupingConfig {
                n_groups: 77,
                neighbor_count: 6,
                seed: 3,
                sequential_sampling: true,
                enable_oversampling: true,
                neighbor_pool_size: Some(5),
                seed_in_group: false,
            }
        );
        assert!(g.into_inner().validate().is_ok());
        assert_eq!(GroupingConfig::default().n_groups, 512);
        assert_eq!(GroupingConfig::default().seed, 42);
    }

    #[test]
    fn inference_grouping_seeds_a_group_on_each_point() {
        let cfg = InferenceConfig {
            n_groups: Some(10),
            neighbor_count: Some(7),
            ..Default::default()
        }
        .validate()
        .unwrap();
        let g = cfg.grouping(100, 2).unwrap();
        assert_eq!((g.n_groups, g.neighbor_count, g.seed), (10, 7, 45));
        assert!(!g.sequential_sampling && g.seed_in_group);
        // At most one group per scan point (no longer total / gridsize²).
        assert_eq!(cfg.grouping(12, 2).unwrap().n_groups, 10);
        assert_eq!(cfg.grouping(3, 2).unwrap().n_groups, 3);
        let all = InferenceConfig::default().validate().unwrap();
        let g = all.grouping(512, 2).unwrap();
        assert_eq!((g.n_groups, g.neighbor_count), (512, 7));
        assert!(
            !GroupingConfig::default().seed_in_group,
            "training keeps the reference's draw"
        );
    }
}
