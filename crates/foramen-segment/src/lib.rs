//! ONNX Runtime sessions built from a model's own contract, pre- and post-processing, timed per stage;
//! the temporal filter of class probabilities the live worker applies; `probe`, what the
//! `foramen-probe` binary measures (a provider timed on synthetic frames, no OpenCV).

mod bound;
mod contract;
pub mod prepost;
pub mod probe;
mod runtime;
mod session;
pub mod temporal;
pub mod webgpu;
mod worker;

pub use contract::{InputSpec, ModelContract, OutputSpec};
pub use runtime::{find_onnxruntime, init_runtime, source_tree};
pub use session::{SegmentOutput, Segmenter, StageTimings};
pub use temporal::{ListFilter, TemporalFilter, TemporalSettings};
pub use worker::{InferenceWorker, WorkerConfig, WorkerState, WorkerStatus};

use std::path::PathBuf;

/// Errors loading or running a model; each names the file or the stage.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// The ONNX Runtime library could not be found or loaded.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The model file is missing, not ONNX, or ONNX Runtime rejects it.
    #[error("model {path}: {reason}")]
    Model {
        /// The model file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The model's `foramen` metadata is missing, malformed, or disagrees with its graph.
    #[error("model {path}: metadata: {reason}")]
    Contract {
        /// The model file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A run failed.
    #[error("inference failed: {0}")]
    Inference(String),
}
