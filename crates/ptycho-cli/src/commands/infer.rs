//! `ptycho infer`: reconstruct a test dataset with a saved model.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ptycho_config::{InferenceConfig, Valid};
use ptycho_persist::{read_history, resolve_archive_path};
use ptycho_workflows::data::test_file;
use ptycho_workflows::infer::{InferResult, InferRuntime, InferenceModel};
use ptycho_workflows::{ProductMetadata, ScanFile, write_ptychodus_product};

use crate::args::{CommonArgs, DeviceArgs, InferenceArgs};

/// Reconstruct the object of a test NPZ with a trained model: group the scan with the model's
/// N and gridsize (K = max(4, gridsize²) neighbours, seed 45 unless set), normalise the data, predict object
/// patches, stitch their central M×M windows at the group centres and write reconstruction.npz
/// (object complex64, amplitude/phase float32, origin float64 [x, y]),
/// reconstructed_amplitude.png, reconstructed_phase.png (figures: colour bar, title, axes in
/// pixels, scaled on the covered pixels) and, when the test file has an objectGuess, metrics.json
/// and comparison.png (ground truth | reconstruction | difference; registered with --register). With --product FILE.npz it also writes a Ptychodus 1.7 NPZ product
/// (object with its geometry, probe, scan positions in metres, the model's training loss history).
/// The test patterns are read from the file a piece at a time, so memory does not grow with the
/// scan. Several test files (or --manifest) are reconstructed in turn with the model loaded once,
/// each into OUTPUT_DIR/<file stem>/, with a summary table at the end.
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
    /// A file naming the test scans, one path per line (relative to the file's directory; blank
    /// lines and `#` comments skipped): each is reconstructed with the model loaded once, into
    /// OUTPUT_DIR/<file stem>/; a scan that fails is reported and skipped, and the exit code
    /// says so.
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
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

/// The test scans to reconstruct: the --test-data files, else the manifest's, else the config's
/// test_data_file.
fn test_scans(args: &InferArgs, cfg_file: Option<&PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    let flags = &args.inference.overrides.test_data;
    match (&args.manifest, flags.is_empty()) {
        (Some(_), false) => bail!("--manifest and --test-data both name test scans: pass one"),
        (Some(m), true) => read_manifest(m),
        (None, false) => Ok(flags.clone()),
        (None, true) => match cfg_file {
            Some(f) => Ok(vec![f.clone()]),
            None => bail!(
                "no test data: pass --test-data FILE.npz [FILE.npz ...], --manifest FILE, or test_data_file in the config file"
            ),
        },
    }
}

/// The scans of a manifest: one path per line, relative to the manifest's directory; blank
/// lines and lines starting with `#` are skipped.
fn read_manifest(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--manifest {}: {e}", path.display()))?;
    let base = path.parent().unwrap_or(Path::new(""));
    let scans: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| base.join(l))
        .collect();
    if scans.is_empty() {
        bail!("--manifest {}: names no scan", path.display());
    }
    Ok(scans)
}

/// One output directory per scan under `root`: the file stem, made unique with `-2`, `-3`, ...
fn output_dirs(root: &Path, scans: &[PathBuf]) -> Vec<PathBuf> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    scans
        .iter()
        .map(|s| {
            let stem = product_name(s);
            let k = seen.entry(stem.clone()).or_insert(0);
            *k += 1;
            if *k == 1 {
                root.join(&stem)
            } else {
                root.join(format!("{stem}-{k}"))
            }
        })
        .collect()
}

