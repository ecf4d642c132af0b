//! Ptychodus products: [`write_ptychodus_product`] writes a stitched reconstruction, the probe,
//! the scan positions and the training loss history as a Ptychodus 1.7 NPZ product (the layout of
//! `ptychodus/plugins/npz_product_file.py`, which loads it with `NPZProductFileIO().read(path)`).
//!
//! Units and conventions of the product (Ptychodus's):
//! - lengths in metres, photon energy in eV; object and probe pixels are square, of side
//!   [`ProductMetadata::pixel_size_m`];
//! - probe position `i` is test scan point `i` (index `i`), at `x_m = xcoords[i] · pixel`,
//!   `y_m = ycoords[i] · pixel` (object pixels → metres; `[x, y]` = `[column, row]`);
//! - the object is the stitched canvas `(1, H, W)` complex64 with centre
//!   `center_x_m = (origin_x + (W − 1)/2) · pixel`, `center_y_m = (origin_y + (H − 1)/2) · pixel`,
//!   so that Ptychodus's `ObjectGeometry.map_probe_positions_to_object_x_px`,
//!   `(x_m − center_x_m)/pixel + (W − 1)/2`, gives `xcoords[i] − origin_x`: the canvas column
//!   where the stitcher put scan point `i` (the same for rows);
//! - the probe is the test data's `probeGuess` as `(1, 1, N, N)` complex64 (one OPR mode, one
//!   coherent mode);
//! - the loss history is `loss_epochs` (int64, counted from 0 as Ptychodus's own reconstructors
//!   count them) and `loss_values` (float64, the training loss of each epoch).

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use ndarray::{Array0, Array1, Axis};
use ndarray_npy::{NpzWriter, WriteNpzError};
use ptycho_persist::{LossRecord, write_atomic};

use crate::data::{ScanHeader, UnicodeScalar};
use crate::error::{Result, WorkflowError};
use crate::reconstruction::Reconstruction;

/// Every key [`write_ptychodus_product`] writes, in writing order.
pub const PRODUCT_KEYS: [&str; 25] = [
    "name",
    "comments",
    "detector_object_distance_m",
    "photon_energy_eV",
    "probe_photon_count",
    "exposure_time_s",
    "mass_attenuation_m2_per_kg",
    "tomography_angle_deg",
    "focus_object_distance_m",
    "tilt_angle_deg",
    "far_field",
    "probe_position_indexes",
    "probe_position_x_m",
    "probe_position_y_m",
    "probe",
    "probe_pixel_width_m",
    "probe_pixel_height_m",
    "object",
    "object_center_x_m",
    "object_center_y_m",
    "object_pixel_width_m",
    "object_pixel_height_m",
    "object_layer_spacing_m",
    "loss_epochs",
    "loss_values",
];

/// What a product needs beyond the reconstruction and the test data: the physical geometry,
/// which ptycho itself never uses (it works in object pixels), and the product's name.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductMetadata {
    /// Product name (`name`); `ptycho infer` uses the test file's stem.
    pub name: String,
    /// Free text (`comments`).
    pub comments: String,
    /// Side of an object pixel (and of a probe pixel), metres; > 0.
    pub pixel_size_m: f64,
    /// Photon energy, eV (`photon_energy_eV`); > 0.
    pub photon_energy_ev: f64,
    /// Detector–object distance, metres (`detector_object_distance_m`); > 0.
    pub detector_distance_m: f64,
    /// Photons per exposure (`probe_photon_count`), if known; written as 0 (Ptychodus's
    /// "unknown") otherwise.
    pub probe_photon_count: Option<f64>,
}

impl ProductMetadata {
    /// Check that the pixel size, photon energy and detector distance are positive and finite
    /// and the photon count, if given, is finite and ≥ 0.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("pixel_size_m", self.pixel_size_m, "metres"),
            ("photon_energy_ev", self.photon_energy_ev, "eV"),
            ("detector_distance_m", self.detector_distance_m, "metres"),
        ];
        for (field, value, unit) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(WorkflowError::InvalidOption {
                    field,
                    value: value.to_string(),
                    reason: format!("must be a positive, finite number of {unit}"),
                });
            }
        }
        if let Some(count) = self
            .probe_photon_count
            .filter(|c| !(c.is_finite() && *c >= 0.0))
        {
            return Err(WorkflowError::InvalidOption {
                field: "probe_photon_count",
                value: count.to_string(),
                reason: "must be finite and ≥ 0".into(),
            });
        }
        Ok(())
    }
}

