//! Data sets (PaddleSeg lists plus `dataset.toml`), the synthetic lumbar endoscopy generator, and appearance statistics.

pub mod dataset;
pub mod extract;
pub mod labelstudio;
pub mod noise;
pub mod npy;
pub mod recording;
pub mod recording_check;
pub mod stats;
pub mod synth;
pub mod timeline;

pub use dataset::{
    DataError, DatasetInfo, Sample, SynthDatasetOptions, read_list, write_synth_dataset,
};
