//! Finite differences in float64 vs autodiff through the physics chain
//! (object patches → reassembly → re-extraction → illumination with blur and mask → far field
//! → × s → Poisson NLL + MAE). The network itself is replaced by a trainable input tensor: model
//! parameters are created in the device's default float dtype (f32), see the report.

use burn::tensor::{DType, Device, Tensor};
use ptycho_model::{ComplexTensor, Offsets, loss, ops, reassembly};

const N: usize = 16;
const C: usize = 4;
const P: usize = 30;

fn vals(seed: f64, len: usize, scale: f64, offset: f64) -> Vec<f64> {
    (0..len)
        .map(|k| {
            offset + scale * ((k as f64 * 0.731 + seed).sin() * 1.7 + (k as f64 * 0.123).cos())
        })
        .collect()
}

fn chain(o_re: Tensor<4>, o_im: Tensor<4>, device: &Device) -> Tensor<1> {
    let off = Offsets {
        b: 1,
        c: C,
        data: vec![-2.3, -1.7, 1.6, -2.2, -1.9, 2.4, 2.1, 1.8],
    };
    let cm = reassembly::central_mask(N, device, DType::F64);
    let canvas = reassembly::reassemble(ComplexTensor::new(o_re, o_im), &off, P, cm);
    let patches = reassembly::extract(canvas, &off, N);
    let probe_re = ops::tensor_from(vals(1.0, N * N, 0.3, 1.0), [1, 1, N, N], device, DType::F64);
    let probe_im = ops::tensor_from(vals(2.0, N * N, 0.3, 0.0), [1, 1, N, N], device, DType::F64);
    let mask = ops::tensor2(&ptycho_model::physics::disk_mask(N), device, DType::F64)
        .reshape([1, 1, N, N]);
    let probe = ComplexTensor::new(probe_re, probe_im);
    let psi = ops::illuminate(patches, probe, 0.8, Some(mask));
    let f = ops::DftMats::new(N, device, DType::F64);
    let s = 7.5;
    let amp = ops::far_field_amplitude(psi, &f, ops::AMP_EPS) * s;
    let target = ops::tensor_from(
        vals(3.0, C * N * N, 0.5, 2.0),
        [1, C, N, N],
        device,
        DType::F64,
    )
    .abs()
        * s;
    loss::poisson_nll(amp.clone().powi_scalar(2), target.clone()) + loss::mae(amp, target) * 0.5
}

#[test]
fn autodiff_matches_finite_differences_in_f64() {
    let ad = Device::flex().autodiff();
    let plain = Device::flex();
    let re0 = vals(4.0, C * N * N, 0.4, 0.8);
    let im0 = vals(5.0, C * N * N, 0.4, -0.1);
    let sh = [1, C, N, N];
    let o_re = ops::tensor_from(re0.clone(), sh, &ad, DType::F64).require_grad();
    let o_im = ops::tensor_from(im0.clone(), sh, &ad, DType::F64).require_grad();
    let l = chain(o_re.clone(), o_im.clone(), &ad);
    assert_eq!(l.dtype(), DType::F64);
    let grads = l.backward();
    let g_re = ops::to_vec_f64(o_re.grad(&grads).unwrap()).unwrap();
    let g_im = ops::to_vec_f64(o_im.grad(&grads).unwrap()).unwrap();

    let eval = |re: &[f64], im: &[f64]| {
        let r = ops::tensor_from(re.to_vec(), sh, &plain, DType::F64);
        let i = ops::tensor_from(im.to_vec(), sh, &plain, DType::F64);
        ops::to_vec_f64(chain(r, i, &plain)).unwrap()[0]
    };
    let h = 1e-6;
    let gmax = g_re.iter().chain(&g_im).fold(0.0f64, |m, v| m.max(v.abs()));
    let mut worst = 0.0f64;
    // Centre pixels, border pixels (reassembly ×1000 gain region) and every channel.
    for &k in &[
        0usize,
        17,
        120,
        136,
        255,
        256 + 68,
        512 + 200,
        768 + 255,
        768 + 90,
    ] {
        for part in 0..2 {
            let (mut re, mut im) = (re0.clone(), im0.clone());
            let g = if part == 0 { g_re[k] } else { g_im[k] };
            {
                let v = if part == 0 { &mut re } else { &mut im };
                v[k] += h;
            }
            let lp = eval(&re, &im);
            {
                let v = if part == 0 { &mut re } else { &mut im };
                v[k] -= 2.0 * h;
            }
            let lm = eval(&re, &im);
            let fd = (lp - lm) / (2.0 * h);
            let rel = (g - fd).abs() / fd.abs().max(1e-3 * gmax);
            worst = worst.max(rel);
            assert!(
                rel <= 1e-4,
                "k={k} part={part}: autodiff {g} vs fd {fd} (rel {rel:.2e})"
            );
        }
    }
    eprintln!("gradcheck: worst relative difference {worst:.2e} (max |grad| {gmax:.3e})");
}
