//! Tampered weights: a valid archive whose `autoencoder/model.safetensors` entry is replaced by the
//! fuzz input. `load_archive` must refuse bad weights with an error (shape, dtype, offsets, JSON),
//! never panic. Reaches burn's safetensors reader, which random zip bytes almost never do.
#![no_main]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use libfuzzer_sys::fuzz_target;
use ptycho_config::{Params, TrainingConfig};
use ptycho_persist::{SaveOptions, load_archive, save_archive};

const TARGET: &str = "autoencoder/model.safetensors";

fn build(p: &Params) -> Result<Linear, Infallible> {
    Ok(LinearConfig::new(p.channels(), 2).init(&Device::flex()))
}

struct State {
    path: PathBuf,
    /// Entries of a valid archive (name, bytes), in order.
    entries: Vec<(String, Vec<u8>)>,
}

fn state() -> &'static State {
    static S: OnceLock<State> = OnceLock::new();
    S.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let valid = dir.join(format!(
            "ptycho-fuzz-weights-valid-{}.zip",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&valid);
        let params = Params::from_training(&TrainingConfig::default().validate().unwrap());
        save_archive(
            &valid,
            &build(&params).unwrap(),
            &params,
            &SaveOptions::default(),
        )
        .unwrap();
        let mut z = zip::ZipArchive::new(std::fs::File::open(&valid).unwrap()).unwrap();
        let entries = (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).unwrap();
                let mut b = Vec::new();
                f.read_to_end(&mut b).unwrap();
                (f.name().unwrap().into_owned(), b)
            })
            .collect();
        let _ = std::fs::remove_file(&valid);
        State {
            path: dir.join(format!("ptycho-fuzz-weights-{}.zip", std::process::id())),
            entries,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = state();
    {
        let mut w = zip::ZipWriter::new(std::fs::File::create(&s.path).unwrap());
        let o = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, bytes) in &s.entries {
            w.start_file(name.as_str(), o).unwrap();
            w.write_all(if name == TARGET { data } else { bytes })
                .unwrap();
        }
        w.finish().unwrap();
    }
    if let Err(e) = load_archive(&s.path, build) {
        let msg = e.to_string();
        assert!(
            msg.contains(&*s.path.to_string_lossy()),
            "error does not name the file: {msg}"
        );
    }
});
