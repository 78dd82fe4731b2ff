//! Helpers shared by the end-to-end tests (`cli`, `window`, `gpu_bench`): where the
//! binaries, the repository and the bundled model are, and running the binary.
#![allow(dead_code)] // Each test crate uses its own subset.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `foramen` binary cargo built for these tests.
pub fn bin() -> &'static str {
    // Only the `foramen` package's tests have it; the others never call this.
    match option_env!("CARGO_BIN_EXE_foramen") {
        Some(path) => path,
        None => panic!("this test crate is not the foramen package's"),
    }
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The bundled FP32 lumbar model.
pub fn bundled_model() -> String {
    repo()
        .join("models/lumbar-synth.onnx")
        .display()
        .to_string()
}

/// The vocalfolds data set (`../shared`) and a list of every `step`-th entry of its
/// `val.txt`, written into `dir`; `None` (and a note) where the data set is not present.
pub fn vocalfolds_val_subset(dir: &Path, step: usize) -> Option<(PathBuf, PathBuf)> {
    let data = repo().join("../shared/data/vocalfolds");
    if !data.exists() {
        eprintln!("skipping: {} not present", data.display());
        return None;
    }
    let list = dir.join("few.txt");
    let lines: Vec<String> = std::fs::read_to_string(data.join("val.txt"))
        .expect("val.txt")
        .lines()
        .step_by(step)
        .map(String::from)
        .collect();
    std::fs::write(&list, lines.join("\n")).expect("list");
    Some((data, list))
}

/// A run's stdout and stderr together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `foramen ARGS`.
pub fn foramen(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run foramen")
}

/// Runs `foramen ARGS`, which must succeed; its output.
pub fn ok(args: &[&str]) -> String {
    let out = foramen(args);
    let text = text(&out);
    assert!(out.status.success(), "foramen {args:?} failed:\n{text}");
    text
}

/// Records `frames` frames of `device` with the bundled model through the real binary
/// (`foramen live --headless --record`) under `dir/rec`; the session folder.
pub fn record_synthetic(dir: &Path, device: &str, frames: u64) -> PathBuf {
    record(dir, device, &bundled_model(), frames, &[])
}

/// Records `frames` frames of `device` (a live source: a folder plays again from its
/// start, so the count ends it) with `model` and the environment `env` (a
/// `FORAMEN_FAULT_INJECT` fault) under `dir/rec`; the session folder.
pub fn record(dir: &Path, device: &str, model: &str, frames: u64, env: &[(&str, &str)]) -> PathBuf {
    let rec = dir.join("rec");
    let out = Command::new(bin())
        .args(["live", "--device", device, "--headless", "--record"])
        .args(["--record-dir", &rec.display().to_string(), "--model", model])
        .args(["--exit-after-frames", &frames.to_string()])
        .envs(env.iter().copied())
        .output()
        .expect("foramen runs");
    assert!(out.status.success(), "recording failed:\n{}", text(&out));
    let mut sessions: Vec<PathBuf> = std::fs::read_dir(&rec)
        .expect("rec")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    sessions.remove(0)
}

/// The first entry of folder `dir` (the one session a recording folder holds, an image
/// of a data set).
pub fn first_entry(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .next()
        .unwrap_or_else(|| panic!("{}: empty", dir.display()))
        .path()
}
