//! Grouping of scan positions into solution regions (spec §2.3) and dataset assembly.

use std::num::NonZero;

use itertools::Itertools;
use kiddo::{ImmutableKdTree, SquaredEuclidean};
use ndarray::{Array2, Array4, Axis, s};
use num_complex::Complex32;
use ptycho_config::{GroupingConfig, Params, Valid};
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

use crate::data::{RawData, ScanHeader};
use crate::error::{Result, WorkflowError};
use crate::normalize;
use crate::patches::{PatchConvention, extract_patch};

/// A grouped dataset, channels-last like the reference (spec §2.3 step 6).
/// Coordinates are object pixels, axis 2 ordered `[x, y]` = `[column, row]`.
#[derive(Debug, Clone)]
pub struct GroupedData {
    /// Raw diffraction amplitudes `(G, N, N, C)`.
    pub diffraction: Array4<f32>,
    /// Normalised amplitudes `X = f · diffraction` `(G, N, N, C)` (spec §3.1).
    pub x_full: Array4<f32>,
    /// The normalisation factor `f` (computed in f64).
    pub norm_factor: f64,
    /// Member positions `(G, 1, 2, C)`.
    pub coords_nn: Array4<f64>,
    /// Group centres (mean over members) `(G, 1, 2, 1)`.
    pub coords_offsets: Array4<f64>,
    /// `−(coords_nn − coords_offsets)` `(G, 1, 2, C)`.
    pub coords_relative: Array4<f64>,
    /// Nominal member positions `(G, 1, 2, C)`.
    pub coords_start_nn: Array4<f64>,
    /// Nominal group centres `(G, 1, 2, 1)`.
    pub coords_start_offsets: Array4<f64>,
    /// Nominal relative offsets `(G, 1, 2, C)`.
    pub coords_start_relative: Array4<f64>,
    /// Index table into the raw arrays `(G, C)`.
    pub nn_indices: Array2<usize>,
    /// Ground-truth patches `(G, N, N, C)`: from the NPZ `Y`, else cut from `objectGuess`.
    pub y: Option<Array4<Complex32>>,
}

impl GroupedData {
    /// Number of groups G.
    pub fn n_groups(&self) -> usize {
        self.nn_indices.nrows()
    }
    /// Channels per group C = gridsize².
    pub fn channels(&self) -> usize {
        self.nn_indices.ncols()
    }
}

/// Bytes of the grouped dataset of `g` groups: `diffraction` and `X_full` (f32) and, when the data
/// carry a ground truth, `Y` (complex64), each `(G, N, N, C)`. A lower bound of what grouping and
/// training hold at once.
fn grouped_bytes(g: usize, n: usize, c: usize, with_y: bool) -> u128 {
    let per_value: u128 = if with_y { 4 + 4 + 8 } else { 4 + 4 };
    g as u128 * (n * n * c) as u128 * per_value
}

/// Refuse `requested` groups (`g` of them formed) when their grouped dataset alone exceeds the
/// memory available (`None`: not known, only the address-space limit applies), with a one-line
/// error naming `n_groups` instead of an allocation abort. Oversampling makes any count
/// reachable, so this is the bound.
fn check_memory(
    requested: usize,
    g: usize,
    n: usize,
    c: usize,
    with_y: bool,
    available: Option<u64>,
) -> Result<()> {
    let need = grouped_bytes(g, n, c, with_y);
    let limit = available.map_or(isize::MAX as u128, u128::from);
    if need <= limit {
        return Ok(());
    }
    let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
    let have = match available {
        Some(a) => format!("the {:.1} GiB of memory available", gib(a.into())),
        None => "what this machine can address".to_string(),
    };
    Err(WorkflowError::InvalidOption {
        field: "n_groups",
        value: requested.to_string(),
        reason: format!(
            "{g} groups of {c}×{n}×{n} patterns need {:.1} GiB for the grouped data, more than {have}; \
             request fewer groups",
            gib(need)
        ),
    })
}

