//! The real-space loss (spec §5.3: total variation, amplitude MAE against the ground truth) and
//! the bad-pixel mask of the diffraction losses: values on small inputs computed by hand, a
//! finite-difference check of the gradients, and the mask's independence of hidden pixels.

use burn::tensor::{DType, Device, Tensor};
use ptycho_model::loss::{
    LossWeights, PixelMask, amplitude_mae, loss_with, mae_masked, poisson_nll_masked,
    realspace_loss, total_variation,
};
use ptycho_model::{AutoencoderOutput, ComplexTensor, ModelError, ops};

fn t4(v: Vec<f64>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    ops::tensor_from(v, shape, device, DType::F64)
}

fn scalar(t: Tensor<1>) -> f64 {
    ops::to_vec_f64(t).unwrap()[0]
}

fn rs_weights(tv: f64, realspace_mae: f64) -> LossWeights {
    LossWeights {
        realspace: 1.0,
        realspace_mae,
        tv,
        ..Default::default()
    }
}

#[test]
fn total_variation_of_a_tiny_complex_batch_is_the_batch_sum() {
    let d = Device::flex();
    // Sample 0: re [[1, 2], [4, 8]], im [[0, 1], [1, 0]]; sample 1: constant 5 + 5i.
    // Re: vertical (4−1)² + (8−2)² = 45, horizontal (2−1)² + (8−4)² = 17;
    // Im: vertical 1 + 1, horizontal 1 + 1 → TV = 45 + 17 + 4 = 66 (+ 0 for sample 1).
    let re = t4(
        vec![1.0, 2.0, 4.0, 8.0, 5.0, 5.0, 5.0, 5.0],
        [2, 1, 2, 2],
        &d,
    );
    let im = t4(
        vec![0.0, 1.0, 1.0, 0.0, 5.0, 5.0, 5.0, 5.0],
        [2, 1, 2, 2],
        &d,
    );
    let tv = scalar(total_variation(&ComplexTensor::new(re, im)));
    assert_eq!(tv, 66.0);
}

#[test]
fn amplitude_mae_of_known_arrays() {
    let d = Device::flex();
    // z = [3+4i, 0, 1, −2i] → |z| = [5, 0, 1, 2]; truth [5, 1, 0.5, 2] → |diff| = [0, 1, 0.5, 0].
    let z = ComplexTensor::new(
        t4(vec![3.0, 0.0, 1.0, 0.0], [1, 1, 2, 2], &d),
        t4(vec![4.0, 0.0, 0.0, -2.0], [1, 1, 2, 2], &d),
    );
    let truth = t4(vec![5.0, 1.0, 0.5, 2.0], [1, 1, 2, 2], &d);
    let v = scalar(amplitude_mae(&z, truth));
    assert!((v - 0.375).abs() < 1e-12, "{v}");
}

#[test]
fn realspace_loss_masks_the_border_when_probe_big_is_false() {
    let d = Device::flex();
    // A constant object 1 (N = 4): TV 0 as it is; times the central mask (1 on [1, 3)²) every
    // row and column through the centre steps 0 → 1 → 1 → 0: 2 per line, 2 lines per axis,
    // TV = 8 (real part only).
    let obj = ComplexTensor::new(
        t4(vec![1.0; 16], [1, 1, 4, 4], &d),
        t4(vec![0.0; 16], [1, 1, 4, 4], &d),
    );
    let w = rs_weights(0.5, 0.0);
    assert_eq!(scalar(realspace_loss(&obj, None, &w, true).unwrap()), 0.0);
    assert_eq!(scalar(realspace_loss(&obj, None, &w, false).unwrap()), 4.0);
    // With the MAE: truth 1 everywhere; masked prediction |z| = 0 on the 12 border pixels.
    let truth = t4(vec![1.0; 16], [1, 1, 4, 4], &d);
    let w = rs_weights(0.5, 2.0);
    let v = scalar(realspace_loss(&obj, Some(truth), &w, false).unwrap());
    assert!((v - (4.0 + 2.0 * 12.0 / 16.0)).abs() < 1e-9, "{v}");
    // The MAE term without ground truth is an error, not a silent 0.
    assert!(matches!(
        realspace_loss(&obj, None, &w, true),
        Err(ModelError::MissingGroundTruth)
    ));
}

