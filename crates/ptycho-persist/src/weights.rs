//! The safetensors weights file of a model directory: its header checked and summarised with the
//! `safetensors` crate (the one burn writes and reads it with) before burn applies it.

/// Tensor count and scalar parameter count of a safetensors file, after checking that the header
/// is well formed and every tensor's data lies within the file, has the size its shape and dtype
/// need, and that the tensors cover the data exactly.
pub(crate) fn summarize(bytes: &[u8]) -> Result<(usize, u64), String> {
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let tensors = metadata.tensors();
    let parameters = tensors
        .values()
        .map(|t| t.shape.iter().map(|&d| d as u64).product::<u64>())
        .fold(0u64, u64::saturating_add);
    Ok((tensors.len(), parameters))
}

#[cfg(test)]
mod tests {
    use super::summarize;

    /// A safetensors file of one F32 tensor of `shape` with `data` bytes after the header.
    fn file(shape: &str, offsets: &str, data: usize) -> Vec<u8> {
        let header =
            format!(r#"{{"w":{{"dtype":"F32","shape":{shape},"data_offsets":{offsets}}}}}"#);
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.resize(out.len() + data, 0);
        out
    }

    #[test]
    fn counts_tensors_and_parameters_and_refuses_inconsistent_headers() {
        assert_eq!(summarize(&file("[2,3]", "[0,24]", 24)), Ok((1, 6)));
        assert!(
            summarize(&file("[2,3]", "[0,24]", 20)).is_err(),
            "data short"
        );
        assert!(
            summarize(&file("[4,3]", "[0,24]", 24)).is_err(),
            "shape vs span"
        );
        assert!(summarize(&file("[2,3]", "[0,1099511627776]", 24)).is_err());
        assert!(summarize(b"\x80\x02ctorch\n").is_err());
        assert!(summarize(&[]).is_err());
    }
}
