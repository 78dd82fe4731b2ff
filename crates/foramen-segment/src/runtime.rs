//! Finds and loads the ONNX Runtime shared library once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::SegmentError;

/// The library file name on this platform.
const LIB: &str = "libonnxruntime.so";

/// Where the ONNX Runtime library is: `ORT_DYLIB_PATH`; else beside the executable
/// (or in `../lib`); else the project's `.venv` (PyPI wheel `onnxruntime`, or
/// `onnxruntime-gpu`) found from the executable's or working directory's ancestors, or
/// in the source tree this binary was built from (a build whose `CARGO_TARGET_DIR` is
/// outside the tree, run from elsewhere; an installed binary whose tree is gone skips it).
pub fn find_onnxruntime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from) {
        return Some(p);
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    if let Some(dir) = &exe_dir {
        for cand in [dir.join(LIB), dir.join("../lib").join(LIB)] {
            if cand.is_file() {
                return Some(cand);
            }
        }
    }
    let starts = exe_dir.into_iter().chain(std::env::current_dir().ok());
    for start in starts {
        for dir in start.ancestors() {
            if let Some(p) = venv_library(&dir.join(".venv")) {
                return Some(p);
            }
        }
    }
    venv_library(&source_tree().join(".venv"))
}

/// The workspace this crate was compiled in (two levels above its manifest).
pub fn source_tree() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `VENV/lib/python3.*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
fn venv_library(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let mut pys: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    pys.sort();
    for py in pys.iter().rev() {
        let capi = py.join("site-packages/onnxruntime/capi");
        let Ok(entries) = std::fs::read_dir(&capi) else {
            continue;
        };
        let mut libs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(LIB))
            })
            .collect();
        libs.sort();
        if let Some(l) = libs.pop() {
            return Some(l);
        }
    }
    None
}

static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();

/// Loads ONNX Runtime (once) and returns its environment.
pub fn init_runtime() -> Result<&'static ort::environment::Environment, SegmentError> {
    ENVIRONMENT
        .get_or_init(|| {
            let path = find_onnxruntime().ok_or_else(|| {
                format!("library {LIB} not found: set ORT_DYLIB_PATH, put it beside the executable, or run `make venv`")
            })?;
            let builder = ort::init_from(&path).map_err(|e| format!("cannot load {}: {e}", path.display()))?;
            tracing::info!("ONNX Runtime loaded from {}", path.display());
            // Nothing may be written outside what the user named: no telemetry (nor the
            // device id file it keeps under ~/.cache).
            builder
                .with_name("foramen")
                .with_telemetry(false)
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| SegmentError::Runtime(e.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_tree_is_the_workspace_with_the_bundled_models() {
        let root = source_tree();
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
        assert!(manifest.contains("[workspace]"), "{}", root.display());
        assert!(root.join("models/lumbar-synth.int8.onnx").is_file());
    }
}
