//! The params snapshot `params.json`: the legacy flat view (`Params::to_legacy`) plus the runtime
//! entries the reference stores next to it: `intensity_scale` and the normalised `probe`.
//!
//! The probe is stored as JSON `{"n", "shape": [n, n], "dtype": "complex64", "layout", "re", "im"}`
//! with `re`/`im` row-major `[row, col]` float32 values (decimals that come back bit-identical),
//! readable by a person or by Python without numpy ([`StoredProbe`]; the training checkpoint
//! stores the same struct as bincode).

use num_complex::Complex32;
use ptycho_config::legacy::LegacyMap;
use ptycho_config::{Params, ProbeField};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Key of the runtime intensity scale (dimensionless, multiplies amplitudes).
pub const KEY_INTENSITY_SCALE: &str = "intensity_scale";
/// Key of the runtime normalised probe (complex amplitude, N×N, or null).
pub const KEY_PROBE: &str = "probe";

/// `dtype` of a stored probe.
const PROBE_DTYPE: &str = "complex64";
/// `layout` of a stored probe.
const PROBE_LAYOUT: &str = "row-major [row, col]";

/// The stored form of the normalised probe: the one representation of a probe on disk. The
/// archive writes it as JSON inside `params.json`, the training checkpoint as bincode
/// (`probe.bin`); both are checked on reading by [`StoredProbe::into_field`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredProbe {
    pub n: usize,
    pub shape: [usize; 2],
    pub dtype: String,
    pub layout: String,
    /// Real parts, row-major `[row, col]`.
    pub re: Vec<f32>,
    /// Imaginary parts, row-major `[row, col]`.
    pub im: Vec<f32>,
}

impl StoredProbe {
    /// The stored form of `p`, refusing a probe whose size or values are not storable.
    pub(crate) fn from_field(p: &ProbeField) -> Result<StoredProbe, String> {
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
        Ok(StoredProbe {
            n: p.n,
            shape: [p.n, p.n],
            dtype: PROBE_DTYPE.into(),
            layout: PROBE_LAYOUT.into(),
            re: p.data.iter().map(|c| c.re).collect(),
            im: p.data.iter().map(|c| c.im).collect(),
        })
    }

    /// The probe, checked to be `expect_n`×`expect_n` finite complex64 values (an error names
    /// the field at fault and the sizes).
    pub(crate) fn into_field(self, expect_n: usize) -> Result<ProbeField, String> {
        let n = self.n;
        if n != expect_n {
            return Err(format!("probe.n = {n} but the params say N = {expect_n}"));
        }
        if self.shape != [n, n] {
            return Err(format!(
                "probe.shape = {:?}, expected [{n}, {n}]",
                self.shape
            ));
        }
        if self.dtype != PROBE_DTYPE || self.layout != PROBE_LAYOUT {
            return Err(format!(
                "probe dtype {:?} / layout {:?}, expected {PROBE_DTYPE:?} / {PROBE_LAYOUT:?}",
                self.dtype, self.layout
            ));
        }
        for (key, values) in [("re", &self.re), ("im", &self.im)] {
            if values.len() != n * n {
                return Err(format!(
                    "probe.{key} has {} values, expected n×n = {}",
                    values.len(),
                    n * n
                ));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(format!("probe.{key}[{i}] = {} is not finite", values[i]));
            }
        }
        let data = self
            .re
            .into_iter()
            .zip(self.im)
            .map(|(re, im)| Complex32::new(re, im))
            .collect();
        Ok(ProbeField { n, data })
    }
}

/// The params without the probe: the legacy flat view plus `intensity_scale`.
pub(crate) fn encode_map(params: &Params) -> Result<LegacyMap, String> {
    let mut map = params.to_legacy();
    let s = params.intensity_scale();
    if !s.is_finite() {
        return Err(format!("intensity_scale {s} is not finite"));
    }
    map.insert(KEY_INTENSITY_SCALE.into(), json!(s));
    Ok(map)
}

/// Encode a params value as the snapshot JSON object ([`encode_map`] plus the probe as JSON, or
/// null). Errors name the offending value.
pub(crate) fn encode(params: &Params) -> Result<Value, String> {
    let mut map = encode_map(params)?;
    let probe = match params.probe() {
        None => Value::Null,
        Some(p) => serde_json::to_value(StoredProbe::from_field(p)?).map_err(|e| e.to_string())?,
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
    let probe = map
        .remove(KEY_PROBE)
        .ok_or("`probe` is missing (it is null when no probe is stored)")?;
    Ok((map, probe))
}

/// Decode the probe JSON value (null → no probe), checking it is `n`×`n` with `n` = `expect_n`.
pub(crate) fn decode_probe(value: Value, expect_n: usize) -> Result<Option<ProbeField>, String> {
    if value.is_null() {
        return Ok(None);
    }
    // f32 fields take the JSON number as parsed (f64) and narrow it: the values were written
    // from f32, so they come back bit-identical.
    let stored: StoredProbe = serde_json::from_value(value).map_err(|e| format!("probe: {e}"))?;
    stored.into_field(expect_n).map(Some)
}

/// Restore the params without the probe from [`encode_map`]'s map: `Params::from_legacy`, then
/// the runtime intensity scale.
pub(crate) fn restore_map(map: &LegacyMap) -> Result<Params, String> {
    let s = map
        .get(KEY_INTENSITY_SCALE)
        .and_then(Value::as_f64)
        .ok_or("intensity_scale is missing or not a number")?;
    let params = Params::from_legacy(map).map_err(|e| e.to_string())?;
    Ok(params.with_intensity_scale(s))
}

/// Restore a params value from a snapshot (CONFIG-001 step 2): `Params::from_legacy`, then the
/// runtime probe and intensity scale.
pub(crate) fn restore(value: &Value) -> Result<Params, String> {
    let (map, probe) = split(value)?;
    let mut params = restore_map(&map)?;
    if let Some(p) = decode_probe(probe, params.n())? {
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
