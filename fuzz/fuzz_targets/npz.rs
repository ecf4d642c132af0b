//! NPZ reader: arbitrary bytes written to a file and read with `RawData::from_npz` must give Ok
//! (then the data satisfy the contract) or an error naming the file, never a panic or an
//! allocation beyond what the bytes can hold (libFuzzer's -rss_limit_mb / -malloc_limit_mb).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ptycho_workflows::RawData;

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("ptycho-fuzz-npz-{}.npz", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");
    match RawData::from_npz(path) {
        Ok(raw) => {
            raw.validate(path)
                .expect("a loaded dataset satisfies the contract");
            assert!(raw.diff3d.iter().all(|v| v.is_finite() && *v >= 0.0));
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&*path.to_string_lossy()),
                "error does not name the file: {msg}"
            );
            assert!(!msg.contains('\n'), "multi-line error: {msg:?}");
        }
    }
});
