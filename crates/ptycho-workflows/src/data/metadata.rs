//! The simulator's `_metadata` entry (spec §2.1, DATA-002): one JSON string in a 0-d numpy
//! array. The reference wrote it as a pickled object array, and now writes a unicode array
//! (`<U{k}`, readable without pickle); both are read, plus byte strings (`|S{k}`). From a pickle
//! only the text is extracted, by walking its opcodes and collecting their string operands; no
//! Python object is ever built, so a hostile pickle can at worst be unreadable. The reference's
//! `train.py` trains with `physics_parameters.nphotons` (or a top-level `nphotons`) of this JSON
//! instead of the configured photon count, and so does `ptycho train`.
//!
//! Files we write carry `_metadata` in the unicode form ([`UnicodeScalar`], [`metadata_json`]).

use std::io::{Cursor, Write};

use ndarray_npy::{WriteNpyError, WriteNpyExt};

use super::npz::{Reader, read_npy_header};

/// Largest `_metadata` entry read (bytes); the reference writes well under 2 KiB.
const MAX_METADATA_BYTES: u64 = 1 << 20;

/// `nphotons` of the file's `_metadata`, if it has one that can be read. Unreadable metadata is
/// not an error (the arrays are what matter): it is logged and ignored.
pub(crate) fn metadata_nphotons(r: &mut Reader) -> Option<f64> {
    let path = r.path().to_path_buf();
    let result = r
        .small_entry("_metadata", MAX_METADATA_BYTES)?
        .and_then(|bytes| nphotons_from_npy(&bytes));
    match result {
        Ok(n) => n,
        Err(reason) => {
            tracing::warn!(file = %path.display(), key = "_metadata", "ignoring metadata: {reason}");
            None
        }
    }
}