pub fn run(args: &InferArgs) -> anyhow::Result<ExitCode> {
    let device = args.device.kind;
    let cfg = args.inference.resolve()?;
    let Some(model) = cfg.model_path.clone() else {
        bail!("no model: pass --model DIR|ZIP (or model_path in the config file)");
    };
    let scans = test_scans(args, cfg.test_data_file.as_ref())?;
    if scans.len() > 1 || args.manifest.is_some() {
        if args.product.is_some() {
            bail!("--product writes the product of one test scan; pass one --test-data file");
        }
        return run_many(args, &cfg, &model, &scans);
    }
    // A Ptychodus training folder gives its test_data.npz.
    let test_path = test_file(&scans[0])?;
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
    let test = open_scan(&test_path, &cfg, args.common.quiet)?;
    let run = InferRuntime {
        device,
        write_outputs: true,
        quiet: args.common.quiet,
        ..InferRuntime::default()
    };
    let model = InferenceModel::load(&model, device)?;
    let res = model.reconstruct(test.header(), &test, &cfg, &run)?;
    let gridsize = res.params.gridsize();
    if !args.common.quiet && cfg.neighbor_count.is_none() && gridsize > 2 {
        eprintln!(
            "note: K = {} neighbours per group (max(7, gridsize²) for the model's gridsize {gridsize}); --neighbor-count sets it",
            cfg.neighbor_count_for(gridsize)
        );
    }
    if !args.common.quiet && res.unstitched_windows > 0 {
        eprintln!(
            "note: {} of {} member windows lie more than (N − M)/2 = {} px from their group centre and are not stitched (those groups add their central window)",
            res.unstitched_windows,
            res.n_groups * gridsize * gridsize,
            (res.params.n() - cfg.stitch_crop) / 2
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
        "object {h}×{w}, origin [x, y] = [{:.3}, {:.3}]; covers {:.1} % of the scan's bounding box",
        res.reconstruction.origin[0],
        res.reconstruction.origin[1],
        100.0 * res.scan_coverage
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
        let header = test.header();
        meta.probe_photon_count = header.metadata_nphotons;
        write_ptychodus_product(&path, &res.reconstruction, header, &meta, &history)?;
        println!(
            "Ptychodus product: {} positions, {} loss epochs",
            header.n_points(),
            history.len()
        );
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Open a test scan (its patterns stay on disk) and print what was decided on the way unless
/// `quiet`.
fn open_scan(path: &Path, cfg: &InferenceConfig, quiet: bool) -> anyhow::Result<ScanFile> {
    let (scan, report) = ScanFile::open(path, &cfg.data_options())?;
    if !quiet {
        for line in report.lines() {
            println!("note: {line}");
        }
    }
    Ok(scan)
}

/// One scan's line of the summary.
struct ScanRow {
    scan: PathBuf,
    outcome: Result<InferResult, String>,
}

/// Reconstruct every scan with the model loaded once, each into OUTPUT_DIR/<stem>/; a scan that
/// fails is reported and skipped. Prints a summary table; exits non-zero if any scan failed.
fn run_many(
    args: &InferArgs,
    cfg: &Valid<InferenceConfig>,
    model: &Path,
    scans: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let quiet = args.common.quiet;
    let model = InferenceModel::load(model, args.device.kind)?;
    let dirs = output_dirs(&cfg.output_dir, scans);
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::new(scans.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("scans [{bar:30}] {pos}/{len} {msg} ({elapsed_precise})")
        {
            pb.set_style(style.progress_chars("=> "));
        }
        pb
    };
    let run = InferRuntime {
        device: args.device.kind,
        write_outputs: true,
        // One bar, over the scans.
        quiet: true,
        ..InferRuntime::default()
    };
    let mut rows = Vec::with_capacity(scans.len());
    for (scan, dir) in scans.iter().zip(&dirs) {
        bar.set_message(scan.display().to_string());
        let outcome = (|| -> anyhow::Result<InferResult> {
            let path = test_file(scan)?;
            let mut c = cfg.clone().into_inner();
            c.test_data_file = Some(path.clone());
            c.output_dir = dir.clone();
            let c = c.validate()?;
            let test = open_scan(&path, &c, true)?;
            Ok(model.reconstruct(test.header(), &test, &c, &run)?)
        })();
        let outcome = outcome.map_err(|e| {
            let line = format!("{e:#}").replace('\n', " ");
            bar.suspend(|| eprintln!("error: {}: {line}", scan.display()));
            line
        });
        rows.push(ScanRow {
            scan: scan.clone(),
            outcome,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    print!("{}", summary_table(&rows, &dirs));
    let failed = rows.iter().filter(|r| r.outcome.is_err()).count();
    if failed > 0 {
        eprintln!("error: {failed} of {} scans failed", rows.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary: one line per scan (patterns, seconds, patterns/s, SSIM when the scan has an
/// objectGuess, output directory or FAILED) and a total line.
fn summary_table(rows: &[ScanRow], dirs: &[PathBuf]) -> String {
    use std::fmt::Write as _;
    let name_w = rows
        .iter()
        .map(|r| r.scan.display().to_string().chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<name_w$}  {:>9}  {:>9}  {:>10}  {:>8}  {:>9}  output",
        "scan", "patterns", "seconds", "patterns/s", "amp SSIM", "phase SSIM"
    );
    let (mut patterns, mut seconds) = (0usize, 0f64);
    for (r, dir) in rows.iter().zip(dirs) {
        let name = r.scan.display().to_string();
        match &r.outcome {
            Ok(res) => {
                patterns += res.n_patterns;
                seconds += res.seconds;
                let (amp, phase) =
                    res.evaluation
                        .as_ref()
                        .map_or(("-".to_string(), "-".to_string()), |ev| {
                            (
                                format!("{:.4}", ev.metrics.amplitude.ssim),
                                format!("{:.4}", ev.metrics.phase.ssim),
                            )
                        });
                let _ = writeln!(
                    out,
                    "{name:<name_w$}  {:>9}  {:>9.2}  {:>10.1}  {amp:>8}  {phase:>9}  {}",
                    res.n_patterns,
                    res.seconds,
                    res.n_patterns as f64 / res.seconds.max(1e-9),
                    dir.display()
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "{name:<name_w$}  {:>9}  {:>9}  {:>10}  {:>8}  {:>9}  FAILED: {e}",
                    "-", "-", "-", "-", "-"
                );
            }
        }
    }
    let ok = rows.iter().filter(|r| r.outcome.is_ok()).count();
    let _ = writeln!(
        out,
        "{:<name_w$}  {patterns:>9}  {seconds:>9.2}  {:>10.1}  {:>8}  {:>9}  {ok} of {} scans reconstructed",
        "total",
        patterns as f64 / seconds.max(1e-9),
        "",
        "",
        rows.len()
    );
    out
}