#[test]
fn total_objective_adds_the_weighted_realspace_term() {
    let d = Device::flex();
    let amp = t4(vec![1.0, 2.0, 3.0, 4.0], [1, 1, 2, 2], &d);
    let target = t4(vec![1.5, 2.0, 2.0, 4.0], [1, 1, 2, 2], &d);
    let obj = ComplexTensor::new(
        t4(vec![1.0, 2.0, 4.0, 8.0], [1, 1, 2, 2], &d),
        t4(vec![0.0, 1.0, 1.0, 0.0], [1, 1, 2, 2], &d),
    );
    let out = AutoencoderOutput {
        obj,
        pred_intensity: amp.clone().powi_scalar(2),
        pred_amp_scaled: amp,
    };
    let w = LossWeights {
        nll: 0.5,
        mae: 0.25,
        realspace: 2.0,
        realspace_mae: 0.0,
        tv: 0.1,
    };
    let t = loss_with(&out, target, None, &w, true, None).unwrap();
    let (nll, mae, rs, total) = (
        scalar(t.nll),
        scalar(t.mae),
        scalar(t.realspace),
        scalar(t.total),
    );
    // λ = [1, 4, 9, 16], y = [2.25, 4, 4, 16]: mean(λ − y ln λ).
    let lam = [1.0f64, 4.0, 9.0, 16.0];
    let y = [2.25f64, 4.0, 4.0, 16.0];
    let nll_hand = lam.iter().zip(&y).map(|(l, y)| l - y * l.ln()).sum::<f64>() / 4.0;
    assert!((nll - nll_hand).abs() < 1e-9, "{nll} vs {nll_hand}");
    assert!((mae - 1.5 / 4.0).abs() < 1e-12, "{mae}");
    assert!((rs - 6.6).abs() < 1e-9, "{rs}"); // 0.1 · TV 66
    assert!((total - (0.5 * nll_hand + 0.25 * 0.375 + 2.0 * 6.6)).abs() < 1e-9);
    // Off (realspace weight 0): the term is exactly 0 and the total the PINN objective.
    let off = LossWeights {
        realspace: 0.0,
        ..w
    };
    let t = loss_with(&out, out.pred_amp_scaled.clone(), None, &off, true, None).unwrap();
    assert_eq!(scalar(t.realspace), 0.0);
}

fn vals(seed: f64, len: usize, scale: f64, offset: f64) -> Vec<f64> {
    (0..len)
        .map(|k| offset + scale * ((k as f64 * 0.731 + seed).sin() * 1.3 + (k as f64 * 0.29).cos()))
        .collect()
}

