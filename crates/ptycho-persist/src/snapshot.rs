//! The params snapshot `params.json`: the legacy flat view (`Params::to_legacy`) plus the runtime
//! entries the reference stores next to it: `intensity_scale` and the normalised `probe`.
//!
//! The probe is stored as JSON `{"n", "shape": [n, n], "dtype": "complex64", "layout", "re", "im"}`
//! with `re`/`im` row-major `[row, col]` float32 values (shortest round-trip decimals, so the
//! values come back bit-identical), readable by a person or by Python without numpy.

use num_complex::Complex32;
use ptycho_config::legacy::LegacyMap;
use ptycho_config::{Params, ProbeField};
use serde_json::{Value, json};

/// Key of the runtime intensity scale (dimensionless, multiplies amplitudes).
pub const KEY_INTENSITY_SCALE: &str = "intensity_scale";
/// Key of the runtime normalised probe (complex amplitude, N×N, or null).
pub const KEY_PROBE: &str = "probe";

/// Encode a params value as the snapshot JSON object. Errors name the offending value.
pub(crate) fn encode(params: &Params) -> Result<Value, String> {
    let mut map = params.to_legacy();
    let s = params.intensity_scale();
    if !s.is_finite() {
        return Err(format!("intensity_scale {s} is not finite"));
    }
    map.insert(KEY_INTENSITY_SCALE.into(), json!(s));
    let probe = match params.probe() {
        None => Value::Null,
        Some(p) => {
            if p.data.len() != p.n * p.n {
                return Err(format!(
                    "probe has {} values, expected n×n = {}",
                    p.data.len(),
                    p.n * p.n
                ));
            }
            if let Some(i) = p
                .data
                .iter()
                .position(|c| !c.re.is_finite() || !c.im.is_finite())
            {
                return Err(format!("probe value {i} ({}) is not finite", p.data[i]));
            }
            let re: Vec<f32> = p.data.iter().map(|c| c.re).collect();
            let im: Vec<f32> = p.data.iter().map(|c| c.im).collect();
            json!({
                "n": p.n,
                "shape": [p.n, p.n],
                "dtype": "complex64",
                "layout": "row-major [row, col]",
                "re": re,
                "im": im,
            })
        }
    };
    map.insert(KEY_PROBE.into(), probe);
    Ok(Value::Object(map.into_iter().collect()))
}

/// Split a snapshot into the legacy map (without `probe`) and the probe JSON value.
pub(crate) fn split(value: &Value) -> Result<(LegacyMap, Value), String> {
    let Value::Object(obj) = value else {
        return Err("the snapshot is not a JSON object".into());
    };
    let mut map: LegacyMap = obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let probe = map.remove(KEY_PROBE).unwrap_or(Value::Null);
    Ok((map, probe))
}

/// Decode the probe JSON value (null → no probe), checking it is `n`×`n` with `n` = `expect_n`.
pub(crate) fn decode_probe(value: &Value, expect_n: usize) -> Result<Option<ProbeField>, String> {
    if value.is_null() {
        return Ok(None);
    }
    let n = value
        .get("n")
        .and_then(Value::as_u64)
        .ok_or("probe.n is missing or not an integer")? as usize;
    if n != expect_n {
        return Err(format!("probe.n = {n} but the params say N = {expect_n}"));
    }
    let floats = |key: &str| -> Result<Vec<f32>, String> {
        let arr = value
            .get(key)
            .and_then(Value::as_array)
            .ok_or(format!("probe.{key} is missing or not an array"))?;
        if arr.len() != n * n {
            return Err(format!(
                "probe.{key} has {} values, expected n×n = {}",
                arr.len(),
                n * n
            ));
        }
        arr.iter()
            .enumerate()
            .map(|(i, v)| {
                // Parse the decimal straight to f32 (no f64 double rounding).
                serde_json::from_value::<f32>(v.clone())
                    .map_err(|_| format!("probe.{key}[{i}] = {v} is not a number"))
            })
            .collect()
    };
    let (re, im) = (floats("re")?, floats("im")?);
    let data = re
        .into_iter()
        .zip(im)
        .map(|(re, im)| Complex32::new(re, im))
        .collect();
    Ok(Some(ProbeField { n, data }))
}

/// Restore a params value from a snapshot (CONFIG-001 step 2): `Params::from_legacy`, then the
/// runtime probe and intensity scale.
pub(crate) fn restore(value: &Value) -> Result<Params, String> {
    let (map, probe) = split(value)?;
    let s = map
        .get(KEY_INTENSITY_SCALE)
        .and_then(Value::as_f64)
        .ok_or("intensity_scale is missing or not a number")?;
    let mut params = Params::from_legacy(&map).map_err(|e| e.to_string())?;
    params = params.with_intensity_scale(s);
    if let Some(p) = decode_probe(&probe, params.n())? {
        params = params.with_probe(p);
    }
    Ok(params)
}
