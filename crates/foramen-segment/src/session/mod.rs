//! A loaded model: an ONNX Runtime session plus its contract, run frame by frame.

use std::path::{Path, PathBuf};
use std::time::Instant;

use foramen_core::config::{ExecutionProvider, ModelConfig};
use foramen_core::{ClassSet, Frame, Mask};
use ort::ep::{self, ExecutionProvider as _};
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::TensorRef;

use crate::prepost::{
    Preprocessor, argmax_confidence, resize_planes, softmax_in_place, softmax_planar,
};
use crate::{ModelContract, SegmentError, init_runtime};

/// Milliseconds spent in each stage of one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimings {
    /// Resize and normalise into the input tensor.
    pub pre_ms: f32,
    /// The ONNX Runtime call.
    pub infer_ms: f32,
    /// Softmax, class index and confidence.
    pub post_ms: f32,
}

impl StageTimings {
    /// All stages together.
    pub fn total_ms(&self) -> f32 {
        self.pre_ms + self.infer_ms + self.post_ms
    }
}

/// One frame's result.
#[derive(Clone, Debug)]
pub struct SegmentOutput {
    /// The mask at the network's output size, stamped with the frame.
    pub mask: Mask,
    /// Per-stage times.
    pub timings: StageTimings,
}

/// A model ready to segment frames.
pub struct Segmenter {
    session: Session,
    contract: ModelContract,
    classes: ClassSet,
    path: PathBuf,
    provider: ProviderChoice,
    pre: Option<Preprocessor>,
    input: Vec<f32>,
    scores: Vec<f32>,
    /// Softmax of `scores` for logit models (reused buffer of `output_probabilities`).
    probs: Vec<f32>,
    /// Whether `probs` is the softmax of the current `scores`.
    probs_fresh: bool,
    /// Per-pixel scratch of the parallel softmax (maximum, sum).
    softmax_scratch: (Vec<f32>, Vec<f32>),
    out_size: (usize, usize),
    /// Class and confidence buffers of masks handed back by the pipeline's last stage.
    spare_masks: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A graph input's or output's dimensions (negative where dynamic; empty if not a tensor).
fn tensor_shape(t: &ort::value::ValueType) -> Vec<i64> {
    t.tensor_shape().map(|s| s.to_vec()).unwrap_or_default()
}

/// The session builder with the configured threads and spinning, before any provider.
pub(crate) fn base_builder(
    cfg: &ModelConfig,
) -> ort::Result<ort::session::builder::SessionBuilder> {
    let env = init_runtime().map_err(|e| ort::Error::new(e.to_string()))?;
    let mut builder =
        Session::builder(env)?.with_optimization_level(GraphOptimizationLevel::All)?;
    // 0 means all cores, stated here: ONNX Runtime's own default counts physical
    // cores, which on a 2-vCPU virtual machine is 1 (4.7 ms against 3.2 ms per
    // frame for the bundled model, `foramen bench`).
    let intra_threads = if cfg.intra_threads > 0 {
        cfg.intra_threads
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    builder = builder.with_intra_threads(intra_threads)?;
    if let Some(spin) = cfg.allow_spinning {
        builder = builder
            .with_intra_op_spinning(spin)?
            .with_inter_op_spinning(spin)?;
    }
    Ok(builder)
}

/// The provider actually in use and, when it is not the one asked for, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderChoice {
    /// `cpu`, `cuda`, `tensorrt`, `webgpu` or `webgpu+cpu` (some nodes on the CPU):
    /// what the session runs on.
    pub in_use: &'static str,
    /// Why the provider asked for is not in use (`CUDA unavailable: ...`), if it is not.
    pub fallback: Option<String>,
}

/// A session builder with the accelerator asked for registered so that its failure is
/// an error with a reason; `None` for the CPU. `webgpu_failed` is why the WebGPU
/// plugin's session could not be made, when that was tried first.
fn accelerator_builder(
    cfg: &ModelConfig,
    webgpu_failed: Option<String>,
) -> Option<Result<SessionBuilder, String>> {
    let attempt = match cfg.execution_provider {
        ExecutionProvider::Cpu => None,
        ExecutionProvider::Webgpu => webgpu_failed.map(Err),
        ExecutionProvider::Cuda if !ep::CUDA::is_available().unwrap_or(false) => Some(Err(
            "not in this ONNX Runtime library (the CPU build; install onnxruntime-gpu)".to_string(),
        )),
        ExecutionProvider::Cuda => {
            Some(base_builder(cfg).map_err(|e| e.to_string()).and_then(|b| {
                b.with_execution_providers([ep::CUDA::default()
                    .with_cuda_graph(cfg.cuda_graph)
                    .build()
                    .error_on_failure()])
                    .map_err(|e| e.to_string())
            }))
        }
        ExecutionProvider::Tensorrt if !ep::TensorRT::is_available().unwrap_or(false) => {
            Some(Err("not in this ONNX Runtime library".to_string()))
        }
        ExecutionProvider::Tensorrt => {
            Some(base_builder(cfg).map_err(|e| e.to_string()).and_then(|b| {
                b.with_execution_providers([ep::TensorRT::default().build().error_on_failure()])
                    .map_err(|e| e.to_string())
            }))
        }
    };
    // ONNX Runtime's messages end in a newline; the reason goes into one status line.
    attempt.map(|a| a.map_err(|e| e.trim_end().to_string()))
}

/// The ONNX Runtime session of `path`: the provider asked for, registered so that a
/// failure is an error with its reason (not a silent CPU fallback); on failure the CPU,
/// explicitly, or an error with `require_provider`.
fn build_session(
    path: &Path,
    cfg: &ModelConfig,
) -> Result<(Session, ProviderChoice), SegmentError> {
    let model_err = |reason: String| SegmentError::Model {
        path: path.to_path_buf(),
        reason,
    };
    init_runtime()?;
    let asked = cfg.execution_provider.name();
    // A plugin provider fails when its session is made, not when it is added: try it
    // whole, and on failure go on as for the others.
    let mut webgpu_failed = None;
    if cfg.execution_provider == ExecutionProvider::Webgpu {
        match crate::webgpu::session(path, cfg) {
            Ok((session, cpu_too)) => {
                let choice = ProviderChoice {
                    in_use: if cpu_too { "webgpu+cpu" } else { asked },
                    fallback: None,
                };
                return Ok((session, choice));
            }
            Err(reason) => webgpu_failed = Some(reason),
        }
    }
    let on_cpu = |fallback: Option<String>| {
        base_builder(cfg)
            .map(|b| {
                let choice = ProviderChoice {
                    in_use: "cpu",
                    fallback,
                };
                (b, choice)
            })
            .map_err(|e| model_err(e.to_string()))
    };
    let (mut builder, choice) = match accelerator_builder(cfg, webgpu_failed) {
        Some(Ok(b)) => {
            let choice = ProviderChoice {
                in_use: asked,
                fallback: None,
            };
            (b, choice)
        }
        Some(Err(reason)) if cfg.require_provider => {
            return Err(model_err(format!(
                "execution provider {asked} unavailable: {reason} (require_provider is set, so the CPU is not used)"
            )));
        }
        Some(Err(reason)) => {
            let fallback = format!("{} unavailable: {reason}", provider_label(cfg));
            tracing::warn!("{fallback}; running on the CPU");
            on_cpu(Some(fallback))?
        }
        None => on_cpu(None)?,
    };
    let session = builder
        .commit_from_file(path)
        .map_err(|e| model_err(format!("not a loadable ONNX model: {e}")))?;
    Ok((session, choice))
}

/// The provider's name as the status line spells it.
fn provider_label(cfg: &ModelConfig) -> &'static str {
    match cfg.execution_provider {
        ExecutionProvider::Cpu => "CPU",
        ExecutionProvider::Cuda => "CUDA",
        ExecutionProvider::Tensorrt => "TensorRT",
        ExecutionProvider::Webgpu => "WebGPU",
    }
}

