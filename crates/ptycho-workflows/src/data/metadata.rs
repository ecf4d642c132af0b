//! The reference simulator's `_metadata` entry (spec §2.1, DATA-002): a pickled 0-d numpy object
//! array holding one JSON string. Only that string is extracted, by walking the pickle's opcodes
//! and collecting its text operands; no Python object is ever built, so a hostile pickle can at
//! worst be unreadable. The reference's `train.py` trains with `physics_parameters.nphotons` (or a
//! top-level `nphotons`) of this JSON instead of the configured photon count.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// Largest `_metadata` entry read (bytes); the reference writes well under 2 KiB.
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// `nphotons` of the file's `_metadata`, if it has one that can be read. Unreadable metadata is
/// not an error (the arrays are what matter): it is logged and ignored.
pub(crate) fn metadata_nphotons(path: &Path) -> Option<f64> {
    let bytes = match read_entry(path, "_metadata.npy") {
        Ok(Some(b)) => b,
        Ok(None) => return None,
        Err(reason) => {
            tracing::warn!(file = %path.display(), key = "_metadata", "ignoring metadata: {reason}");
            return None;
        }
    };
    match nphotons_from_npy(&bytes) {
        Ok(n) => n,
        Err(reason) => {
            tracing::warn!(file = %path.display(), key = "_metadata", "ignoring metadata: {reason}");
            None
        }
    }
}

/// The bytes of one zip entry, bounded by [`MAX_METADATA_BYTES`]; `None` when there is no such entry.
fn read_entry(path: &Path, name: &str) -> Result<Option<Vec<u8>>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| e.to_string())?;
    let entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if entry.size() > MAX_METADATA_BYTES {
        return Err(format!(
            "{} bytes (more than {MAX_METADATA_BYTES})",
            entry.size()
        ));
    }
    let mut out = Vec::new();
    entry
        .take(MAX_METADATA_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() as u64 > MAX_METADATA_BYTES {
        return Err(format!("more than {MAX_METADATA_BYTES} bytes"));
    }
    Ok(Some(out))
}

/// `nphotons` from the NPY bytes of a pickled object array whose text is a JSON object.
fn nphotons_from_npy(npy: &[u8]) -> Result<Option<f64>, String> {
    let pickle = npy_payload(npy)?;
    let strings = pickle_strings(pickle)?;
    let json = strings
        .iter()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .find(|v| v.is_object())
        .ok_or("no JSON object in the pickled array")?;
    let n = json
        .get("physics_parameters")
        .and_then(|p| p.get("nphotons"))
        .or_else(|| json.get("nphotons"))
        .and_then(serde_json::Value::as_f64);
    match n {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(format!("nphotons {v} is not positive")),
        n => Ok(n),
    }
}

/// The data after an NPY header (magic, version, header length, header).
fn npy_payload(npy: &[u8]) -> Result<&[u8], String> {
    if npy.len() < 10 || &npy[..6] != b"\x93NUMPY" {
        return Err("not an NPY array".into());
    }
    let (len, start) = match npy[6] {
        1 => (u16::from_le_bytes([npy[8], npy[9]]) as usize, 10),
        2 | 3 if npy.len() >= 12 => (
            u32::from_le_bytes([npy[8], npy[9], npy[10], npy[11]]) as usize,
            12,
        ),
        v => return Err(format!("unsupported NPY version {v}")),
    };
    npy.get(start + len..)
        .ok_or_else(|| "truncated NPY header".to_string())
}

