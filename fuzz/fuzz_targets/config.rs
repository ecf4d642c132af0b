//! Config files: arbitrary text parsed as TOML and as JSON must give Ok or a one-line error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ptycho_config::file::{FileFormat, parse_inference_config, parse_training_config};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for format in [FileFormat::Toml, FileFormat::Json] {
        if let Err(e) = parse_training_config(text, format, "fuzz.cfg") {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
            assert!(
                msg.starts_with("fuzz.cfg"),
                "error does not name the file: {msg}"
            );
        } else if let Ok(cfg) = parse_training_config(text, format, "fuzz.cfg") {
            // validation of the relations between fields must not panic either
            let _ = cfg.validate();
        }
        let _ = parse_inference_config(text, format, "fuzz.cfg");
    }
});
