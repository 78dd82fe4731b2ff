//! The model timed with I/O binding (issue 19, item 5): the input copied to the session's
//! device once and bound, the output bound to that device, so that each run is the model
//! alone, without the per-run host copies of [`Segmenter::time_model_only`]. This is the
//! floor of a GPU pipeline that keeps its data on the device, and the mode CUDA graphs
//! need (`[model] cuda_graph`: captured at the first bound run, replayed after). On the
//! CPU the device is host memory and it measures the binding's own overhead.

use std::time::Instant;

use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::value::Tensor;

use crate::{SegmentError, Segmenter};

impl Segmenter {
    /// Runs the model `runs` times on the last segmented frame's input (zeros before
    /// the first), bound once as above; each run's wall time in ms (the outputs
    /// synchronised before the clock stops).
    pub fn time_model_bound(&mut self, runs: usize) -> Result<Vec<f64>, SegmentError> {
        let err = |e: ort::Error| SegmentError::Inference(e.to_string());
        let (input_name, output_name) = (
            self.contract().input.name.clone(),
            self.contract().output.name.clone(),
        );
        let i = &self.contract().input;
        let shape = [1usize, 3, i.height as usize, i.width as usize];
        let host = self.last_input();
        let input = Tensor::from_array((shape, host.to_vec())).map_err(err)?;
        let device = match self.execution_provider() {
            "cuda" | "tensorrt" => AllocationDevice::CUDA,
            _ => AllocationDevice::CPU,
        };
        let out_mem =
            MemoryInfo::new(device, 0, AllocatorType::Device, MemoryType::Default).map_err(err)?;
        let session = self.session_mut();
        let mut binding = session.create_binding().map_err(err)?;
        binding.bind_input(input_name, &input).map_err(err)?;
        binding
            .bind_output_to_device(output_name, &out_mem)
            .map_err(err)?;
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let outputs = session.run_binding(&binding).map_err(err)?;
            binding.synchronize_outputs().map_err(err)?;
            drop(outputs);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(times)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foramen_core::Frame;
    use foramen_core::config::ModelConfig;

    #[test]
    fn bound_runs_time_the_model_on_the_last_frames_input() {
        let model = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../models/lumbar-synth.onnx");
        let mut seg = Segmenter::load(&model, &ModelConfig::default()).expect("model");
        let frame = Frame::new(0, 0, 96, 54, vec![90; 96 * 54 * 3]).expect("frame");
        seg.segment(&frame).expect("segment");
        let times = seg.time_model_bound(5).expect("bound runs");
        assert_eq!(times.len(), 5);
        assert!(times.iter().all(|&t| t > 0.0 && t < 10_000.0), "{times:?}");
    }
}