/// Checks the graph against the contract: the input's name and shape, the output's name,
/// rank and class count. The class count must match now, not at the first frame: a model
/// that loads must not fail on every frame after. Returns whether the input's height or
/// width is dynamic (the graph alone does not say that the contract's size runs).
fn check_graph(
    session: &Session,
    contract: &ModelContract,
    classes: usize,
) -> Result<bool, String> {
    let input = session
        .inputs()
        .iter()
        .find(|i| i.name() == contract.input.name)
        .ok_or_else(|| format!("graph has no input named {:?}", contract.input.name))?;
    let shape = tensor_shape(input.dtype());
    let want = [
        1,
        3,
        contract.input.height as i64,
        contract.input.width as i64,
    ];
    let fits = shape.len() == 4 && shape.iter().zip(want).all(|(&d, w)| d == w || d < 0);
    if !fits {
        return Err(format!(
            "graph input shape {shape:?} does not match metadata {want:?}"
        ));
    }
    let output = session
        .outputs()
        .iter()
        .find(|o| o.name() == contract.output.name)
        .ok_or_else(|| format!("graph has no output named {:?}", contract.output.name))?;
    let out_shape = tensor_shape(output.dtype());
    if out_shape.len() != 4 {
        return Err(format!(
            "graph output shape {out_shape:?} is not [N, classes, H, W]"
        ));
    }
    if out_shape[1] >= 0 && out_shape[1] as usize != classes {
        return Err(format!(
            "graph outputs {} classes, metadata names {classes}",
            out_shape[1]
        ));
    }
    Ok(shape[2] < 0 || shape[3] < 0)
}

