//! Finding and loading the model a pipeline runs, and the model settings pipelines use.

use std::path::{Path, PathBuf};

use foramen_core::Config;
use foramen_core::config::ModelConfig;
use foramen_segment::Segmenter;

use crate::{PipelineError, Result};

/// The bundled models inside the project, in order of preference: the INT8 variant
/// first (same validation mIoU to 0.01 points, 15-20 % faster on the CPU; see
/// docs/PERFORMANCE.md), the FP32 original when it is missing. GPU execution providers
/// gain nothing from QDQ: pass `--model models/lumbar-synth.onnx` there.
pub const BUNDLED: [&str; 2] = ["models/lumbar-synth.int8.onnx", "models/lumbar-synth.onnx"];

/// `model` if given, else the bundled lumbar model, looked for beside the
/// executable's ancestors (an installed or in-tree build) and the working directory's,
/// then in the source tree the binary was built from (a `CARGO_TARGET_DIR` outside it).
pub fn resolve(model: Option<&Path>) -> Result<PathBuf> {
    if let Some(m) = model {
        return Ok(m.to_path_buf());
    }
    let exe = std::env::current_exe().ok();
    let starts = exe
        .iter()
        .filter_map(|e| e.parent().map(Path::to_path_buf))
        .chain(std::env::current_dir().ok());
    let dirs = starts
        .flat_map(|start| start.ancestors().map(Path::to_path_buf).collect::<Vec<_>>())
        .chain([foramen_segment::source_tree()]);
    for dir in dirs {
        for bundled in BUNDLED {
            let cand = dir.join(bundled);
            if cand.is_file() {
                return Ok(cand);
            }
        }
    }
    Err(PipelineError::NoModel {
        looked_for: BUNDLED.join(" or "),
    })
}

/// Loads a model, with the file named in any error.
pub fn load(model: Option<&Path>, cfg: &ModelConfig) -> Result<Segmenter> {
    let path = resolve(model)?;
    Segmenter::load(&path, cfg).map_err(|source| PipelineError::Model { path, source })
}

/// The model settings a pipeline stage uses: ONNX Runtime's threads do not spin while
/// they wait, unless the config says so, because spinning takes the cores that decode,
/// composite and encode need (measured with `foramen bench` on the demo: 17.7 frames/s
/// spinning, 20.9 not).
pub fn pipeline_model_config(cfg: &Config) -> ModelConfig {
    let mut m = cfg.model.clone();
    m.allow_spinning.get_or_insert(false);
    m
}
