//! Diffraction normalisation and intensity scales (spec §3).

use ndarray::{Array4, ArrayView4, Axis};

/// Normalisation factor of a grouped diffraction stack `(G, N, N, C)` of amplitudes:
/// `f = sqrt((N/2)² / mean_{g,c} Σ_{h,w} d²)`, accumulated in f64 (spec §3.1). After scaling,
/// the mean per-pattern energy Σ X² is (N/2)². Returns 1 for an all-zero stack.
pub fn normalization_factor(diffraction: ArrayView4<f32>) -> f64 {
    let (g, n, _, c) = diffraction.dim();
    let energy: f64 = diffraction
        .axis_iter(Axis(0))
        .map(|grp| grp.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>())
        .sum();
    factor_of_mean(energy, g * c, n)
}

/// [`normalization_factor`] of the grouped stack whose patterns have the energies `Σ_{h,w} d²`
/// given (one per group member, repeats included), patterns `n×n`: the same factor without
/// holding the stack (equal up to the order of the float64 sums).
pub fn normalization_factor_of_energies(energies: impl IntoIterator<Item = f64>, n: usize) -> f64 {
    let (sum, count) = energies
        .into_iter()
        .fold((0.0, 0usize), |(s, c), e| (s + e, c + 1));
    factor_of_mean(sum, count, n)
}

fn factor_of_mean(energy: f64, patterns: usize, n: usize) -> f64 {
    if patterns == 0 {
        return 1.0;
    }
    let mean = energy / patterns as f64;
    if mean <= 0.0 {
        return 1.0;
    }
    let half = n as f64 / 2.0;
    (half * half / mean).sqrt()
}

/// `X = f · diffraction` as f32, with `f` from [`normalization_factor`]; returns `(X, f)`.
pub fn normalize(diffraction: ArrayView4<f32>) -> (Array4<f32>, f64) {
    let f = normalization_factor(diffraction);
    (diffraction.mapv(|v| (f * v as f64) as f32), f)
}

/// Training intensity scale `s = sqrt(nphotons) / (N/2)` (spec §3.2): maps normalised
/// amplitudes to photon-count amplitudes.
pub fn intensity_scale(nphotons: f64, n: usize) -> f64 {
    nphotons.sqrt() / (n as f64 / 2.0)
}

/// Dataset-derived scale `sqrt(nphotons / mean_p Σ_{h,w} a²)` over patterns `p` of an amplitude
/// stack `(P, N, N)` or `(G, N, N, C)` given as an iterator of per-pattern energies' sources
/// (`diffsim.scale_nphotons`, the loader's `norm_Y_I`).
pub fn scale_nphotons(pattern_energies: impl IntoIterator<Item = f64>, nphotons: f64) -> f64 {
    let (sum, count) = pattern_energies
        .into_iter()
        .fold((0.0, 0usize), |(s, c), e| (s + e, c + 1));
    if count == 0 || sum <= 0.0 {
        return 1.0;
    }
    (nphotons / (sum / count as f64)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_energy_is_n_half_squared() {
        let d = Array4::from_shape_fn((3, 8, 8, 2), |(g, h, w, c)| (g + h * w + c) as f32 * 0.1);
        let (x, _) = normalize(d.view());
        let e: f64 = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / 6.0;
        assert!((e - 16.0).abs() < 1e-4);
        assert!((intensity_scale(1e9, 64) - 988.211_768_802_618_8).abs() < 1e-9);
    }
}