/// Centre `[x, y]` of the stitched canvas of `recon` in metres, for Ptychodus's object geometry
/// (centred-pixel convention: the centre sits at pixel `((W − 1)/2, (H − 1)/2)`).
pub fn object_center_m(recon: &Reconstruction, pixel_size_m: f64) -> [f64; 2] {
    let (h, w) = recon.object.dim();
    [
        (recon.origin[0] + (w as f64 - 1.0) / 2.0) * pixel_size_m,
        (recon.origin[1] + (h as f64 - 1.0) / 2.0) * pixel_size_m,
    ]
}

/// Write `recon` (the stitched object), `test`'s probe and scan positions and the training loss
/// `history` (from the model archive, [`ptycho_persist::read_history`] or
/// [`ptycho_persist::LoadedArchive::history`]; may be empty) as a Ptychodus 1.7 NPZ product at
/// `path` (keys [`PRODUCT_KEYS`]; geometry in the module documentation).
///
/// The positions are all of `test`'s scan points, whichever of them the reconstruction used.
/// `meta` is validated first ([`ProductMetadata::validate`]); the file is written atomically, so
/// a failure leaves nothing at `path` (an existing file there is replaced only on success).
pub fn write_ptychodus_product(
    path: &Path,
    recon: &Reconstruction,
    test: &ScanHeader,
    meta: &ProductMetadata,
    history: &[LossRecord],
) -> Result<()> {
    meta.validate()?;
    if recon.object.is_empty() {
        return Err(WorkflowError::InvalidOption {
            field: "object",
            value: format!("{:?}", recon.object.dim()),
            reason: "the reconstruction is empty".into(),
        });
    }
    let mut failed: Option<&'static str> = None;
    let res = write_atomic(path, |w: &mut BufWriter<&mut File>| {
        fill_product(w, recon, test, meta, history).map_err(|(key, err)| {
            failed = Some(key);
            std::io::Error::other(err)
        })
    });
    match (res, failed) {
        (Ok(()), _) => Ok(()),
        (Err(source), Some(key)) => Err(WorkflowError::Write {
            path: path.to_path_buf(),
            key: key.into(),
            source: Box::new(source),
        }),
        (Err(source), None) => Err(WorkflowError::Io {
            path: path.to_path_buf(),
            action: "writing",
            source,
        }),
    }
}

