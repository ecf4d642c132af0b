//! `inspect_archive`: what `ptycho inspect PATH [--json]` shows, read without building any model.

use std::fmt;
use std::path::Path;

use ptycho_config::legacy::LegacyMap;
use serde::Serialize;
use serde_json::Value;

use crate::archive::{self, MODEL_NAMES, Manifest, WEIGHTS_FILE, model_entry};
use crate::error::PersistError;
use crate::snapshot;
use crate::zipread::EntryInfo;

/// Largest accepted safetensors JSON header (bytes).
const MAX_HEADER_BYTES: u64 = 100 << 20;

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
    /// The params snapshot without the probe array (legacy flat keys + `intensity_scale`).
    pub params: LegacyMap,
    pub probe: Option<ProbeSummary>,
    pub models: Vec<ModelInfo>,
    pub entries: Vec<EntryInfo>,
}

/// Bytes per element of a safetensors dtype.
fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

/// Tensor count and scalar parameter count from a safetensors file's header, checking that the
/// header is well formed and every tensor's data lies within the file and has the size its shape
/// and dtype need.
pub fn parse_safetensors_header(bytes: &[u8]) -> Result<(usize, u64), String> {
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or("file shorter than the 8-byte header length")?;
    let header_len = u64::from_le_bytes(len_bytes);
    let rest = bytes.len() as u64 - 8;
    if header_len > MAX_HEADER_BYTES || header_len > rest {
        return Err(format!(
            "header length {header_len} exceeds the file ({rest} bytes after the length)"
        ));
    }
    let header: serde_json::Map<String, Value> =
        serde_json::from_slice(&bytes[8..8 + header_len as usize])
            .map_err(|e| format!("header is not a JSON object: {e}"))?;
    let data_len = rest - header_len;
    let (mut tensors, mut params) = (0usize, 0u64);
    for (name, t) in header.iter().filter(|(k, _)| k.as_str() != "__metadata__") {
        let shape = t
            .get("shape")
            .and_then(Value::as_array)
            .ok_or(format!("tensor `{name}`: no shape"))?;
        let count = shape
            .iter()
            .try_fold(1u64, |acc, d| d.as_u64().and_then(|d| acc.checked_mul(d)));
        let count = count.ok_or(format!("tensor `{name}`: bad shape {shape:?}"))?;
        let offsets = t
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|o| Some((o.first()?.as_u64()?, o.get(1)?.as_u64()?)))
            .ok_or(format!("tensor `{name}`: no data_offsets"))?;
        if offsets.0 > offsets.1 || offsets.1 > data_len {
            return Err(format!(
                "tensor `{name}`: data_offsets {offsets:?} outside the {data_len}-byte data"
            ));
        }
        let dtype = t.get("dtype").and_then(Value::as_str).unwrap_or("?");
        let item = dtype_bytes(dtype).ok_or(format!("tensor `{name}`: unknown dtype {dtype:?}"))?;
        let span = offsets.1 - offsets.0;
        if count.checked_mul(item) != Some(span) {
            return Err(format!(
                "tensor `{name}`: shape {shape:?} of {dtype} needs {} bytes but data_offsets span {span}",
                count.saturating_mul(item)
            ));
        }
        tensors += 1;
        params = params.saturating_add(count);
    }
    Ok((tensors, params))
}

/// Summarise the archive at `path`: manifest, params snapshot (probe as its shape only), entry
/// list and each model's parameter count. Applies the same safety checks as `load_archive`.
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
    let probe = params.probe().map(|p| ProbeSummary {
        shape: [p.n, p.n],
        dtype: "complex64".into(),
    });
    let mut models = Vec::new();
    for name in MODEL_NAMES {
        let entry = model_entry(name, WEIGHTS_FILE);
        let bytes = zip.read(&entry)?;
        let (tensors, parameters) =
            parse_safetensors_header(&bytes).map_err(|detail| PersistError::BadWeights {
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
        params: map,
        probe,
        models,
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