/// `nphotons` from the NPY bytes of a 0-d array whose text is a JSON object.
fn nphotons_from_npy(npy: &[u8]) -> Result<Option<f64>, String> {
    let strings = npy_strings(npy)?;
    let json = strings
        .iter()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .find(|v| v.is_object())
        .ok_or("no JSON object in the array")?;
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

/// The text of a one-element NPY array: the string operands of a pickled object array, or the
/// string of a unicode (`<U{k}`, `>U{k}`) or byte-string (`|S{k}`) array.
fn npy_strings(npy: &[u8]) -> Result<Vec<String>, String> {
    let (descr, shape, header_len, _) = read_npy_header(&mut Cursor::new(npy))?;
    let payload = usize::try_from(header_len)
        .ok()
        .and_then(|h| npy.get(h..))
        .ok_or("truncated NPY header")?;
    if shape.iter().product::<usize>() != 1 {
        return Err(format!("shape {shape:?}, expected a single string"));
    }
    let width = |rest: &str| -> Result<usize, String> {
        rest.parse::<usize>()
            .ok()
            .filter(|&k| k <= MAX_METADATA_BYTES as usize)
            .ok_or_else(|| format!("unsupported dtype {descr}"))
    };
    match descr.as_str() {
        "|O" | "O" => pickle_strings(payload),
        d if d.starts_with("<U") || d.starts_with(">U") || d.starts_with("=U") => {
            let k = width(&d[2..])?;
            let bytes = payload
                .get(..4 * k)
                .ok_or_else(|| format!("{k}-character string truncated"))?;
            let text = bytes
                .chunks_exact(4)
                .map(|c| {
                    let b = [c[0], c[1], c[2], c[3]];
                    let u = if d.starts_with('>') {
                        u32::from_be_bytes(b)
                    } else {
                        u32::from_le_bytes(b)
                    };
                    char::from_u32(u).ok_or_else(|| format!("invalid code point {u:#x}"))
                })
                .collect::<Result<String, String>>()?;
            Ok(vec![text.trim_end_matches('\0').to_string()])
        }
        d if d.starts_with("|S") || d.starts_with("S") => {
            let k = width(d.trim_start_matches('|').trim_start_matches('S'))?;
            let bytes = payload
                .get(..k)
                .ok_or_else(|| format!("{k}-byte string truncated"))?;
            let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            String::from_utf8(bytes[..end].to_vec())
                .map(|t| vec![t])
                .map_err(|e| format!("byte string is not UTF-8: {e}"))
        }
        d => Err(format!("unsupported dtype {d}, expected a string")),
    }
}

/// The `_metadata` JSON of a file we write, in the reference's layout (schema 1.0.0):
/// `physics_parameters.nphotons` and `N`, plus who wrote it.
pub(crate) fn metadata_json(nphotons: f64, n: usize) -> String {
    serde_json::json!({
        "schema_version": "1.0.0",
        "creation_info": {
            "script": "ptycho",
            "ptycho_version": env!("CARGO_PKG_VERSION"),
        },
        "physics_parameters": { "nphotons": nphotons, "N": n },
        "data_transformations": [],
    })
    .to_string()
}

/// A string written as a 0-d numpy unicode array (`np.array(text)`: dtype `<U{chars}`,
/// UTF-32LE, shape `()`), the form the reference now stores `_metadata` in.
pub(crate) struct UnicodeScalar(pub String);

impl WriteNpyExt for UnicodeScalar {
    fn write_npy<W: Write>(&self, mut w: W) -> Result<(), WriteNpyError> {
        let chars = self.0.chars().count().max(1);
        let dict = format!("{{'descr': '<U{chars}', 'fortran_order': False, 'shape': (), }}");
        // NPY 1.0: magic (6) + version (2) + length (2) + header, padded with spaces and a final
        // newline to a multiple of 64 bytes.
        let unpadded = 10 + dict.len() + 1;
        let header = format!(
            "{dict}{}\n",
            " ".repeat(unpadded.next_multiple_of(64) - unpadded)
        );
        w.write_all(b"\x93NUMPY\x01\x00")?;
        let len =
            u16::try_from(header.len()).map_err(|e| WriteNpyError::Io(std::io::Error::other(e)))?;
        w.write_all(&len.to_le_bytes())?;
        w.write_all(header.as_bytes())?;
        let mut data: Vec<u8> = self
            .0
            .chars()
            .flat_map(|c| u32::from(c).to_le_bytes())
            .collect();
        data.resize(4 * chars, 0);
        w.write_all(&data)?;
        w.flush()?;
        Ok(())
    }
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

    fn unicode(json: &str) -> Vec<u8> {
        let mut v = Vec::new();
        UnicodeScalar(json.to_string()).write_npy(&mut v).unwrap();
        v
    }

    #[test]
    fn unicode_scalars_round_trip_and_match_numpy_layout() {
        let j = metadata_json(1e6, 64);
        let npy = unicode(&j);
        // numpy: header block a multiple of 64 bytes, then 4 bytes per character.
        let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        assert_eq!(npy.len(), 10 + hlen + 4 * j.chars().count());
        assert!(
            String::from_utf8_lossy(&npy[10..10 + hlen]).starts_with(&format!(
                "{{'descr': '<U{}', 'fortran_order': False, 'shape': (), }}",
                j.chars().count()
            ))
        );
        assert_eq!(nphotons_from_npy(&npy), Ok(Some(1e6)));
        assert_eq!(npy_strings(&npy).unwrap(), vec![j]);
        // Non-ASCII text and the empty string.
        assert_eq!(
            npy_strings(&unicode("Å→😀")).unwrap(),
            vec!["Å→😀".to_string()]
        );
        assert_eq!(npy_strings(&unicode("")).unwrap(), vec![String::new()]);
    }

    #[test]
    fn byte_strings_and_big_endian_unicode_are_read() {
        let j = r#"{"physics_parameters": {"nphotons": 2e7}}"#;
        let npy_shaped = |descr: &str, shape: &str, payload: &[u8]| {
            let dict =
                format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            v.extend_from_slice(dict.as_bytes());
            v.extend_from_slice(payload);
            v
        };
        let npy_of = |descr: &str, payload: &[u8]| npy_shaped(descr, "()", payload);
        let mut s = j.as_bytes().to_vec();
        s.extend_from_slice(&[0, 0]);
        assert_eq!(
            nphotons_from_npy(&npy_of(&format!("|S{}", s.len()), &s)),
            Ok(Some(2e7))
        );
        let be: Vec<u8> = j.chars().flat_map(|c| u32::from(c).to_be_bytes()).collect();
        assert_eq!(
            nphotons_from_npy(&npy_of(&format!(">U{}", j.len()), &be)),
            Ok(Some(2e7))
        );
        // Wrong element type, more than one element, truncated data, bad code point.
        assert!(nphotons_from_npy(&npy_of("<f8", &[0; 8])).is_err());
        let two = npy_shaped("<U4", "(2,)", &[0; 32]);
        assert!(npy_strings(&two).unwrap_err().contains("shape"));
        assert!(nphotons_from_npy(&npy_of(&format!("<U{}", j.len()), &be[..8])).is_err());
        assert!(npy_strings(&npy_of("<U1", &[0, 0, 0x11, 0])).is_err());
        assert!(npy_strings(&npy_of("<U99999999999", &[])).is_err());
    }

    #[test]
    fn corrupted_unicode_metadata_never_panics() {
        let good = unicode(&metadata_json(1e6, 64));
        for cut in 0..good.len() {
            let _ = nphotons_from_npy(&good[..cut]);
        }
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5_000 {
            let mut bad = good.clone();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let at = (state as usize) % bad.len();
            bad[at] = (state >> 32) as u8;
            let _ = nphotons_from_npy(&bad);
        }
    }
}
