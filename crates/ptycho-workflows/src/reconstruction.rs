//! A stitched reconstruction and its file, `reconstruction.npz` (written by `ptycho infer`, read by
//! `ptycho evaluate`).

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::path::Path;

use ndarray::{Array0, Array1, Array2, ArrayD, Ix0, Ix1, Ix2};
use ndarray_npy::{NpzWriter, WriteNpzError};
use num_complex::Complex32;

use ptycho_persist::write_atomic;

use crate::data::NpzFile;
use crate::error::{Result, WorkflowError};

/// A stitched reconstruction, as stored in `reconstruction.npz`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconstruction {
    /// Complex object `(S, S)` (amplitude·e^{iφ}); pixels no patch covered are 0. Key `object`
    /// (complex64); the file also holds `amplitude` = |object| and `phase` = arg object (radians,
    /// float32).
    pub object: Array2<Complex32>,
    /// Object-pixel coordinate `[x, y]` of canvas pixel (row 0, col 0); canvas pixel `(r, c)` is
    /// object pixel `(origin_y + r, origin_x + c)`. Key `origin` (float64, shape (2,)).
    pub origin: [f64; 2],
    /// The stitching crop M (pixels) used; key `stitch_crop` (int64 scalar), optional on read.
    pub stitch_crop: Option<usize>,
}

impl Reconstruction {
    /// Amplitude |object| (float32).
    pub fn amplitude(&self) -> Array2<f32> {
        self.object.mapv(|z| z.norm())
    }

    /// Phase arg(object) in radians, (−π, π] (float32).
    pub fn phase(&self) -> Array2<f32> {
        self.object.mapv(|z| z.arg())
    }

    /// Write `object`, `amplitude`, `phase`, `origin` and `stitch_crop` as a compressed NPZ,
    /// atomically (a failure leaves no partial file).
    pub fn write_npz(&self, path: &Path) -> Result<()> {
        let mut failed: Option<&'static str> = None;
        let res = write_atomic(path, |w: &mut BufWriter<&mut File>| {
            self.fill_npz(w).map_err(|(key, err)| {
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

    fn fill_npz<W: Write + Seek>(
        &self,
        w: W,
    ) -> std::result::Result<(), (&'static str, WriteNpzError)> {
        let mut npz = NpzWriter::new_compressed(w);
        let e = |key: &'static str| move |err: WriteNpzError| (key, err);
        npz.add_array("object", &self.object).map_err(e("object"))?;
        npz.add_array("amplitude", &self.amplitude())
            .map_err(e("amplitude"))?;
        npz.add_array("phase", &self.phase()).map_err(e("phase"))?;
        npz.add_array("origin", &Array1::from(self.origin.to_vec()))
            .map_err(e("origin"))?;
        let crop = Array0::from_elem((), self.stitch_crop.unwrap_or(0) as i64);
        npz.add_array("stitch_crop", &crop)
            .map_err(e("stitch_crop"))?;
        npz.finish().map_err(e("<finish>"))?;
        Ok(())
    }

    /// Read a reconstruction NPZ written by [`Reconstruction::write_npz`] (`object` required,
    /// `origin` required, `stitch_crop` optional).
    pub fn from_npz(path: &Path) -> Result<Self> {
        let mut npz = NpzFile::open(path)?;
        for key in ["object", "origin"] {
            if !npz.has(key) {
                return Err(WorkflowError::MissingKey {
                    path: path.to_path_buf(),
                    key: key.into(),
                });
            }
        }
        let bad = |key: &str, e: String| WorkflowError::BadArray {
            path: path.to_path_buf(),
            key: key.into(),
            reason: format!("expected {}: {e}", expected_of(key)),
        };
        let object: ArrayD<Complex32> = npz.read_raw("object").map_err(|e| bad("object", e))?;
        let object = object
            .into_dimensionality::<Ix2>()
            .map_err(|_| WorkflowError::BadArray {
                path: path.to_path_buf(),
                key: "object".into(),
                reason: "expected a 2-D complex64 array".into(),
            })?;
        if object.is_empty() {
            return Err(WorkflowError::BadArray {
                path: path.to_path_buf(),
                key: "object".into(),
                reason: "empty array".into(),
            });
        }
        let origin: ArrayD<f64> = npz.read_raw("origin").map_err(|e| bad("origin", e))?;
        let origin = origin
            .into_dimensionality::<Ix1>()
            .ok()
            .filter(|o| o.len() == 2);
        let Some(origin) = origin.filter(|o| o.iter().all(|v| v.is_finite())) else {
            return Err(WorkflowError::BadArray {
                path: path.to_path_buf(),
                key: "origin".into(),
                reason: "expected two finite float64 values [x, y]".into(),
            });
        };
        let stitch_crop = if npz.has("stitch_crop") {
            let c: ArrayD<i64> = npz
                .read_raw("stitch_crop")
                .map_err(|e| bad("stitch_crop", e))?;
            let v = c.into_dimensionality::<Ix0>().ok().map(|a| a.into_scalar());
            match v {
                Some(v) if v > 0 => Some(v as usize),
                // 0 is how `write_npz` records "no crop"; a negative crop is corrupt.
                Some(0) => None,
                Some(v) => {
                    return Err(WorkflowError::BadArray {
                        path: path.to_path_buf(),
                        key: "stitch_crop".into(),
                        reason: format!("{v} is negative"),
                    });
                }
                None => {
                    return Err(WorkflowError::BadArray {
                        path: path.to_path_buf(),
                        key: "stitch_crop".into(),
                        reason: "expected an int64 scalar".into(),
                    });
                }
            }
        } else {
            None
        };
        Ok(Reconstruction {
            object,
            origin: [origin[0], origin[1]],
            stitch_crop,
        })
    }
}

fn expected_of(key: &str) -> &'static str {
    match key {
        "object" => "a 2-D complex64 array",
        "origin" => "a float64 array of shape (2,)",
        _ => "an int64 scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::NpzReader;

    #[test]
    fn reconstruction_npz_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.npz");
        let rec = Reconstruction {
            object: Array2::from_shape_fn((6, 8), |(r, c)| {
                Complex32::from_polar(1.0 + r as f32, 0.1 * c as f32 - 0.3)
            }),
            origin: [12.5, -3.25],
            stitch_crop: Some(20),
        };
        rec.write_npz(&p).unwrap();
        let back = Reconstruction::from_npz(&p).unwrap();
        assert_eq!(back, rec);
        let mut npz = NpzReader::new(File::open(&p).unwrap()).unwrap();
        let amp: Array2<f32> = npz.by_name("amplitude").unwrap();
        assert!((amp[[2, 3]] - 3.0).abs() < 1e-6);
        let ph: Array2<f32> = npz.by_name("phase").unwrap();
        assert!((ph[[2, 3]] - 0.0).abs() < 1e-6 && (ph[[0, 0]] + 0.3).abs() < 1e-6);
    }

    #[test]
    fn bad_reconstruction_files_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npz");
        std::fs::write(&p, b"not a zip").unwrap();
        let e = Reconstruction::from_npz(&p).unwrap_err().to_string();
        assert!(
            e.contains("x.npz") && e.contains("not a readable NPZ"),
            "{e}"
        );
        let mut w = NpzWriter::new(File::create(&p).unwrap());
        w.add_array("object", &Array2::<Complex32>::zeros((3, 3)))
            .unwrap();
        w.finish().unwrap();
        let e = Reconstruction::from_npz(&p).unwrap_err().to_string();
        assert!(e.contains("x.npz") && e.contains("`origin`"), "{e}");
    }
}
