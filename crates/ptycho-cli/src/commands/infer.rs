//! `ptycho infer`: reconstruct a test dataset with a saved model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use ptycho_persist::{read_history, resolve_archive_path};
use ptycho_workflows::data::test_file;
use ptycho_workflows::infer::{InferRuntime, infer};
use ptycho_workflows::{ProductMetadata, write_ptychodus_product};

use crate::args::{CommonArgs, DeviceArgs, InferenceArgs};
use crate::commands::train::load_data;

/// Reconstruct the object of a test NPZ with a trained model: group the scan with the model's
/// N and gridsize (K = max(4, gridsize²) neighbours, seed 45 unless set), normalise the data, predict object
/// patches, stitch their central M×M windows at the group centres and write reconstruction.npz
/// (object complex64, amplitude/phase float32, origin float64 [x, y]),
/// reconstructed_amplitude.png, reconstructed_phase.png (figures: colour bar, title, axes in
/// pixels, scaled on the covered pixels) and, when the test file has an objectGuess, metrics.json
/// and comparison.png (ground truth | reconstruction | difference; registered with --register). With --product FILE.npz it also writes a Ptychodus 1.7 NPZ product
/// (object with its geometry, probe, scan positions in metres, the model's training loss history).
/// Settings: defaults < --config FILE < flags.
#[derive(Debug, Args)]
pub struct InferArgs {
    #[command(flatten)]
    pub device: DeviceArgs,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub inference: InferenceArgs,

    /// Also write a Ptychodus 1.7 NPZ product (loads with Ptychodus's NPZ product reader): the
    /// stitched object and its geometry, probeGuess, every test scan position in metres and the
    /// training loss per epoch stored in the model. Needs --pixel-size, --photon-energy-ev and
    /// --detector-distance-m.
    #[arg(long, value_name = "FILE.npz")]
    pub product: Option<PathBuf>,
    /// Object (and probe) pixel size in metres, for --product: positions and the object's
    /// geometry are in metres (x_m = xcoords · M).
    #[arg(long, visible_alias = "pixel_size", value_name = "M")]
    pub pixel_size: Option<f64>,
    /// Photon energy in eV, for --product.
    #[arg(long, visible_alias = "photon_energy_ev", value_name = "EV")]
    pub photon_energy_ev: Option<f64>,
    /// Detector–object distance in metres, for --product.
    #[arg(long, visible_alias = "detector_distance_m", value_name = "M")]
    pub detector_distance_m: Option<f64>,
}

/// The product's physical settings: all three with --product, none without it.
fn product_geometry(args: &InferArgs) -> anyhow::Result<Option<(PathBuf, [f64; 3])>> {
    let flags = [
        ("--pixel-size M", args.pixel_size),
        ("--photon-energy-ev EV", args.photon_energy_ev),
        ("--detector-distance-m M", args.detector_distance_m),
    ];
    let Some(path) = &args.product else {
        if let Some((flag, _)) = flags.iter().find(|(_, v)| v.is_some()) {
            let name = flag.split(' ').next().unwrap_or(flag);
            bail!("{name} is only used with --product FILE.npz");
        }
        return Ok(None);
    };
    // A missing directory is reported before the inference runs, not after it.
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|d| !d.is_dir()) {
        bail!(
            "--product {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    let mut values = [0.0; 3];
    for ((flag, value), out) in flags.iter().zip(&mut values) {
        let Some(v) = value else {
            bail!("--product needs {flag} (the product's geometry is in metres and eV)");
        };
        *out = *v;
    }
    Ok(Some((path.clone(), values)))
}

/// The product's name: the test file's stem.
fn product_name(test_path: &Path) -> String {
    test_path
        .file_stem()
        .map_or_else(|| "ptycho".into(), |s| s.to_string_lossy().into_owned())
}

pub fn run(args: &InferArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.kind;
    let cfg = args.inference.resolve()?;
    let Some(model) = cfg.model_path.clone() else {
        bail!("no model: pass --model DIR|ZIP (or model_path in the config file)");
    };
    let Some(test_arg) = cfg.test_data_file.clone() else {
        bail!("no test data: pass --test-data FILE.npz (or test_data_file in the config file)");
    };
    // A Ptychodus training folder gives its test_data.npz.
    let test_path = test_file(&test_arg)?;
    // Everything the product needs is checked before anything is computed or written.
    let product = match product_geometry(args)? {
        Some((path, [pixel_size_m, photon_energy_ev, detector_distance_m])) => {
            let archive = resolve_archive_path(&model);
            let meta = ProductMetadata {
                name: product_name(&test_path),
                comments: format!(
                    "ptycho {} infer: model {}, test data {}",
                    env!("CARGO_PKG_VERSION"),
                    archive.display(),
                    test_path.display()
                ),
                pixel_size_m,
                photon_energy_ev,
                detector_distance_m,
                probe_photon_count: None,
            };
            meta.validate()?;
            let history = read_history(&archive)?;
            Some((path, meta, history))
        }
        None => None,
    };
    let test = load_data(&test_path, &cfg.data_options(), args.common.quiet)?;
    let run = InferRuntime {
        device,
        write_outputs: true,
    };
    let res = infer(&model, &test, &cfg, &run)?;
    let gridsize = res.params.gridsize();
    if !args.common.quiet && cfg.neighbor_count.is_none() && gridsize > 2 {
        eprintln!(
            "note: K = {} neighbours per group (max(4, gridsize²) for the model's gridsize {gridsize}); --neighbor-count sets it",
            cfg.neighbor_count_for(gridsize)
        );
    }
    let (h, w) = res.reconstruction.object.dim();
    println!(
        "reconstructed {} groups ({} patterns, N = {}, gridsize = {}) in {:.2} s: {:.1} patterns/s on {}",
        res.n_groups,
        res.n_patterns,
        res.params.n(),
        res.params.gridsize(),
        res.predict_seconds,
        res.patterns_per_second,
        device
    );
    println!(
        "object {h}×{w}, origin [x, y] = [{:.3}, {:.3}]",
        res.reconstruction.origin[0], res.reconstruction.origin[1]
    );
    if let Some(ev) = &res.evaluation {
        let m = &ev.metrics;
        println!(
            "vs objectGuess: amplitude SSIM {:.4}, phase SSIM {:.4}, amplitude MAE {:.5}",
            m.amplitude.ssim, m.phase.ssim, m.amplitude.mae
        );
        if let Some(reg) = &ev.registration {
            let (m, [x, y]) = (&reg.metrics, reg.registration.shift);
            println!(
                "registered (shift [x, y] = [{x:.2}, {y:.2}] px): amplitude SSIM {:.4}, phase SSIM {:.4}, amplitude MAE {:.5}",
                m.amplitude.ssim, m.phase.ssim, m.amplitude.mae
            );
        }
    }
    for f in &res.files {
        println!("wrote {}", f.display());
    }
    if let Some((path, mut meta, history)) = product {
        meta.probe_photon_count = test.metadata_nphotons;
        write_ptychodus_product(&path, &res.reconstruction, &test, &meta, &history)?;
        println!(
            "Ptychodus product: {} positions, {} loss epochs",
            test.n_points(),
            history.len()
        );
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