/// `MemAvailable` of `/proc/meminfo` in bytes (Linux); `None` elsewhere or when unreadable.
fn available_memory() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use procfs::Current;
        procfs::Meminfo::current().ok()?.mem_available
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

fn gerr(reason: impl Into<String>) -> WorkflowError {
    WorkflowError::Grouping {
        reason: reason.into(),
    }
}

/// Sample seeds and group them with their nearest neighbours, then assemble the dataset with
/// physically placed ground-truth patches (spec §2.3). Errors as the reference, for what depends
/// on the data and the params: `n < C`, `K < C`, oversampling needed but disabled; and grouped
/// data larger than the memory available.
pub fn group(raw: &RawData, params: &Params, opts: &Valid<GroupingConfig>) -> Result<GroupedData> {
    let idx = group_indices(raw, params.channels(), opts)?;
    group_with_indices_using(raw, params, &idx, PatchConvention::Physical)
}

/// The `(G, C)` index table of [`group`] without assembling the dataset.
pub fn group_indices(
    raw: &RawData,
    c: usize,
    opts: &Valid<GroupingConfig>,
) -> Result<Array2<usize>> {
    let with_y = raw.y.is_some() || raw.object_guess.is_some();
    let points = Points {
        x: &raw.xcoords,
        y: &raw.ycoords,
    };
    indices(&points, c, opts, Some((raw.n(), with_y)))
}

/// The `(G, C)` index table of a scan known by its header, for inference that reads the
/// patterns of a few groups at a time: the same table as [`group_indices`] on the scan's
/// [`RawData`], without the check that the grouped dataset fits in memory (it is never held).
pub fn group_indices_of(
    header: &ScanHeader,
    c: usize,
    opts: &Valid<GroupingConfig>,
) -> Result<Array2<usize>> {
    let points = Points {
        x: &header.xcoords,
        y: &header.ycoords,
    };
    indices(&points, c, opts, None)
}

/// Scan positions `[x, y]` (object pixels) that groups are formed over.
struct Points<'a> {
    x: &'a ndarray::Array1<f64>,
    y: &'a ndarray::Array1<f64>,
}

impl Points<'_> {
    fn n_points(&self) -> usize {
        self.x.len()
    }
}

