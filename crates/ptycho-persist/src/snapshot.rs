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

#[cfg(test)]
mod tests {
    use super::*;
    use ptycho_config::TrainingConfig;

    fn params() -> Params {
        Params::from_training(&TrainingConfig::default().validate().unwrap())
    }

    /// Float32 probe values of all magnitudes survive JSON text bit-exactly.
    #[test]
    fn probe_values_round_trip_bit_exactly_through_json_text() {
        let n = 64;
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Random finite float32 across exponents 2^-40 .. 2^40, either sign.
            let mant = (state & 0x7f_ffff) as u32;
            let exp = 87 + ((state >> 23) % 80) as u32;
            f32::from_bits(((state >> 40) as u32 & 0x8000_0000) | (exp << 23) | mant)
        };
        let data: Vec<Complex32> = (0..n * n).map(|_| Complex32::new(next(), next())).collect();
        let p = params().with_probe(ProbeField { n, data });
        let text = serde_json::to_string(&encode(&p).unwrap()).unwrap();
        let back = restore(&serde_json::from_str(&text).unwrap()).unwrap();
        let (a, b) = (back.probe().unwrap(), p.probe().unwrap());
        for (x, y) in a.data.iter().zip(&b.data) {
            assert_eq!(x.re.to_bits(), y.re.to_bits(), "{} vs {}", x.re, y.re);
            assert_eq!(x.im.to_bits(), y.im.to_bits(), "{} vs {}", x.im, y.im);
        }
    }

    #[test]
    fn probe_of_wrong_size_is_refused() {
        let p = params().with_probe(ProbeField {
            n: 32,
            data: vec![Complex32::new(1.0, 0.0); 32 * 32],
        });
        let v = encode(&p).unwrap();
        let err = restore(&v).unwrap_err();
        assert!(err.contains("probe.n = 32"), "{err}");
        let bad = params().with_probe(ProbeField {
            n: 64,
            data: vec![Complex32::new(f32::NAN, 0.0); 64 * 64],
        });
        assert!(encode(&bad).unwrap_err().contains("not finite"));
    }
}