fn fill_product<W: Write + Seek>(
    w: W,
    recon: &Reconstruction,
    test: &ScanHeader,
    meta: &ProductMetadata,
    history: &[LossRecord],
) -> std::result::Result<(), (&'static str, WriteNpzError)> {
    let mut npz = NpzWriter::new_compressed(w);
    let e = |key: &'static str| move |err: WriteNpzError| (key, err);
    let scalar = |v: f64| Array0::from_elem((), v);
    let px = meta.pixel_size_m;

    npz.add_array("name", &UnicodeScalar(meta.name.clone()))
        .map_err(e("name"))?;
    npz.add_array("comments", &UnicodeScalar(meta.comments.clone()))
        .map_err(e("comments"))?;
    let reals = [
        ("detector_object_distance_m", meta.detector_distance_m),
        ("photon_energy_eV", meta.photon_energy_ev),
        ("probe_photon_count", meta.probe_photon_count.unwrap_or(0.0)),
        ("exposure_time_s", 0.0),
        ("mass_attenuation_m2_per_kg", 0.0),
        ("tomography_angle_deg", 0.0),
        ("focus_object_distance_m", 0.0),
        ("tilt_angle_deg", 0.0),
    ];
    for (key, v) in reals {
        npz.add_array(key, &scalar(v)).map_err(e(key))?;
    }
    // PtychoPINN's forward model is Fraunhofer diffraction.
    npz.add_array("far_field", &Array0::from_elem((), true))
        .map_err(e("far_field"))?;

    let m = test.n_points();
    let indexes: Array1<i64> = (0..m as i64).collect();
    npz.add_array("probe_position_indexes", &indexes)
        .map_err(e("probe_position_indexes"))?;
    npz.add_array("probe_position_x_m", &test.xcoords.mapv(|x| x * px))
        .map_err(e("probe_position_x_m"))?;
    npz.add_array("probe_position_y_m", &test.ycoords.mapv(|y| y * px))
        .map_err(e("probe_position_y_m"))?;

    let probe = test
        .probe_guess
        .view()
        .insert_axis(Axis(0))
        .insert_axis(Axis(0));
    npz.add_array("probe", &probe).map_err(e("probe"))?;
    npz.add_array("probe_pixel_width_m", &scalar(px))
        .map_err(e("probe_pixel_width_m"))?;
    npz.add_array("probe_pixel_height_m", &scalar(px))
        .map_err(e("probe_pixel_height_m"))?;

    let object = recon.object.view().insert_axis(Axis(0));
    npz.add_array("object", &object).map_err(e("object"))?;
    let [cx, cy] = object_center_m(recon, px);
    npz.add_array("object_center_x_m", &scalar(cx))
        .map_err(e("object_center_x_m"))?;
    npz.add_array("object_center_y_m", &scalar(cy))
        .map_err(e("object_center_y_m"))?;
    npz.add_array("object_pixel_width_m", &scalar(px))
        .map_err(e("object_pixel_width_m"))?;
    npz.add_array("object_pixel_height_m", &scalar(px))
        .map_err(e("object_pixel_height_m"))?;
    // One layer: no spacings.
    npz.add_array("object_layer_spacing_m", &Array1::<f64>::zeros(0))
        .map_err(e("object_layer_spacing_m"))?;

    // Ptychodus counts epochs from 0 (its reconstructors log `range(epochs)` /
    // Lightning's `current_epoch`, and its reader defaults to `arange(len)`); ours from 1.
    let epochs: Array1<i64> = history
        .iter()
        .map(|r| r.epoch.saturating_sub(1) as i64)
        .collect();
    let losses: Array1<f64> = history.iter().map(|r| r.loss).collect();
    npz.add_array("loss_epochs", &epochs)
        .map_err(e("loss_epochs"))?;
    npz.add_array("loss_values", &losses)
        .map_err(e("loss_values"))?;
    npz.finish().map_err(e("<finish>"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use crate::data::RawData;

    use ndarray::{Array0, Array2, Array3, Array4, Ix0, Ix1, array};
    use ndarray_npy::NpzReader;
    use num_complex::Complex32;

    use super::*;
    use crate::stitch::reassemble_position;

    fn meta() -> ProductMetadata {
        ProductMetadata {
            name: "lines_Å".into(),
            comments: "a test".into(),
            pixel_size_m: 2.5e-8,
            photon_energy_ev: 8800.0,
            detector_distance_m: 1.75,
            probe_photon_count: Some(1e6),
        }
    }

    fn test_data(xs: Vec<f64>, ys: Vec<f64>, n: usize) -> RawData {
        let m = xs.len();
        let probe = Array2::from_shape_fn((n, n), |(r, c)| {
            Complex32::new(r as f32 * 0.25, -(c as f32))
        });
        RawData::from_coords_without_pc(
            Array1::from(xs),
            Array1::from(ys),
            Array3::from_elem((m, n, n), 1.0f32),
            probe,
            None,
        )
        .unwrap()
    }

    fn history() -> Vec<LossRecord> {
        (1..=3)
            .map(|e| LossRecord {
                epoch: e,
                loss: 10.0 - e as f64,
                val_loss: None,
                nll: 1.0,
                mae: 0.5,
                lr: 1e-3,
            })
            .collect()
    }

    fn reader(path: &Path) -> NpzReader<File> {
        NpzReader::new(File::open(path).unwrap()).unwrap()
    }

    fn real(npz: &mut NpzReader<File>, key: &str) -> f64 {
        let a: ndarray::ArrayD<f64> = npz.by_name(key).unwrap();
        a.into_dimensionality::<Ix0>().unwrap().into_scalar()
    }

    fn vec_f64(npz: &mut NpzReader<File>, key: &str) -> Vec<f64> {
        let a: ndarray::ArrayD<f64> = npz.by_name(key).unwrap();
        a.into_dimensionality::<Ix1>().unwrap().to_vec()
    }

    /// The raw `.npy` bytes of `key` (for the unicode scalars, which ndarray-npy cannot read).
    fn npy_bytes(path: &Path, key: &str) -> Vec<u8> {
        let mut zip = zip::ZipArchive::new(File::open(path).unwrap()).unwrap();
        let mut entry = zip.by_name(&format!("{key}.npy")).unwrap();
        let mut out = Vec::new();
        entry.read_to_end(&mut out).unwrap();
        out
    }

    fn unicode_scalar(path: &Path, key: &str) -> String {
        let bytes = npy_bytes(path, key);
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(
            header.contains("'descr': '<U") && header.contains("'shape': ()"),
            "{key}: {header}"
        );
        bytes[10 + header_len..]
            .chunks(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .take_while(|&u| u != 0)
            .map(|u| char::from_u32(u).unwrap())
            .collect()
    }

    #[test]
    fn writes_every_key_with_ptychodus_dtypes_and_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("product.npz");
        let recon = Reconstruction {
            object: Array2::from_shape_fn((30, 40), |(r, c)| {
                Complex32::new(r as f32, c as f32 + 0.5)
            }),
            origin: [12.5, -3.25],
            stitch_crop: Some(20),
        };
        let test = test_data(vec![20.0, 31.5, 44.0], vec![5.0, 7.25, 19.0], 8);
        write_ptychodus_product(&path, &recon, &test.header(), &meta(), &history()).unwrap();

        let mut npz = reader(&path);
        let mut names: Vec<String> = npz
            .names()
            .unwrap()
            .into_iter()
            .map(|n| n.trim_end_matches(".npy").to_string())
            .collect();
        names.sort();
        let mut want: Vec<String> = PRODUCT_KEYS.iter().map(|k| k.to_string()).collect();
        want.sort();
        assert_eq!(names, want);

        assert_eq!(unicode_scalar(&path, "name"), "lines_Å");
        assert_eq!(unicode_scalar(&path, "comments"), "a test");
        assert_eq!(real(&mut npz, "detector_object_distance_m"), 1.75);
        assert_eq!(real(&mut npz, "photon_energy_eV"), 8800.0);
        assert_eq!(real(&mut npz, "probe_photon_count"), 1e6);
        for key in [
            "exposure_time_s",
            "mass_attenuation_m2_per_kg",
            "tomography_angle_deg",
            "focus_object_distance_m",
            "tilt_angle_deg",
        ] {
            assert_eq!(real(&mut npz, key), 0.0, "{key}");
        }
        let far: Array0<bool> = npz.by_name("far_field").unwrap();
        assert!(far.into_scalar());

        let idx: Array1<i64> = npz.by_name("probe_position_indexes").unwrap();
        assert_eq!(idx, array![0i64, 1, 2]);
        let x = vec_f64(&mut npz, "probe_position_x_m");
        let y = vec_f64(&mut npz, "probe_position_y_m");
        assert_eq!(x, [20.0 * 2.5e-8, 31.5 * 2.5e-8, 44.0 * 2.5e-8]);
        assert_eq!(y, [5.0 * 2.5e-8, 7.25 * 2.5e-8, 19.0 * 2.5e-8]);

        let probe: Array4<Complex32> = npz.by_name("probe").unwrap();
        assert_eq!(probe.dim(), (1, 1, 8, 8));
        assert_eq!(
            probe.index_axis(Axis(0), 0).index_axis(Axis(0), 0),
            test.probe_guess
        );
        for key in [
            "probe_pixel_width_m",
            "probe_pixel_height_m",
            "object_pixel_width_m",
            "object_pixel_height_m",
        ] {
            assert_eq!(real(&mut npz, key), 2.5e-8, "{key}");
        }
        let object: Array3<Complex32> = npz.by_name("object").unwrap();
        assert_eq!(object.dim(), (1, 30, 40));
        assert_eq!(object.index_axis(Axis(0), 0), recon.object);
        let spacing: Array1<f64> = npz.by_name("object_layer_spacing_m").unwrap();
        assert_eq!(spacing.len(), 0);

        let epochs: Array1<i64> = npz.by_name("loss_epochs").unwrap();
        let losses: Array1<f64> = npz.by_name("loss_values").unwrap();
        assert_eq!(epochs, array![0i64, 1, 2]);
        assert_eq!(losses, array![9.0, 8.0, 7.0]);
    }

    /// Ptychodus's `map_probe_positions_to_object_{x,y}_px` on the written centre and positions
    /// gives each scan point's canvas pixel `coords − origin`.
    #[test]
    fn ptychodus_geometry_maps_positions_back_to_canvas_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("product.npz");
        let (h, w) = (31usize, 40usize);
        let recon = Reconstruction {
            object: Array2::from_elem((h, w), Complex32::new(1.0, 0.0)),
            origin: [12.5, -3.25],
            stitch_crop: None,
        };
        let xs = vec![20.0, 31.5, 44.0, 12.5];
        let ys = vec![5.0, 7.25, 19.0, -3.25];
        let test = test_data(xs.clone(), ys.clone(), 8);
        let m = meta();
        write_ptychodus_product(&path, &recon, &test.header(), &m, &[]).unwrap();
        let mut npz = reader(&path);
        let (cx, cy) = (
            real(&mut npz, "object_center_x_m"),
            real(&mut npz, "object_center_y_m"),
        );
        let (pw, ph) = (
            real(&mut npz, "object_pixel_width_m"),
            real(&mut npz, "object_pixel_height_m"),
        );
        let x_m = vec_f64(&mut npz, "probe_position_x_m");
        let y_m = vec_f64(&mut npz, "probe_position_y_m");
        for i in 0..xs.len() {
            let col = (x_m[i] - cx) / pw + (w as f64 - 1.0) / 2.0;
            let row = (y_m[i] - cy) / ph + (h as f64 - 1.0) / 2.0;
            assert!((col - (xs[i] - 12.5)).abs() < 1e-9, "{i}: col {col}");
            assert!((row - (ys[i] + 3.25)).abs() < 1e-9, "{i}: row {row}");
        }
        // The last point is the origin itself: canvas pixel (0, 0).
        assert!((x_m[3] - cx) / pw + (w as f64 - 1.0) / 2.0 < 1e-9);
        // An empty history writes empty loss arrays.
        let epochs: Array1<i64> = npz.by_name("loss_epochs").unwrap();
        assert_eq!(epochs.len(), 0);
    }

    /// End to end with the stitcher: a marker at each patch centre lands on the canvas pixel
    /// that Ptychodus's mapping gives for that scan point.
    #[test]
    fn stitched_markers_sit_where_ptychodus_maps_the_positions() {
        let (n, crop) = (16, 8);
        let centres = [[30.0, 20.0], [50.0, 40.0], [40.0, 60.0]];
        let marks = [
            Complex32::new(2.0, -1.0),
            Complex32::new(-3.0, 0.5),
            Complex32::new(0.25, 4.0),
        ];
        let mut patches = Array3::from_elem((3, n, n), Complex32::new(1.0, 0.0));
        for (k, v) in marks.iter().enumerate() {
            patches[[k, n / 2, n / 2]] = *v;
        }
        let st = reassemble_position(patches.view(), &centres, crop).unwrap();
        let recon = Reconstruction {
            object: st.object,
            origin: st.origin,
            stitch_crop: Some(crop),
        };
        let (h, w) = recon.object.dim();
        let px = 1e-7;
        let [cx, cy] = object_center_m(&recon, px);
        for (c, v) in centres.iter().zip(&marks) {
            let col = (c[0] * px - cx) / px + (w as f64 - 1.0) / 2.0;
            let row = (c[1] * px - cy) / px + (h as f64 - 1.0) / 2.0;
            let (r, cc) = (row.round(), col.round());
            assert!((row - r).abs() < 1e-6 && (col - cc).abs() < 1e-6);
            let got = recon.object[[r as usize, cc as usize]];
            assert!((got - v).norm() < 1e-5, "at ({r}, {cc}): {got} vs {v}");
        }
    }

    #[test]
    fn bad_metadata_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("product.npz");
        let recon = Reconstruction {
            object: Array2::from_elem((4, 4), Complex32::new(1.0, 0.0)),
            origin: [0.0, 0.0],
            stitch_crop: None,
        };
        let test = test_data(vec![1.0], vec![1.0], 8);
        type Edit = fn(&mut ProductMetadata);
        let cases: [(&str, Edit); 4] = [
            ("pixel_size_m", |m| m.pixel_size_m = 0.0),
            ("photon_energy_ev", |m| m.photon_energy_ev = -1.0),
            ("detector_distance_m", |m| m.detector_distance_m = f64::NAN),
            ("probe_photon_count", |m| {
                m.probe_photon_count = Some(f64::INFINITY)
            }),
        ];
        for (field, edit) in cases {
            let mut m = meta();
            edit(&mut m);
            let err = write_ptychodus_product(&path, &recon, &test.header(), &m, &[]).unwrap_err();
            assert!(
                matches!(&err, WorkflowError::InvalidOption { field: f, .. } if *f == field),
                "{err}"
            );
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        }
        // A missing directory is an I/O error naming the file, and leaves nothing behind.
        let missing = dir.path().join("no/such/product.npz");
        let err =
            write_ptychodus_product(&missing, &recon, &test.header(), &meta(), &[]).unwrap_err();
        assert!(err.to_string().contains("product.npz"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