/// [`group_indices`]; `memory`: pattern size N and whether ground truth is grouped too, for the
/// check that the grouped dataset fits in memory (`None`: not held, no check).
fn indices(
    raw: &Points,
    c: usize,
    opts: &Valid<GroupingConfig>,
    memory: Option<(usize, bool)>,
) -> Result<Array2<usize>> {
    let n = raw.n_points();
    let k = opts.neighbor_count;
    let k_eff = opts.neighbor_pool_size.unwrap_or(k);
    if n < c {
        return Err(gerr(format!(
            "dataset has {n} scan points, fewer than the {c} members a group needs"
        )));
    }
    let needs_oversampling = opts.n_groups > n && c > 1;
    if needs_oversampling && !opts.enable_oversampling {
        return Err(gerr(format!(
            "{} groups requested from {n} scan points at gridsize {}: that needs oversampling; \
             enable it or request at most {n} groups",
            opts.n_groups,
            (c as f64).sqrt() as usize
        )));
    }
    if c > 1 && (if needs_oversampling { k_eff } else { k }) < c {
        return Err(gerr(format!(
            "neighbour count K = {} is smaller than the group size C = {c}",
            if needs_oversampling { k_eff } else { k }
        )));
    }
    let g = if needs_oversampling {
        opts.n_groups
    } else {
        opts.n_groups.min(n)
    };
    if let Some((pattern_n, with_y)) = memory {
        check_memory(opts.n_groups, g, pattern_n, c, with_y, available_memory())?;
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    if needs_oversampling {
        return oversampled_groups(raw, c, k_eff, opts, &mut rng);
    }
    let n_actual = opts.n_groups.min(n);
    let seeds: Vec<usize> = if opts.sequential_sampling || n_actual == n {
        (0..n_actual).collect()
    } else {
        sample(&mut rng, n, n_actual).into_vec()
    };
    if c == 1 {
        return Array2::from_shape_vec((n_actual, 1), seeds).map_err(|e| gerr(e.to_string()));
    }
    let tree = build_tree(raw)?;
    let mut out = Array2::<usize>::zeros((n_actual, c));
    for (g, &sd) in seeds.iter().enumerate() {
        let pick = if opts.seed_in_group {
            // The seed, then C − 1 of its K nearest neighbours (n ≥ C and K ≥ C leave at least
            // C − 1 of them, so no member repeats).
            let others = nearest_others(raw, &tree, sd, k);
            std::iter::once(sd)
                .chain(draw(&mut rng, &others, c - 1))
                .collect()
        } else {
            let avail = neighbours(raw, &tree, sd, k, c);
            draw(&mut rng, &avail, c)
        };
        for (j, v) in pick.into_iter().enumerate() {
            out[[g, j]] = v;
        }
    }
    Ok(out)
}

fn build_tree(raw: &Points) -> Result<ImmutableKdTree<f64, 2>> {
    let pts: Vec<[f64; 2]> = raw
        .x
        .iter()
        .zip(raw.y.iter())
        .map(|(&x, &y)| [x, y])
        .collect();
    ImmutableKdTree::new_from_slice(&pts).map_err(|e| gerr(format!("KD-tree construction: {e:?}")))
}

/// K nearest neighbours of `seed`, seed excluded; the seed is prepended when fewer than C remain.
fn neighbours(
    raw: &Points,
    tree: &ImmutableKdTree<f64, 2>,
    seed: usize,
    k: usize,
    c: usize,
) -> Vec<usize> {
    let mut avail = nearest_others(raw, tree, seed, k);
    if avail.len() < c {
        avail.insert(0, seed);
    }
    avail
}

/// The K nearest neighbours of `seed`, nearest first, the seed itself excluded (at most n − 1).
fn nearest_others(
    raw: &Points,
    tree: &ImmutableKdTree<f64, 2>,
    seed: usize,
    k: usize,
) -> Vec<usize> {
    let n = raw.n_points();
    let q = [raw.x[seed], raw.y[seed]];
    let want = (k + 1).min(n);
    let Some(want) = NonZero::new(want) else {
        return Vec::new();
    };
    let found: Vec<usize> = tree
        .query(&q)
        .nearest_n::<SquaredEuclidean<f64>>(want)
        .execute()
        .into_iter()
        .map(|r| r.item as usize)
        .collect();
    let mut avail: Vec<usize> = if let Some(pos) = found.iter().position(|&i| i == seed) {
        found
            .iter()
            .enumerate()
            .filter(|&(p, _)| p != pos)
            .map(|(_, &i)| i)
            .collect()
    } else {
        found.into_iter().skip(1).collect()
    };
    avail.truncate(k);
    avail
}

/// C distinct members of `avail` in random order (with replacement only if too few).
fn draw(rng: &mut StdRng, avail: &[usize], c: usize) -> Vec<usize> {
    if avail.len() >= c {
        sample(rng, avail.len(), c)
            .into_iter()
            .map(|i| avail[i])
            .collect()
    } else {
        (0..c)
            .map(|_| avail[rng.random_range(0..avail.len())])
            .collect()
    }
}

fn oversampled_groups(
    raw: &Points,
    c: usize,
    k_eff: usize,
    opts: &GroupingConfig,
    rng: &mut StdRng,
) -> Result<Array2<usize>> {
    let n = raw.n_points();
    let ns = opts.n_groups;
    let max_combos = binom(k_eff, c).max(1);
    let min_seeds = ns.div_ceil(max_combos).max(1);
    let n_seeds = (2 * min_seeds).min(n);
    let seeds: Vec<usize> = if opts.sequential_sampling || n_seeds == n {
        (0..n_seeds).collect()
    } else {
        sample(rng, n, n_seeds).into_vec()
    };
    let tree = build_tree(raw)?;
    let mut pool: Vec<Vec<usize>> = Vec::new();
    'outer: for &sd in &seeds {
        let avail = neighbours(raw, &tree, sd, k_eff, c);
        // C-combinations of the neighbours, in lexicographic order of their positions.
        for comb in avail.iter().copied().combinations(c) {
            pool.push(comb);
            if pool.len() >= 2 * ns {
                break 'outer;
            }
        }
    }
    if pool.is_empty() {
        return Err(gerr("oversampling produced no candidate groups"));
    }
    let picks: Vec<usize> = if ns <= pool.len() {
        sample(rng, pool.len(), ns).into_vec()
    } else {
        (0..ns).map(|_| rng.random_range(0..pool.len())).collect()
    };
    let mut out = Array2::<usize>::zeros((ns, c));
    for (g, &p) in picks.iter().enumerate() {
        for j in 0..c {
            out[[g, j]] = pool[p][j];
        }
    }
    Ok(out)
}

