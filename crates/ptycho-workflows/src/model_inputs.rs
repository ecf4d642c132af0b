//! Model inputs of a grouped dataset, converted once to the model's channels-first layout
//! (`s·X` `(B, C, N, N)`, offsets `(B, C, 2)`), and the per-batch gather.

use burn::tensor::{DType, Device, Tensor, TensorData};
use ptycho_model::physics::shift_matrix;

use crate::grouping::GroupedData;

/// Which relative offsets feed the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSource {
    /// `coords_start_relative`: what the reference's training loader feeds (TF-LOADER-COORDS-001).
    Start,
    /// `coords_relative`: what the reference's inference feeds.
    Nominal,
}

/// `s·X` `(G, C, N, N)` and offsets `(G, C, 2)` (`[x, y]` pixels), host-side, contiguous per group
/// so that a batch is one copy of `B` slices. Used by training and inference alike.
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
    /// Convert the channels-last grouped arrays and multiply by the intensity scale `s`; the
    /// offsets come from `coords_start_relative` or `coords_relative` as `source` says.
    pub fn from_grouped(data: &GroupedData, s: f64, source: OffsetSource) -> Self {
        let offsets = match source {
            OffsetSource::Start => &data.coords_start_relative,
            OffsetSource::Nominal => &data.coords_relative,
        };
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
                    positions.push(offsets[[gi, 0, k, ci]] as f32);
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

/// Ground truth of the real-space loss (spec §5.3): the amplitude `|Y|` of each group's first
/// member, translated by `−r` (its relative offset, the reference's `center_channels`) so that it
/// is centred on the group centre like the predicted object; `(G, N, N)`, host-side.
#[derive(Debug, Clone)]
pub struct RealspaceTruth {
    pub g: usize,
    pub n: usize,
    /// `(G, N, N)` row-major.
    pub amp: Vec<f32>,
}

impl RealspaceTruth {
    /// From the grouped ground-truth patches `Y` (`None` when the data have none) and the
    /// offsets the model is fed (`source`, as [`ModelInputs::from_grouped`]).
    pub fn from_grouped(data: &GroupedData, source: OffsetSource) -> Option<Self> {
        let y = data.y.as_ref()?;
        let offsets = match source {
            OffsetSource::Start => &data.coords_start_relative,
            OffsetSource::Nominal => &data.coords_relative,
        };
        let (g, n, _, _) = y.dim();
        let mut amp = Vec::with_capacity(g * n * n);
        for gi in 0..g {
            let a = y
                .slice(ndarray::s![gi, .., .., 0])
                .mapv(|z| z.norm() as f64);
            let (rx, ry) = (offsets[[gi, 0, 0, 0]], offsets[[gi, 0, 1, 0]]);
            // T(a, −r) with the bilinear rule of `physics::translate` (real image).
            let centred = if rx == 0.0 && ry == 0.0 {
                a
            } else {
                let sy = shift_matrix(n, n, -ry);
                let sx = shift_matrix(n, n, -rx);
                let rows: ndarray::Array2<f64> = sy.dot(&a);
                rows.dot(&sx.t())
            };
            amp.extend(centred.iter().map(|&v| v as f32));
        }
        Some(Self { g, n, amp })
    }

    /// The batch of groups `idx` as `(B, 1, N, N)` on `device`.
    pub fn batch(&self, idx: &[usize], device: &Device) -> Tensor<4> {
        let per = self.n * self.n;
        let mut v = Vec::with_capacity(idx.len() * per);
        for &i in idx {
            v.extend_from_slice(&self.amp[i * per..(i + 1) * per]);
        }
        Tensor::from_data(
            TensorData::new(v, [idx.len(), 1, self.n, self.n]),
            (device, DType::F32),
        )
    }
}
