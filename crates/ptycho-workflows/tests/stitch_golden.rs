//! Parity of `stitch::shift_and_sum` / `reassemble_position` with the reference
//! `tf_helper.reassemble_position` goldens (stitching.npz, see stitching.json).

use std::fs::File;
use std::time::Instant;

use ndarray::{Array2, Array3, Array4, Axis};
use ndarray_npy::NpzReader;
use num_complex::{Complex32, Complex64};
use ptycho_workflows::stitch::{reassemble_position, shift_and_sum};

mod common;

struct Golden {
    npz: NpzReader<File>,
    patches: Array3<Complex32>,
    centres: Vec<[f64; 2]>,
}

fn load() -> Golden {
    let mut npz = NpzReader::new(File::open(common::golden("stitching.npz")).unwrap()).unwrap();
    let p: Array4<Complex32> = npz.by_name("patches").unwrap();
    let patches = p.index_axis(Axis(3), 0).to_owned();
    let go: Array4<f64> = npz.by_name("global_offsets").unwrap();
    let centres = (0..go.shape()[0])
        .map(|g| [go[[g, 0, 0, 0]], go[[g, 0, 1, 0]]])
        .collect();
    Golden {
        npz,
        patches,
        centres,
    }
}

fn map2(npz: &mut NpzReader<File>, name: &str) -> Array2<Complex32> {
    let a: Array3<Complex32> = npz.by_name(name).unwrap();
    a.index_axis(Axis(2), 0).to_owned()
}

/// max |a − b| / max |b|
fn rel_err<A: Copy, B: Copy>(
    a: &Array2<A>,
    b: &Array2<B>,
    fa: impl Fn(A) -> Complex64,
    fb: impl Fn(B) -> Complex64,
) -> f64 {
    assert_eq!(a.dim(), b.dim());
    let mut maxd = 0.0f64;
    let mut maxb = 0.0f64;
    for (x, y) in a.iter().zip(b.iter()) {
        maxd = maxd.max((fa(*x) - fb(*y)).norm());
        maxb = maxb.max(fb(*y).norm());
    }
    maxd / maxb
}

fn c32(z: Complex32) -> Complex64 {
    Complex64::new(z.re as f64, z.im as f64)
}

#[test]
fn stitching_matches_reference_for_m10_and_m20() {
    let mut g = load();
    for m in [10usize, 20] {
        let sums = shift_and_sum(g.patches.view(), &g.centres, m).unwrap();
        let num_ref = map2(&mut g.npz, &format!("shift_and_sum_M{m}"));
        let den_ref = map2(&mut g.npz, &format!("overlap_count_M{m}"));
        let st_ref = map2(&mut g.npz, &format!("stitched_M{m}"));
        assert_eq!(sums.numerator.dim(), num_ref.dim(), "canvas size M={m}");
        let e_num = rel_err(&sums.numerator, &num_ref, |z| z, c32);
        let e_den = rel_err(&sums.overlap, &den_ref, |d| Complex64::new(d, 0.0), c32);
        let st = reassemble_position(g.patches.view(), &g.centres, m).unwrap();
        let e_st = rel_err(&st.object, &st_ref, c32, c32);
        // Where at least a tenth of a crop covers the pixel, compare pixel by pixel.
        let mut e_px = 0.0f64;
        for ((a, b), d) in st.object.iter().zip(st_ref.iter()).zip(sums.overlap.iter()) {
            if *d > 0.1 {
                e_px = e_px.max((c32(*a) - c32(*b)).norm() / c32(*b).norm().max(1e-3));
            }
        }
        eprintln!(
            "M={m}: S={} pad={} origin={:?} rel. max err numerator {e_num:.2e}, overlap {e_den:.2e}, stitched {e_st:.2e}, per-pixel (overlap>0.1) {e_px:.2e}",
            st.object.nrows(),
            st.pad,
            st.origin
        );
        assert!(e_num < 1e-6, "numerator M={m}: {e_num}");
        assert!(e_den < 1e-6, "overlap M={m}: {e_den}");
        assert!(e_st < 1e-6, "stitched M={m}: {e_st}");
        assert!(e_px < 1e-6, "stitched per pixel M={m}: {e_px}");
    }
}

#[test]
fn stitching_512_patches_is_fast() {
    // Timing only (asserts a loose bound; the report quotes the optimised-build figure).
    let g = load();
    let n = 64;
    let reps = 8;
    let mut patches = Array3::<Complex32>::zeros((512, n, n));
    let mut centres = Vec::with_capacity(512);
    for k in 0..512 {
        patches
            .index_axis_mut(Axis(0), k)
            .assign(&g.patches.index_axis(Axis(0), k % 64));
        let c = g.centres[k % 64];
        centres.push([c[0] + (k / 64) as f64 * 0.37, c[1] - (k / 64) as f64 * 0.21]);
    }
    let _ = reassemble_position(patches.view(), &centres, 20).unwrap();
    let t0 = Instant::now();
    for _ in 0..reps {
        std::hint::black_box(reassemble_position(patches.view(), &centres, 20).unwrap());
    }
    let ms = t0.elapsed().as_secs_f64() * 1e3 / reps as f64;
    eprintln!("stitching 512 patches N=64 M=20: {ms:.2} ms per call");
    assert!(ms < 1000.0, "{ms} ms");
}
