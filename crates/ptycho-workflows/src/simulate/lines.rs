//! The synthetic 'lines' object (spec §8.2).

use ndarray::{Array2, s};
use ptycho_model::physics::gaussian_filter;
use rand::RngExt;
use rand::rngs::StdRng;

/// Number of random line segments drawn on the `2S × 2S` canvas.
pub const N_LINES: usize = 400;

/// Pixels of the digital line from `(r0, c0)` to `(r1, c1)`, both ends included (Bresenham).
pub fn line_pixels(r0: i64, c0: i64, r1: i64, c1: i64) -> Vec<(i64, i64)> {
    let (dr, dc) = ((r1 - r0).abs(), (c1 - c0).abs());
    let (sr, sc) = ((r1 - r0).signum(), (c1 - c0).signum());
    let mut out = Vec::with_capacity(dr.max(dc) as usize + 1);
    let (mut r, mut c) = (r0, c0);
    let mut err = dc - dr;
    loop {
        out.push((r, c));
        if r == r1 && c == c1 {
            break;
        }
        let e2 = 2 * err;
        if e2 > -dr {
            err -= dr;
            c += sc;
        }
        if e2 < dc {
            err += dc;
            r += sr;
        }
    }
    out
}

/// The real 'lines' amplitude image of side `size` (S): 400 random unit lines on a `2S × 2S`
/// canvas, `G₁ + 2·G₅ + 5·G₁₀` Gaussian smoothing (σ in pixels), centre crop `[S/2, 3S/2)²`.
pub fn lines_object(size: usize, rng: &mut StdRng) -> Array2<f64> {
    let big = 2 * size;
    let mut canvas = Array2::<f64>::zeros((big, big));
    for _ in 0..N_LINES {
        let p: [i64; 4] = std::array::from_fn(|_| rng.random_range(0..big as i64));
        for (r, c) in line_pixels(p[0], p[1], p[2], p[3]) {
            canvas[[r as usize, c as usize]] = 1.0;
        }
    }
    let g1 = gaussian_filter(canvas.view(), 1.0);
    let g5 = gaussian_filter(canvas.view(), 5.0);
    let g10 = gaussian_filter(canvas.view(), 10.0);
    let img = g1 + g5 * 2.0 + g10 * 5.0;
    let lo = size / 2;
    img.slice(s![lo..lo + size, lo..lo + size]).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn bresenham_endpoints_and_connectivity() {
        let px = line_pixels(0, 0, 3, 7);
        assert_eq!(px.first(), Some(&(0, 0)));
        assert_eq!(px.last(), Some(&(3, 7)));
        assert_eq!(px.len(), 8);
        for w in px.windows(2) {
            assert!((w[1].0 - w[0].0).abs() <= 1 && (w[1].1 - w[0].1).abs() <= 1);
        }
        assert_eq!(line_pixels(5, 5, 5, 5), vec![(5, 5)]);
        assert_eq!(line_pixels(4, 2, 0, 2).len(), 5);
    }

    #[test]
    fn lines_object_has_reference_range() {
        let mut rng = StdRng::seed_from_u64(1);
        let o = lines_object(224, &mut rng);
        assert_eq!(o.dim(), (224, 224));
        let min = o.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = o.iter().cloned().fold(0.0, f64::max);
        // Reference observed ≈ 1.8–6.0 on its two datasets.
        assert!(min > 1.0 && min < 3.0, "min {min}");
        assert!(max > 4.5 && max < 7.5, "max {max}");
    }
}
