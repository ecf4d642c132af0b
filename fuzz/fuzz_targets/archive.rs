//! Archive loader: arbitrary bytes written to a file, then `inspect_archive` and `load_archive`
//! (with a small model whose shape depends on the restored params) must give Ok or an error
//! naming the file, never a panic, never a write outside the scratch file.
#![no_main]

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::OnceLock;

use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use ptycho_config::Params;
use ptycho_persist::{inspect_archive, load_archive};

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("ptycho-fuzz-archive-{}.zip", std::process::id()))
    })
}

fn build(p: &Params) -> Result<Linear, Infallible> {
    Ok(LinearConfig::new(p.channels(), 2).init(&Device::flex()))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");
    let name = path.to_string_lossy().into_owned();
    if let Err(e) = inspect_archive(path) {
        let msg = e.to_string();
        assert!(msg.contains(&name), "error does not name the file: {msg}");
    }
    if let Err(e) = load_archive(path, build) {
        let msg = e.to_string();
        assert!(msg.contains(&name), "error does not name the file: {msg}");
    }
});