/// Mask buffer sets kept for reuse: a pipeline has a few masks in flight at once.
const SPARE_MASKS: usize = 8;

impl Segmenter {
    /// Loads `path`, reads its contract from the metadata and checks it against the graph.
    pub fn load(path: &Path, cfg: &ModelConfig) -> Result<Self, SegmentError> {
        let contract_err = |reason: String| SegmentError::Contract {
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(SegmentError::Model {
                path: path.to_path_buf(),
                reason: "file not found".into(),
            });
        }
        let (session, provider) = build_session(path, cfg)?;
        let json = session
            .metadata()
            .ok()
            .and_then(|m| m.custom(ModelContract::METADATA_KEY))
            .ok_or_else(|| {
                contract_err(format!(
                    "no `{}` metadata key (not exported by the Foramen recipe?)",
                    ModelContract::METADATA_KEY
                ))
            })?;
        let contract = ModelContract::parse(&json).map_err(contract_err)?;
        let refusal = crate::contract::int8_cpu_refusal(
            contract.quantization.as_ref(),
            provider.in_use,
            crate::contract::x86_without_vnni(),
        );
        if let Some(reason) = refusal {
            return Err(SegmentError::Model {
                path: path.to_path_buf(),
                reason,
            });
        }
        let classes = contract
            .class_set()
            .map_err(|e| contract_err(e.to_string()))?;
        let dynamic = check_graph(&session, &contract, classes.len()).map_err(contract_err)?;
        let n = (contract.input.width * contract.input.height) as usize * 3;
        let mut segmenter = Self {
            session,
            classes,
            path: path.to_path_buf(),
            provider,
            pre: None,
            input: vec![0.0; n],
            scores: Vec::new(),
            probs: Vec::new(),
            probs_fresh: false,
            softmax_scratch: (Vec::new(), Vec::new()),
            out_size: (0, 0),
            spare_masks: Vec::with_capacity(SPARE_MASKS),
            contract,
        };
        if dynamic {
            // A graph that accepts any size may still not run at the contract's (a
            // fixed-size layer inside): found now, it is the model's fault, named as such,
            // not an error on the first image.
            let (w, h) = (
                segmenter.contract.input.width,
                segmenter.contract.input.height,
            );
            segmenter.time_model_only(1).map_err(|e| {
                contract_err(format!(
                    "the graph's input size is dynamic and it does not run at the contract's \
                     {w}x{h}: {}",
                    e.to_string().trim_end()
                ))
            })?;
        }
        Ok(segmenter)
    }

    /// The session itself (for timing modes beside `segment()`, `bound.rs`).
    pub(crate) fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The last segmented frame's model input (empty before the first).
    pub(crate) fn last_input(&self) -> &[f32] {
        &self.input
    }