fn binom(n: usize, k: usize) -> usize {
    if k > n {
        return 0;
    }
    let mut r: u128 = 1;
    for i in 0..k {
        r = r * (n - i) as u128 / (i + 1) as u128;
    }
    r.min(usize::MAX as u128) as usize
}

/// Assemble the grouped dataset from a given `(G, C)` index table, patches physically placed.
pub fn group_with_indices(
    raw: &RawData,
    params: &Params,
    nn_indices: &Array2<usize>,
) -> Result<GroupedData> {
    group_with_indices_using(raw, params, nn_indices, PatchConvention::Physical)
}

pub(crate) fn coords_tables(
    xs: &ndarray::Array1<f64>,
    ys: &ndarray::Array1<f64>,
    idx: &Array2<usize>,
) -> (Array4<f64>, Array4<f64>, Array4<f64>) {
    let (g, c) = idx.dim();
    let nn = Array4::from_shape_fn((g, 1, 2, c), |(b, _, a, j)| {
        let i = idx[[b, j]];
        if a == 0 { xs[i] } else { ys[i] }
    });
    let off = nn
        .mean_axis(Axis(3))
        .map(|m| m.insert_axis(Axis(3)))
        .unwrap_or_else(|| Array4::zeros((g, 1, 2, 1)));
    let rel = Array4::from_shape_fn((g, 1, 2, c), |(b, z, a, j)| {
        -(nn[[b, z, a, j]] - off[[b, z, a, 0]])
    });
    (nn, off, rel)
}

