//! Per-sample group reassembly vs model_reassembly_gs2.npz (TF ReassemblePatchesLayer,
//! TrimReconstructionLayer, ExtractPatchesPositionLayer).

mod common;

use std::fs::File;

use burn::tensor::{DType, Device};
use ndarray::{Array4, s};
use ndarray_npy::NpzReader;
use num_complex::Complex32;
use ptycho_model::{ComplexTensor, Offsets, ops, reassembly};

/// Channels-last `(B, N, N, C)` complex → channels-first `(B, C, N, N)`.
fn to_cf(a: &Array4<Complex32>, device: &Device) -> ComplexTensor {
    let p = a.view().permuted_axes([0, 3, 1, 2]);
    let (b, c, n, m) = p.dim();
    let re: Vec<f64> = p.iter().map(|z| z.re as f64).collect();
    let im: Vec<f64> = p.iter().map(|z| z.im as f64).collect();
    ComplexTensor::new(
        ops::tensor_from(re, [b, c, n, m], device, DType::F32),
        ops::tensor_from(im, [b, c, n, m], device, DType::F32),
    )
}

/// Per-sample reassembly onto the 78×78 canvas with the model's central mask.
fn reassemble(z: ComplexTensor, off: &Offsets) -> ComplexTensor {
    let cm = reassembly::central_mask(64, &z.re.device(), DType::F32);
    reassembly::reassemble(z, off, 78, cm)
}

/// Positions `(B, 1, 2, C)` → Offsets `(B, C, 2)`.
fn offsets(a: &Array4<f32>) -> Offsets {
    let (b, _, _, c) = a.dim();
    let mut data = Vec::new();
    for bi in 0..b {
        for ci in 0..c {
            data.push(a[[bi, 0, 0, ci]] as f64);
            data.push(a[[bi, 0, 1, ci]] as f64);
        }
    }
    Offsets { b, c, data }
}

fn interleave(z: ComplexTensor) -> Vec<f64> {
    ops::to_vec_f64(z.re)
        .unwrap()
        .into_iter()
        .zip(ops::to_vec_f64(z.im).unwrap())
        .flat_map(|(r, i)| [r, i])
        .collect()
}

fn golden(a: &Array4<Complex32>) -> Vec<f64> {
    // (B, H, W, 1) channels-last = (B, 1, H, W) channels-first for one channel.
    a.iter().flat_map(|z| [z.re as f64, z.im as f64]).collect()
}

#[test]
fn b8_canvas_trim_and_extract_match_reference() {
    let mut z =
        NpzReader::new(File::open(common::golden("model_reassembly_gs2.npz")).unwrap()).unwrap();
    let patches: Array4<Complex32> = z.by_name("B8_patches_in").unwrap();
    let pos: Array4<f32> = z.by_name("B8_positions_in").unwrap();
    let padded: Array4<Complex32> = z.by_name("B8_padded_obj").unwrap();
    let trimmed: Array4<Complex32> = z.by_name("B8_trimmed_obj").unwrap();
    let extracted: Array4<Complex32> = z.by_name("B8_extracted_patches").unwrap();
    let mean: f64 = pos.iter().map(|v| *v as f64).sum::<f64>() / pos.len() as f64;
    eprintln!("mean of all B*C position components: {mean:.3e}");

    let device = Device::flex();
    let z = to_cf(&patches, &device);
    let off = offsets(&pos);
    let canvas = reassemble(z, &off);
    assert_eq!(canvas.dims(), [8, 1, 78, 78]);
    let e = common::rel_err(&interleave(canvas.clone()), &golden(&padded));
    eprintln!("B8 padded_obj rel err {e:.2e}");
    assert!(e <= 1e-5);
    let trimmed_obj = canvas.clone().map(|t| reassembly::trim(t, 64));
    let e = common::rel_err(&interleave(trimmed_obj), &golden(&trimmed));
    eprintln!("B8 trimmed_obj rel err {e:.2e}");
    assert!(e <= 1e-5);
    let ex = reassembly::extract(canvas, &off, 64);
    assert_eq!(ex.dims(), [8, 4, 64, 64]);
    // flat index b·C + c == channels-first (b, c) order.
    let e = common::rel_err(&interleave(ex), &golden(&extracted));
    eprintln!("B8 extracted rel err {e:.2e}");
    assert!(e <= 1e-5);
}

#[test]
fn b16_is_per_sample_not_the_reference_batch_collapse() {
    let mut z =
        NpzReader::new(File::open(common::golden("model_reassembly_gs2.npz")).unwrap()).unwrap();
    let patches: Array4<Complex32> = z.by_name("B16_patches_in").unwrap();
    let pos: Array4<f32> = z.by_name("B16_positions_in").unwrap();
    let collapsed: Array4<Complex32> = z.by_name("B16_padded_obj").unwrap();
    let device = Device::flex();
    let z = to_cf(&patches, &device);
    let off = offsets(&pos);
    let canvas = reassemble(z, &off);
    assert_eq!(canvas.dims(), [16, 1, 78, 78]);
    let all = interleave(canvas);
    let per = 78 * 78 * 2;
    for b in 0..16 {
        let one = patches.slice(s![b..b + 1, .., .., ..]).to_owned();
        let z1 = to_cf(&one, &device);
        let o1 = Offsets {
            b: 1,
            c: 4,
            data: off.data[b * 8..b * 8 + 8].to_vec(),
        };
        let single = interleave(reassemble(z1, &o1));
        let e = common::rel_err(&all[b * per..(b + 1) * per], &single);
        assert!(
            e <= 1e-6,
            "group {b}: batched differs from single-group result by {e}"
        );
        let c = common::rel_err(&all[b * per..(b + 1) * per], &golden(&collapsed));
        assert!(c > 1e-2, "group {b} equals the collapsed reference canvas");
    }
}