    /// The model's contract.
    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }

    /// The model's classes.
    pub fn classes(&self) -> &ClassSet {
        &self.classes
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The execution provider the session runs on (`cpu`, `cuda` or `tensorrt`).
    pub fn execution_provider(&self) -> &'static str {
        self.provider.in_use
    }

    /// Why the provider asked for is not the one in use (`CUDA unavailable: ...`).
    pub fn provider_fallback(&self) -> Option<&str> {
        self.provider.fallback.as_deref()
    }

    /// Resizes and normalises `frame` into the model's input (a new preprocessor when
    /// the frame size changes: a tower switching mode).
    fn preprocess(&mut self, frame: &Frame) {
        let i = &self.contract.input;
        if self
            .pre
            .as_ref()
            .is_none_or(|p| p.source_size() != (frame.width, frame.height))
        {
            self.pre = Some(Preprocessor::new(
                (frame.width, frame.height),
                (i.width, i.height),
                i.scale,
                i.mean,
                i.std,
            ));
        }
        if let Some(pre) = self.pre.as_mut() {
            pre.run(&frame.rgb, &mut self.input);
        }
    }

    /// Runs the model on the prepared input into `scores` (and `out_size`), checking the
    /// output's shape and that every value is a number.
    fn run_model(&mut self) -> Result<(), SegmentError> {
        let i = &self.contract.input;
        let tensor = TensorRef::from_array_view((
            [1usize, 3, i.height as usize, i.width as usize],
            self.input.as_slice(),
        ))
        .map_err(|e| SegmentError::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.contract.input.name.as_str() => tensor])
            .map_err(|e| SegmentError::Inference(e.to_string()))?;
        let (shape, data) = outputs[self.contract.output.name.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| SegmentError::Inference(e.to_string()))?;
        let c = self.classes.len();
        if shape.len() != 4 || shape[0] != 1 || shape[1] as usize != c {
            return Err(SegmentError::Inference(format!(
                "output shape {:?}, expected [1, {c}, H, W]",
                &shape[..]
            )));
        }
        self.out_size = (shape[3] as usize, shape[2] as usize);
        self.scores.clear();
        self.scores.extend_from_slice(data);
        self.probs_fresh = false;
        drop(outputs);
        // A broken model or runtime can emit NaN or infinities: argmax would paint them as
        // class 0 and the AI would look healthy. It is a fault, reported as one.
        // A branch-free OR over every value (vectorised), the position only when needed:
        // this runs on every frame.
        let any_bad = self
            .scores
            .iter()
            .fold(false, |bad, v| bad | !v.is_finite());
        if let Some(at) = any_bad
            .then(|| self.scores.iter().position(|v| !v.is_finite()))
            .flatten()
        {
            return Err(SegmentError::Inference(format!(
                "the model's output is not a number ({} at value {at} of {}): nothing drawn",
                self.scores[at],
                self.scores.len()
            )));
        }
        Ok(())
    }

    /// Segments one frame.
    pub fn segment(&mut self, frame: &Frame) -> Result<SegmentOutput, SegmentError> {
        self.segment_as(frame, true)
    }

    /// As [`segment`](Self::segment), for a caller that decides every pixel's class
    /// itself from [`output_probabilities`](Self::output_probabilities) (the temporal
    /// filter): those are computed (in `post_ms`) instead of the classes, which it would
    /// overwrite, and the mask's classes and confidence are left at 0.
    pub fn segment_probabilities(&mut self, frame: &Frame) -> Result<SegmentOutput, SegmentError> {
        self.segment_as(frame, false)
    }

    fn segment_as(&mut self, frame: &Frame, classify: bool) -> Result<SegmentOutput, SegmentError> {
        let t0 = Instant::now();
        self.preprocess(frame);
        let t1 = Instant::now();
        self.run_model()?;
        let t2 = Instant::now();

        let n = self.out_size.0 * self.out_size.1;
        let (mut classes, mut confidence) = self.spare_masks.pop().unwrap_or_default();
        classes.resize(n, 0);
        confidence.resize(n, 0);
        if classify {
            argmax_confidence(
                &self.scores,
                self.classes.len(),
                self.contract.output.kind == "logits",
                &mut classes,
                &mut confidence,
            );
        } else {
            classes.fill(0);
            confidence.fill(0);
            self.output_probabilities();
        }
        let t3 = Instant::now();
        let ms = |a: Instant, b: Instant| (b - a).as_secs_f32() * 1000.0;
        let timings = StageTimings {
            pre_ms: ms(t0, t1),
            infer_ms: ms(t1, t2),
            post_ms: ms(t2, t3),
        };
        Ok(SegmentOutput {
            mask: Mask {
                source_frame_id: frame.id,
                source_pts_us: frame.pts_us,
                source_captured_at_us: frame.captured_at_us,
                width: self.out_size.0 as u32,
                height: self.out_size.1 as u32,
                classes,
                confidence,
                infer_ms: timings.total_ms(),
            },
            timings,
        })
    }

    /// Takes back the buffers of a mask that is no longer needed, so that later frames
    /// reuse them instead of allocating (`replay` sends each mask back after blending).
    pub fn recycle(&mut self, mask: Mask) {
        if self.spare_masks.len() < SPARE_MASKS {
            self.spare_masks.push((mask.classes, mask.confidence));
        }
    }

    /// Runs the model alone `runs` times on the input of the last segmented frame and
    /// returns each run's wall time in ms: the floor that the pipeline around the model
    /// is measured against (`foramen bench`). Fails before any frame was segmented.
    pub fn time_model_only(&mut self, runs: usize) -> Result<Vec<f64>, SegmentError> {
        let i = &self.contract.input;
        let shape = [1usize, 3, i.height as usize, i.width as usize];
        if self.input.len() != shape.iter().product::<usize>() {
            return Err(SegmentError::Inference(
                "no frame segmented yet: nothing to time the model on".into(),
            ));
        }
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let tensor = TensorRef::from_array_view((shape, self.input.as_slice()))
                .map_err(|e| SegmentError::Inference(e.to_string()))?;
            let outputs = self
                .session
                .run(ort::inputs![self.contract.input.name.as_str() => tensor])
                .map_err(|e| SegmentError::Inference(e.to_string()))?;
            drop(outputs);
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        Ok(times)
    }

    /// Class probabilities of the last segmented frame in the model's own output grid,
    /// planar (C, H, W) at the mask's size: the scores themselves, or their softmax for a
    /// model that emits logits (into a buffer kept between frames: no allocation once warm).
    pub fn output_probabilities(&mut self) -> &[f32] {
        if self.contract.output.kind != "logits" {
            return &self.scores;
        }
        if !self.probs_fresh {
            let (peak, total) = &mut self.softmax_scratch;
            softmax_planar(
                &self.scores,
                self.classes.len(),
                &mut self.probs,
                peak,
                total,
            );
            self.probs_fresh = true;
        }
        &self.probs
    }

    /// The class map of the last segmented frame at `width` x `height`, as the argmax of
    /// [`last_probabilities`](Self::last_probabilities) (so a saved class PNG and its
    /// probabilities always agree), with those probabilities.
    pub fn last_classes(&self, width: u32, height: u32) -> (Vec<u8>, Vec<f32>) {
        let p = self.last_probabilities(width, height);
        let n = (width * height) as usize;
        let (mut classes, mut conf) = (vec![0u8; n], vec![0u8; n]);
        crate::prepost::argmax_confidence(&p, self.classes.len(), false, &mut classes, &mut conf);
        (classes, p)
    }

    /// Class probabilities of the last segmented frame, (C, height, width), resized
    /// bilinearly to `width` x `height` (softmax first when the model emits logits).
    pub fn last_probabilities(&self, width: u32, height: u32) -> Vec<f32> {
        let c = self.classes.len();
        let mut p = self.scores.clone();
        if self.contract.output.kind == "logits" {
            softmax_in_place(&mut p, c);
        }
        resize_planes(
            &p,
            c,
            self.out_size.0,
            self.out_size.1,
            width as usize,
            height as usize,
        )
    }
}

#[cfg(test)]
mod tests;
