//! Model inputs of a grouped dataset, converted once to the model's channels-first layout, and
//! the per-batch gather.

use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::grouping::GroupedData;

/// `s·X` `(G, C, N, N)` and offsets `(G, C, 2)` (`[x, y]` pixels, from `coords_start_relative`),
/// host-side, contiguous per group so that a batch is one copy of `B` slices.
#[derive(Debug, Clone)]
pub struct ModelInputs {
    pub g: usize,
    pub c: usize,
    pub n: usize,
    /// Scaled amplitudes `s·X`, `(G, C, N, N)` row-major.
    pub x_scaled: Vec<f32>,
    /// Relative offsets, `(G, C, 2)` row-major.
    pub positions: Vec<f32>,
}

impl ModelInputs {
    /// Convert the channels-last grouped arrays and multiply by the intensity scale `s`.
    pub fn from_grouped(data: &GroupedData, s: f64) -> Self {
        let (g, n, _, c) = data.x_full.dim();
        let mut x_scaled = Vec::with_capacity(g * c * n * n);
        for gi in 0..g {
            for ci in 0..c {
                for h in 0..n {
                    for w in 0..n {
                        x_scaled.push((s * data.x_full[[gi, h, w, ci]] as f64) as f32);
                    }
                }
            }
        }
        let mut positions = Vec::with_capacity(g * c * 2);
        for gi in 0..g {
            for ci in 0..c {
                for k in 0..2 {
                    positions.push(data.coords_start_relative[[gi, 0, k, ci]] as f32);
                }
            }
        }
        Self {
            g,
            c,
            n,
            x_scaled,
            positions,
        }
    }

    /// The batch of groups `idx`: `(s·X (B, C, N, N), positions (B, C, 2))` on `device`.
    /// One buffer per tensor, filled by copying each group's contiguous slice.
    pub fn batch(&self, idx: &[usize], device: &Device) -> (Tensor<4>, Tensor<3>) {
        let b = idx.len();
        let per_x = self.c * self.n * self.n;
        let per_p = self.c * 2;
        let mut x = Vec::with_capacity(b * per_x);
        let mut p = Vec::with_capacity(b * per_p);
        for &i in idx {
            x.extend_from_slice(&self.x_scaled[i * per_x..(i + 1) * per_x]);
            p.extend_from_slice(&self.positions[i * per_p..(i + 1) * per_p]);
        }
        let xt = Tensor::from_data(
            TensorData::new(x, [b, self.c, self.n, self.n]),
            (device, DType::F32),
        );
        let pt = Tensor::from_data(TensorData::new(p, [b, self.c, 2]), (device, DType::F32));
        (xt, pt)
    }
}

/// Keras' `validation_split`: the first ⌊(1 − f)·G⌋ groups train, the rest validate.
pub fn split_sizes(g: usize, validation_fraction: f64) -> (usize, usize) {
    let n_train = ((1.0 - validation_fraction) * g as f64).floor() as usize;
    let n_train = n_train.min(g);
    (n_train, g - n_train)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_matches_keras() {
        assert_eq!(split_sizes(32, 0.05), (30, 2));
        assert_eq!(split_sizes(1024, 0.05), (972, 52));
        assert_eq!(split_sizes(100, 0.0), (100, 0));
        assert_eq!(split_sizes(20, 0.05), (19, 1));
    }
}