/// The text operands (unicode strings) of a pickle stream, in order, up to its STOP opcode.
///
/// Handles the opcodes numpy's object-array pickles use (protocols 2–5) and the other fixed-size
/// ones; any other opcode ends the walk with an error rather than a guess.
pub(crate) fn pickle_strings(p: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut i = 0usize;
    let take = |i: &mut usize, n: usize| -> Result<&[u8], String> {
        let end = i
            .checked_add(n)
            .filter(|&e| e <= p.len())
            .ok_or_else(|| format!("pickle truncated at byte {i}"))?;
        let s = &p[*i..end];
        *i = end;
        Ok(s)
    };
    let uint = |b: &[u8]| b.iter().rev().fold(0u64, |a, &x| (a << 8) | x as u64);
    while i < p.len() {
        let op = p[i];
        i += 1;
        match op {
            b'.' => return Ok(out),
            // Fixed-size operands: PROTO, BININT1, BINGET, BINPUT (1); BININT2 (2); BININT,
            // LONG_BINGET, LONG_BINPUT (4); FRAME, BINFLOAT (8).
            0x80 | b'K' | b'h' | b'q' => {
                take(&mut i, 1)?;
            }
            b'M' => {
                take(&mut i, 2)?;
            }
            b'J' | b'j' | b'r' => {
                take(&mut i, 4)?;
            }
            0x95 | b'G' => {
                take(&mut i, 8)?;
            }
            // Text: SHORT_BINUNICODE (1-byte length), BINUNICODE (4), BINUNICODE8 (8).
            0x8c | b'X' | 0x8d => {
                let w = match op {
                    0x8c => 1,
                    b'X' => 4,
                    _ => 8,
                };
                let n = usize::try_from(uint(take(&mut i, w)?)).map_err(|e| e.to_string())?;
                let s = take(&mut i, n)?;
                out.push(String::from_utf8_lossy(s).into_owned());
            }
            // Bytes: SHORT_BINBYTES (1), BINBYTES (4), BINBYTES8 (8); skipped.
            b'C' | b'B' | 0x8e => {
                let w = match op {
                    b'C' => 1,
                    b'B' => 4,
                    _ => 8,
                };
                let n = usize::try_from(uint(take(&mut i, w)?)).map_err(|e| e.to_string())?;
                take(&mut i, n)?;
            }
            // GLOBAL: module and name, each newline-terminated.
            b'c' => {
                for _ in 0..2 {
                    let nl = p[i..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .ok_or("pickle GLOBAL without newline")?;
                    i += nl + 1;
                }
            }
            // No operand: MARK, TUPLE*, EMPTY_*, REDUCE, BUILD, APPEND(S), SETITEM(S), NONE,
            // NEWTRUE/NEWFALSE, STACK_GLOBAL, MEMOIZE, POP, POP_MARK, DUP, NEWOBJ, ADDITEMS,
            // EMPTY_SET, FROZENSET.
            b'(' | b't' | 0x85 | 0x86 | 0x87 | b')' | b']' | b'}' | b'R' | b'b' | b'a' | b'e'
            | b's' | b'u' | b'N' | 0x88 | 0x89 | 0x93 | 0x94 | b'0' | b'1' | b'2' | 0x81 | 0x90
            | 0x8f | 0x91 => {}
            other => {
                return Err(format!(
                    "unsupported pickle opcode 0x{other:02x} at byte {}",
                    i - 1
                ));
            }
        }
    }
    Err("pickle without STOP".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `np.save(buf, np.array(json.dumps(meta), dtype=object), allow_pickle=True)` with numpy
    /// 2.x, meta = `{"schema_version": "1.0.0", "physics_parameters": {"nphotons": 1000000.0}}`
    /// (header padding shortened; the pickle bytes are numpy's).
    fn numpy_pickle(json: &str) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00");
        p.extend_from_slice(b"\x8c\x16numpy._core.multiarray\x94\x8c\x0c_reconstruct\x94\x93\x94");
        p.extend_from_slice(
            b"\x8c\x05numpy\x94\x8c\x07ndarray\x94\x93\x94K\x00\x85\x94C\x01b\x94\x87\x94R\x94",
        );
        p.extend_from_slice(
            b"(K\x01)h\x03\x8c\x05dtype\x94\x93\x94\x8c\x02O8\x94\x89\x88\x87\x94R\x94",
        );
        p.extend_from_slice(
            b"(K\x03\x8c\x01|\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK?t\x94b\x89]\x94",
        );
        if json.len() < 256 {
            p.push(0x8c);
            p.push(json.len() as u8);
        } else {
            p.push(b'X');
            p.extend_from_slice(&(json.len() as u32).to_le_bytes());
        }
        p.extend_from_slice(json.as_bytes());
        p.extend_from_slice(b"\x94at\x94b.");
        let header = "{'descr': '|O', 'fortran_order': False, 'shape': (), }\n";
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
        npy.extend_from_slice(header.as_bytes());
        npy.extend_from_slice(&p);
        npy
    }

    #[test]
    fn reads_nphotons_of_physics_parameters_and_top_level() {
        let j = r#"{"schema_version": "1.0.0", "physics_parameters": {"nphotons": 1000000.0, "N": 64}}"#;
        assert_eq!(nphotons_from_npy(&numpy_pickle(j)), Ok(Some(1e6)));
        assert_eq!(
            nphotons_from_npy(&numpy_pickle(r#"{"nphotons": 5e8}"#)),
            Ok(Some(5e8))
        );
        assert_eq!(
            nphotons_from_npy(&numpy_pickle(r#"{"schema_version": "1.0.0"}"#)),
            Ok(None)
        );
        let long = format!(r#"{{"nphotons": 1e7, "pad": "{}"}}"#, "x".repeat(400));
        assert_eq!(nphotons_from_npy(&numpy_pickle(&long)), Ok(Some(1e7)));
    }

    /// Every truncation and many single-byte corruptions of a real pickle, plus random bytes,
    /// are read without a panic (an error or some strings, never a crash).
    #[test]
    fn corrupted_pickles_never_panic() {
        let good = numpy_pickle(r#"{"physics_parameters": {"nphotons": 1e6}}"#);
        for cut in 0..good.len() {
            let _ = nphotons_from_npy(&good[..cut]);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..20_000 {
            let mut bad = good.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() as usize) % bad.len();
                bad[at] = next() as u8;
            }
            let _ = nphotons_from_npy(&bad);
            let len = (next() % 64) as usize;
            let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = pickle_strings(&noise);
        }
    }

    #[test]
    fn bad_metadata_is_an_error_not_a_guess() {
        assert!(nphotons_from_npy(&numpy_pickle(r#"{"nphotons": -3}"#)).is_err());
        assert!(nphotons_from_npy(&numpy_pickle("not json")).is_err());
        let mut cut = numpy_pickle(r#"{"nphotons": 1e6}"#);
        cut.truncate(cut.len() - 12);
        assert!(nphotons_from_npy(&cut).is_err());
        assert!(nphotons_from_npy(b"\x93NUMPY\x01\x00\xff\xff").is_err());
        assert!(pickle_strings(b"\x80\x04\xff.").is_err());
        assert!(pickle_strings(b"X\xff\xff\xff\x7f").is_err());
    }
}
