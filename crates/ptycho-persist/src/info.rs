//! `inspect_archive`: what `ptycho inspect PATH [--json]` shows, read without building any model.

use std::fmt;
use std::path::Path;

use ptycho_config::legacy::LegacyMap;
use serde::Serialize;
use serde_json::Value;

use crate::archive::{self, LossRecord, MODEL_NAMES, Manifest, WEIGHTS_FILE, model_entry};
use crate::error::PersistError;
use crate::snapshot;
use crate::zipread::EntryInfo;

/// Shape of the stored probe (the values themselves are left out of [`ArchiveInfo`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeSummary {
    /// `[N, N]` in pixels, `[row, col]`.
    pub shape: [usize; 2],
    pub dtype: String,
}

/// One model directory's weights, from the safetensors header.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelInfo {
    pub name: String,
    /// Total number of scalar parameters (sum over tensors of the product of their shapes).
    pub parameters: u64,
    pub tensors: usize,
    /// Uncompressed size of `model.safetensors` in bytes.
    pub weights_bytes: u64,
}

/// Summary of an archive (serialisable for `--json`, `Display` for humans).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveInfo {
    pub path: String,
    pub manifest: Manifest,
    /// Which network the archive holds: `"pinn"` (PtychoPINN) or `"supervised"` (the supervised
    /// baseline), from the params' `model_type`.
    pub model_type: String,
    /// The params snapshot without the probe array (legacy flat keys + `intensity_scale`).
    pub params: LegacyMap,
    pub probe: Option<ProbeSummary>,
    pub models: Vec<ModelInfo>,
    /// The training loss history (`history.json`); empty when the archive has none.
    pub history: Vec<LossRecord>,
    pub entries: Vec<EntryInfo>,
}

/// Summarise the archive at `path`: manifest, params snapshot (probe as its shape only), training
/// history (if stored), entry list and each model's parameter count. Applies the same safety checks as `load_archive`.
pub fn inspect_archive(path: &Path) -> Result<ArchiveInfo, PersistError> {
    let (mut zip, manifest) = archive::open_checked(path)?;
    let (value, params) = archive::read_root_params(&mut zip)?;
    let (mut map, _) = snapshot::split(&value).map_err(|detail| PersistError::BadParams {
        path: path.to_path_buf(),
        entry: archive::PARAMS_ENTRY.into(),
        detail,
    })?;
    map.insert(
        snapshot::KEY_INTENSITY_SCALE.into(),
        serde_json::json!(params.intensity_scale()),
    );
    let history = archive::read_root_history(&mut zip)?;
    let probe = params.probe().map(|p| ProbeSummary {
        shape: [p.n, p.n],
        dtype: "complex64".into(),
    });
    let mut models = Vec::new();
    for name in MODEL_NAMES {
        let entry = model_entry(name, WEIGHTS_FILE);
        let bytes = zip.read(&entry)?;
        let (tensors, parameters) =
            crate::weights::summarize(&bytes).map_err(|detail| PersistError::BadWeights {
                path: path.to_path_buf(),
                entry: entry.clone(),
                detail,
            })?;
        models.push(ModelInfo {
            name: name.into(),
            parameters,
            tensors,
            weights_bytes: bytes.len() as u64,
        });
    }
    Ok(ArchiveInfo {
        path: path.display().to_string(),
        manifest,
        model_type: params.model().model_type.to_string(),
        params: map,
        probe,
        models,
        history,
        entries: zip.entries().to_vec(),
    })
}

impl fmt::Display for ArchiveInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.manifest;
        writeln!(f, "archive: {}", self.path)?;
        writeln!(
            f,
            "format:  {} v{} (backend {}), written by ptycho {} at {}",
            m.format, m.format_version, m.backend, m.crate_version, m.created_at
        )?;
        let network = match self.model_type.as_str() {
            "supervised" => "supervised baseline (PtychoNN-style, MAE on amplitude and phase)",
            "pinn" => "PtychoPINN (physics-informed)",
            other => other,
        };
        writeln!(f, "type:    {} — {network}", self.model_type)?;
        let get = |k: &str| self.params.get(k).map_or("?".to_string(), Value::to_string);
        writeln!(
            f,
            "model:   N = {}, gridsize = {}, intensity_scale = {}",
            get("N"),
            get("gridsize"),
            get("intensity_scale")
        )?;
        match &self.probe {
            Some(p) => writeln!(f, "probe:   {}×{} {}", p.shape[0], p.shape[1], p.dtype)?,
            None => writeln!(f, "probe:   none stored")?,
        }
        match (self.history.first(), self.history.last()) {
            (Some(first), Some(last)) => writeln!(
                f,
                "history: {} epochs, loss {} (epoch {}) → {} (epoch {})",
                self.history.len(),
                first.loss,
                first.epoch,
                last.loss,
                last.epoch
            )?,
            _ => writeln!(f, "history: none stored")?,
        }
        writeln!(f, "models:")?;
        for mi in &self.models {
            writeln!(
                f,
                "  {:<20} {:>12} parameters in {} tensors ({} bytes)",
                mi.name, mi.parameters, mi.tensors, mi.weights_bytes
            )?;
        }
        writeln!(f, "entries:")?;
        for e in &self.entries {
            writeln!(f, "  {:>12} {:>12}  {}", e.size, e.compressed_size, e.name)?;
        }
        writeln!(f, "params:")?;
        for (k, v) in &self.params {
            writeln!(f, "  {k} = {v}")?;
        }
        Ok(())
    }
}