/// [`group_with_indices`] with an explicit ground-truth patch convention.
pub fn group_with_indices_using(
    raw: &RawData,
    params: &Params,
    nn_indices: &Array2<usize>,
    convention: PatchConvention,
) -> Result<GroupedData> {
    let (g, c) = nn_indices.dim();
    let m = raw.n_points();
    let n = raw.n();
    if c != params.channels() {
        return Err(gerr(format!(
            "index table has {c} columns but gridsize {} needs {}",
            params.gridsize(),
            params.channels()
        )));
    }
    if n != params.n() {
        return Err(gerr(format!(
            "dataset patterns are {n}x{n} but params N = {}",
            params.n()
        )));
    }
    if g == 0 {
        return Err(gerr("index table is empty"));
    }
    if let Some(&bad) = nn_indices.iter().find(|&&i| i >= m) {
        return Err(gerr(format!(
            "index {bad} out of range for a dataset of {m} scan points"
        )));
    }
    let mut diffraction = Array4::<f32>::zeros((g, n, n, c));
    for b in 0..g {
        for j in 0..c {
            diffraction
                .slice_mut(s![b, .., .., j])
                .assign(&raw.diff3d.index_axis(Axis(0), nn_indices[[b, j]]));
        }
    }
    let (coords_nn, coords_offsets, coords_relative) =
        coords_tables(&raw.xcoords, &raw.ycoords, nn_indices);
    let (coords_start_nn, coords_start_offsets, coords_start_relative) =
        coords_tables(&raw.xcoords_start, &raw.ycoords_start, nn_indices);

    let y = if let Some(yy) = &raw.y {
        let mut out = Array4::<Complex32>::zeros((g, n, n, c));
        for b in 0..g {
            for j in 0..c {
                out.slice_mut(s![b, .., .., j])
                    .assign(&yy.index_axis(Axis(0), nn_indices[[b, j]]));
            }
        }
        Some(out)
    } else if let Some(obj) = &raw.object_guess {
        let centres: Vec<(f64, f64)> = (0..g * c)
            .map(|f| {
                let (b, j) = (f / c, f % c);
                match convention {
                    PatchConvention::Physical => (coords_nn[[b, 0, 0, j]], coords_nn[[b, 0, 1, j]]),
                    PatchConvention::ReferenceMirrored => (
                        coords_offsets[[b, 0, 0, 0]] + coords_relative[[b, 0, 0, j]],
                        coords_offsets[[b, 0, 1, 0]] + coords_relative[[b, 0, 1, j]],
                    ),
                }
            })
            .collect();
        let patches: Vec<_> = centres
            .par_iter()
            .map(|&(x, y)| extract_patch(obj.view(), x, y, n))
            .collect();
        let mut out = Array4::<Complex32>::zeros((g, n, n, c));
        for (f, p) in patches.iter().enumerate() {
            out.slice_mut(s![f / c, .., .., f % c])
                .zip_mut_with(p, |d, v| *d = Complex32::new(v.re as f32, v.im as f32));
        }
        Some(out)
    } else {
        None
    };
    let (x_full, norm_factor) = normalize::normalize(diffraction.view());
    Ok(GroupedData {
        diffraction,
        x_full,
        norm_factor,
        coords_nn,
        coords_offsets,
        coords_relative,
        coords_start_nn,
        coords_start_offsets,
        coords_start_relative,
        nn_indices: nn_indices.clone(),
        y,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_check_refuses_what_cannot_fit_and_names_n_groups() {
        // 1000 groups of 4×64×64 with ground truth: 1000 · 16384 · 16 bytes = 262 144 000.
        assert_eq!(grouped_bytes(1000, 64, 4, true), 262_144_000);
        assert_eq!(grouped_bytes(1000, 64, 4, false), 131_072_000);
        assert!(check_memory(1000, 1000, 64, 4, true, Some(262_144_000)).is_ok());
        let e = check_memory(1000, 1000, 64, 4, true, Some(262_143_999)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid `n_groups` = 1000: 1000 groups of 4×64×64"),
            "{msg}"
        );
        assert!(msg.contains("0.2 GiB of memory available"), "{msg}");
        assert!(!msg.contains('\n'));
        // Unknown memory: only absurd counts (beyond the address space) are refused.
        assert!(check_memory(1 << 20, 1 << 20, 64, 4, true, None).is_ok());
        let e = check_memory(usize::MAX, usize::MAX, 64, 4, true, None).unwrap_err();
        assert!(
            e.to_string().contains("what this machine can address"),
            "{e}"
        );
    }

    #[test]
    fn binomials() {
        assert_eq!(binom(4, 4), 1);
        assert_eq!(binom(7, 4), 35);
        assert_eq!(binom(3, 4), 0);
        // The oversampling pool relies on lexicographic combinations.
        let all: Vec<Vec<usize>> = (0..4).combinations(2).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[1], vec![0, 2]);
        assert_eq!(all[5], vec![2, 3]);
    }
}