#[test]
fn realspace_gradients_match_finite_differences_in_f64() {
    const N: usize = 8;
    let sh = [2, 1, N, N];
    let len = 2 * N * N;
    let ad = Device::flex().autodiff();
    let plain = Device::flex();
    let re0 = vals(1.0, len, 0.5, 0.4);
    let im0 = vals(2.0, len, 0.5, -0.3);
    let truth = vals(3.0, len, 0.3, 1.5);
    let w = rs_weights(0.3, 1.7);
    let chain = |re: Tensor<4>, im: Tensor<4>, dev: &Device| {
        let t = t4(truth.clone(), sh, dev).abs();
        realspace_loss(&ComplexTensor::new(re, im), Some(t), &w, false).unwrap()
    };
    let o_re = t4(re0.clone(), sh, &ad).require_grad();
    let o_im = t4(im0.clone(), sh, &ad).require_grad();
    let l = chain(o_re.clone(), o_im.clone(), &ad);
    let grads = l.backward();
    let g_re = ops::to_vec_f64(o_re.grad(&grads).unwrap()).unwrap();
    let g_im = ops::to_vec_f64(o_im.grad(&grads).unwrap()).unwrap();
    let eval = |re: &[f64], im: &[f64]| {
        scalar(chain(
            t4(re.to_vec(), sh, &plain),
            t4(im.to_vec(), sh, &plain),
            &plain,
        ))
    };
    let h = 1e-6;
    let mut checked = 0;
    // Centre pixels (both terms) and border pixels (masked: TV of the mask edge only, gradient 0).
    for &k in &[0usize, 9, 18, 27, 28, 36, 45, 63, 64 + 19, 64 + 42, 127] {
        for (part, g) in [(0, &g_re), (1, &g_im)] {
            let (mut p, mut m) = ((re0.clone(), im0.clone()), (re0.clone(), im0.clone()));
            let (pv, mv) = if part == 0 {
                (&mut p.0, &mut m.0)
            } else {
                (&mut p.1, &mut m.1)
            };
            pv[k] += h;
            mv[k] -= h;
            let fd = (eval(&p.0, &p.1) - eval(&m.0, &m.1)) / (2.0 * h);
            assert!(
                (fd - g[k]).abs() <= 1e-6 * (1.0 + fd.abs()),
                "element {k} part {part}: finite difference {fd} vs autodiff {}",
                g[k]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 22);
    // The check is not vacuous: some centre gradients are far from 0.
    assert!(g_re[27].abs() > 1e-3 && g_im[36].abs() > 1e-3);
    // Border pixels take no part (central mask, probe_big false).
    assert_eq!(g_re[0], 0.0);
}

#[test]
fn a_masked_pixel_takes_no_part_in_nll_and_mae() {
    let d = Device::flex();
    const N: usize = 4;
    let sh = [2, 1, N, N];
    let pred = vals(4.0, 2 * N * N, 0.4, 2.0);
    let target = vals(5.0, 2 * N * N, 0.4, 2.0);
    let mut bad = vec![false; N * N];
    bad[N + 2] = true; // pixel [1, 2]
    let mask = PixelMask::from_bad(N, &bad).unwrap();
    assert_eq!(mask.n_good(), 15);
    let eval = |target: &[f64], mask: Option<&PixelMask>| {
        let p = t4(pred.clone(), sh, &d);
        let t = t4(target.to_vec(), sh, &d);
        (
            scalar(poisson_nll_masked(p.clone().powi_scalar(2), t.clone(), mask).unwrap()),
            scalar(mae_masked(p, t, mask).unwrap()),
        )
    };
    let base = eval(&target, Some(&mask));
    // Change the measured value at the masked pixel (both samples): identical losses.
    let mut changed = target.clone();
    changed[N + 2] = 1e3;
    changed[N * N + N + 2] = 0.0;
    assert_eq!(eval(&changed, Some(&mask)), base);
    // ... but without the mask the losses change, and at an unmasked pixel too.
    assert_ne!(eval(&changed, None), eval(&target, None));
    let mut other = target.clone();
    other[N + 1] = 1e3;
    assert_ne!(eval(&other, Some(&mask)), base);
    // The mean is over the 2·15 good values.
    let mae_hand = (0..2 * N * N)
        .filter(|k| k % (N * N) != N + 2)
        .map(|k| (pred[k] - target[k]).abs())
        .sum::<f64>()
        / 30.0;
    assert!(
        (base.1 - mae_hand).abs() < 1e-12,
        "{} vs {mae_hand}",
        base.1
    );
    // A mask hiding every pixel, or of the wrong size, is refused.
    assert!(matches!(
        PixelMask::from_bad(2, &[true; 4]),
        Err(ModelError::BadPixelMask { .. })
    ));
    assert!(PixelMask::from_bad(4, &[false; 15]).is_err());
}
