//! What `foramen-probe` measures: one model on one execution provider, timed through the
//! real [`Segmenter::segment`] path on synthetic frames made in process, so that a GPU
//! machine needs neither OpenCV nor a video to be measured (issue 19, item 3).

use std::path::{Path, PathBuf};
use std::time::Instant;

use foramen_core::Frame;
use foramen_core::config::{ExecutionProvider, ModelConfig};
use ort::ep::{self, ExecutionProvider as _};
use serde::Serialize;

use crate::{SegmentError, Segmenter, find_onnxruntime, init_runtime};

/// Distinct synthetic frames cycled through while timing: more than one, so that no
/// cache holds the one frame, few enough to stay small at 4K.
const DISTINCT_FRAMES: u64 = 4;

/// What to measure.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// The ONNX model (with the Foramen metadata contract).
    pub model: PathBuf,
    /// The execution provider asked for.
    pub provider: ExecutionProvider,
    /// Fail instead of falling back to the CPU.
    pub require_provider: bool,
    /// Synthetic frame width in pixels.
    pub width: u32,
    /// Synthetic frame height in pixels.
    pub height: u32,
    /// Untimed runs before each timed series.
    pub warmup: usize,
    /// Timed runs of each series.
    pub runs: usize,
    /// ONNX Runtime intra-op threads (0: all cores, as the application does).
    pub intra_threads: usize,
    /// Also run a CPU session on the same frame and report the largest difference.
    pub compare_cpu: bool,
    /// CUDA graphs (`[model] cuda_graph`) for the bound runs; `--provider cuda` only.
    pub cuda_graph: bool,
    /// ONNX Runtime's intra-op threads spin while they wait (`--spin`). Off unless
    /// asked, as Foramen's pipelines run them: spinning threads take the cores that
    /// `segment()`'s own resize and softmax need (2026-12-04, 2 AVX2 cores, the lumbar
    /// INT8 model at 1080p, two runs each: `segment()` p50 16.8-20.3 ms sleeping against
    /// 21.5-27.8 spinning, the model alone 9.4-9.6 against 11.0-12.0).
    pub allow_spinning: bool,
}

/// Percentiles of a series of times in milliseconds (nearest rank).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: usize,
    /// Smallest sample.
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// Milliseconds to the microsecond: finer digits are timer noise and make the JSON unreadable.
fn micros(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

impl Percentiles {
    /// The percentiles of `samples` (all zero when empty), to the microsecond.
    pub fn of(samples: &[f64]) -> Self {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            if s.is_empty() {
                return 0.0;
            }
            let r = ((p / 100.0) * s.len() as f64).ceil() as usize;
            micros(s[r.clamp(1, s.len()) - 1])
        };
        let mean = if s.is_empty() {
            0.0
        } else {
            s.iter().sum::<f64>() / s.len() as f64
        };
        Self {
            count: s.len(),
            min: micros(s.first().copied().unwrap_or(0.0)),
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: micros(s.last().copied().unwrap_or(0.0)),
            mean: micros(mean),
        }
    }
}

/// The ONNX Runtime library the process loaded.
#[derive(Clone, Debug, Serialize)]
pub struct RuntimeInfo {
    /// The library file found (`ORT_DYLIB_PATH`, beside the executable, or `.venv`).
    pub library: Option<PathBuf>,
    /// The version in the library's resolved file name (`libonnxruntime.so.1.31.1`):
    /// the C API's own version string is reachable only through unsafe code here.
    pub version: Option<String>,
    /// ONNX Runtime's build information string.
    pub build_info: String,
    /// The execution providers compiled into the library (not the same as loadable:
    /// the CUDA provider also needs CUDA's and cuDNN's libraries at run time).
    pub providers_in_library: Vec<&'static str>,
    /// `libonnxruntime_providers_cuda.so` beside the library, when there is one.
    pub cuda_provider_library: Option<PathBuf>,
}

/// Per-stage medians of the timed `segment()` runs, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct StageMedians {
    /// Resize and normalise.
    pub pre_ms: f64,
    /// The ONNX Runtime call with host tensors, output copied out and checked.
    pub infer_ms: f64,
    /// Softmax, class and confidence.
    pub post_ms: f64,
}

/// The provider's output against a CPU session's on the same frame.
#[derive(Clone, Debug, Serialize)]
pub struct CpuComparison {
    /// Largest absolute difference of any class probability.
    pub max_abs_prob_diff: f32,
    /// Share of mask pixels whose class is the same on both.
    pub class_agreement: f64,
    /// The synthetic frame compared (its index).
    pub frame: u64,
}

/// Width and height in pixels.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Size {
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

/// Everything `foramen-probe` prints.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    /// The model file.
    pub model: PathBuf,
    /// The provider asked for (`cpu`, `cuda`, `tensorrt`).
    pub provider_requested: &'static str,
    /// The provider the session actually runs on.
    pub provider_used: &'static str,
    /// Why the provider asked for is not in use, if it is not.
    pub fallback_reason: Option<String>,
    /// Whether a fallback was refused (then no report is made: the load fails).
    pub require_provider: bool,
    /// The ONNX Runtime library.
    pub runtime: RuntimeInfo,
    /// Loading the library and creating its environment.
    pub runtime_load_ms: f64,
    /// Building the session (provider registration, graph optimisation) and checking
    /// the model's contract.
    pub session_load_ms: f64,
    /// The synthetic frames' size.
    pub input: Size,
    /// The network's input size (frames are resized to it in `segment()`).
    pub model_input: Size,
    /// ONNX Runtime intra-op threads (resolved: 0 became the core count).
    pub intra_threads: usize,
    /// Whether those threads spin while they wait (`--spin`; Foramen's pipelines do not).
    pub intra_spinning: bool,
    /// Untimed runs before each series.
    pub warmup: usize,
    /// Timed runs of each series.
    pub runs: usize,
    /// The ONNX Runtime call alone on host tensors (`Segmenter::time_model_only`).
    pub model_only_ms: Percentiles,
    /// The model with I/O binding: input copied to the device once, output left there
    /// (`Segmenter::time_model_bound`), with CUDA graphs when `cuda_graph`.
    pub model_bound_ms: Percentiles,
    /// Whether the bound runs used CUDA graphs: asked for, and the session on CUDA.
    pub cuda_graph: bool,
    /// The whole `segment()`: preprocessing, the model, postprocessing.
    pub segment_ms: Percentiles,
    /// Medians of `segment()`'s own stage timings.
    pub segment_stages_p50: StageMedians,
    /// Against a CPU session, with `--compare-cpu`.
    pub compare_cpu: Option<CpuComparison>,
}

/// A deterministic synthetic RGB frame: smooth shaded blobs (something for the
/// network to segment, unlike a flat grey) with hash noise, different for each `index`.
pub fn synthetic_frame(width: u32, height: u32, index: u64) -> Frame {
    let (w, h) = (width as usize, height as usize);
    let mut rgb = vec![0u8; w * h * 3];
    let phase = index as f32 * 0.7;
    let (fx, fy) = (6.0 / w.max(1) as f32, 4.0 / h.max(1) as f32);
    for (y, row) in rgb.chunks_exact_mut(w * 3).enumerate() {
        let v = (y as f32 * fy * std::f32::consts::PI + phase).sin();
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let u = (x as f32 * fx * std::f32::consts::PI - phase * 0.5).cos();
            let shade = 0.5 + 0.25 * (u + v);
            // splitmix-style hash of (x, y, index): fixed noise without a generator crate.
            let mut z = (x as u64) ^ ((y as u64) << 21) ^ (index << 42);
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let noise = ((z >> 56) as f32 - 128.0) * 0.08;
            let base = [
                200.0 * shade + 40.0,
                120.0 * shade + 20.0,
                90.0 * (1.0 - shade) + 30.0,
            ];
            for (c, b) in px.iter_mut().zip(base) {
                *c = (b + noise).clamp(0.0, 255.0) as u8;
            }
        }
    }
    let mut frame = Frame::new(index, index as i64 * 16_667, width, height, rgb)
        .expect("buffer sized from width and height");
    frame.captured_at_us = foramen_core::clock_us();
    frame
}

/// The loaded library's description (after [`init_runtime`]).
fn runtime_info() -> RuntimeInfo {
    let library = find_onnxruntime();
    let resolved = library.as_deref().and_then(|p| p.canonicalize().ok());
    let version = resolved.as_deref().and_then(version_from_file_name);
    let cuda_provider_library = resolved
        .as_deref()
        .and_then(Path::parent)
        .map(|d| d.join("libonnxruntime_providers_cuda.so"))
        .filter(|p| p.is_file());
    let mut providers_in_library = vec!["cpu"];
    if ep::CUDA::is_available().unwrap_or(false) {
        providers_in_library.push("cuda");
    }
    if ep::TensorRT::is_available().unwrap_or(false) {
        providers_in_library.push("tensorrt");
    }
    RuntimeInfo {
        library,
        version,
        build_info: ort::info().to_string(),
        providers_in_library,
        cuda_provider_library,
    }
}

/// `1.31.1` from `libonnxruntime.so.1.31.1` (`None` for an unversioned name).
pub fn version_from_file_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let v = name.split_once(".so.")?.1;
    (!v.is_empty() && v.split('.').all(|p| p.parse::<u32>().is_ok())).then(|| v.to_string())
}

/// The resolved intra-op thread count (the session builder's own rule: 0 means all cores).
fn resolved_threads(n: usize) -> usize {
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

fn ms_since_rounded(t: Instant) -> f64 {
    micros(ms_since(t))
}

/// Loads the model as asked and measures it; see [`ProbeReport`] for what is reported.
pub fn run(opts: &ProbeOptions) -> Result<ProbeReport, SegmentError> {
    let t = Instant::now();
    init_runtime()?;
    let runtime_load_ms = ms_since_rounded(t);
    let cfg = ModelConfig {
        path: Some(opts.model.clone()),
        execution_provider: opts.provider,
        intra_threads: opts.intra_threads,
        allow_spinning: Some(opts.allow_spinning),
        require_provider: opts.require_provider,
        webgpu_library: None,
        cuda_graph: opts.cuda_graph,
    };
    let t = Instant::now();
    let mut seg = Segmenter::load(&opts.model, &cfg)?;
    let session_load_ms = ms_since_rounded(t);
    let frames: Vec<Frame> = (0..DISTINCT_FRAMES)
        .map(|i| synthetic_frame(opts.width, opts.height, i))
        .collect();
    let (segment_ms, stages) = time_segment(&mut seg, &frames, opts.warmup, opts.runs)?;
    // The model alone on the input of the last segmented frame: warm-up, then timed.
    seg.time_model_only(opts.warmup)?;
    let model_only = seg.time_model_only(opts.runs)?;
    // Bound: warm-up (with CUDA graphs the first bound run captures the graph), timed.
    seg.time_model_bound(opts.warmup.max(1))?;
    let model_bound = seg.time_model_bound(opts.runs)?;
    let compare_cpu = if opts.compare_cpu {
        Some(compare_with_cpu(&mut seg, &frames[0], &cfg)?)
    } else {
        None
    };
    let i = &seg.contract().input;
    Ok(ProbeReport {
        model: opts.model.clone(),
        provider_requested: opts.provider.name(),
        provider_used: seg.execution_provider(),
        fallback_reason: seg.provider_fallback().map(str::to_string),
        require_provider: opts.require_provider,
        runtime: runtime_info(),
        runtime_load_ms,
        session_load_ms,
        input: Size {
            width: opts.width,
            height: opts.height,
        },
        model_input: Size {
            width: i.width,
            height: i.height,
        },
        intra_threads: resolved_threads(opts.intra_threads),
        intra_spinning: opts.allow_spinning,
        warmup: opts.warmup,
        runs: opts.runs,
        model_only_ms: Percentiles::of(&model_only),
        model_bound_ms: Percentiles::of(&model_bound),
        cuda_graph: opts.cuda_graph && seg.execution_provider() == "cuda",
        segment_ms: Percentiles::of(&segment_ms),
        segment_stages_p50: stages,
        compare_cpu,
    })
}

/// `warmup` untimed then `runs` timed `segment()` calls over `frames` in turn; masks go
/// back to the segmenter as the pipelines give them back.
fn time_segment(
    seg: &mut Segmenter,
    frames: &[Frame],
    warmup: usize,
    runs: usize,
) -> Result<(Vec<f64>, StageMedians), SegmentError> {
    for k in 0..warmup {
        let out = seg.segment(&frames[k % frames.len()])?;
        seg.recycle(out.mask);
    }
    let mut total = Vec::with_capacity(runs);
    let (mut pre, mut infer, mut post) = (Vec::new(), Vec::new(), Vec::new());
    for k in 0..runs {
        let t = Instant::now();
        let out = seg.segment(&frames[k % frames.len()])?;
        total.push(ms_since(t));
        pre.push(f64::from(out.timings.pre_ms));
        infer.push(f64::from(out.timings.infer_ms));
        post.push(f64::from(out.timings.post_ms));
        seg.recycle(out.mask);
    }
    let stages = StageMedians {
        pre_ms: Percentiles::of(&pre).p50,
        infer_ms: Percentiles::of(&infer).p50,
        post_ms: Percentiles::of(&post).p50,
    };
    Ok((total, stages))
}

/// Segments `frame` on `seg` and on a fresh CPU session and compares the probabilities
/// and classes. With the CPU in use on both it checks that two sessions agree (0).
fn compare_with_cpu(
    seg: &mut Segmenter,
    frame: &Frame,
    cfg: &ModelConfig,
) -> Result<CpuComparison, SegmentError> {
    let cpu_cfg = ModelConfig {
        execution_provider: ExecutionProvider::Cpu,
        require_provider: false,
        ..cfg.clone()
    };
    let path = cfg.path.clone().unwrap_or_default();
    let mut cpu = Segmenter::load(&path, &cpu_cfg)?;
    let ours = seg.segment(frame)?.mask;
    let theirs = cpu.segment(frame)?.mask;
    let max_abs_prob_diff = seg
        .output_probabilities()
        .iter()
        .zip(cpu.output_probabilities())
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    let same = ours
        .classes
        .iter()
        .zip(&theirs.classes)
        .filter(|(a, b)| a == b)
        .count();
    Ok(CpuComparison {
        max_abs_prob_diff,
        class_agreement: same as f64 / ours.classes.len().max(1) as f64,
        frame: frame.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_ordered_by_nearest_rank() {
        let samples: Vec<f64> = (1..=200).rev().map(f64::from).collect();
        let p = Percentiles::of(&samples);
        assert_eq!((p.count, p.min, p.max), (200, 1.0, 200.0));
        assert_eq!((p.p50, p.p90, p.p99), (100.0, 180.0, 198.0));
        assert_eq!(Percentiles::of(&[]).p99, 0.0);
    }

    #[test]
    fn synthetic_frames_are_deterministic_and_differ() {
        let a = synthetic_frame(64, 36, 1);
        assert_eq!(a.rgb, synthetic_frame(64, 36, 1).rgb);
        assert_ne!(a.rgb, synthetic_frame(64, 36, 2).rgb);
        assert_eq!((a.id, a.rgb.len()), (1, 64 * 36 * 3));
        // Not flat: the network gets something to segment.
        let (lo, hi) = a
            .rgb
            .iter()
            .fold((255u8, 0u8), |(l, h), &v| (l.min(v), h.max(v)));
        assert!(hi - lo > 100, "{lo}..{hi}");
    }

    #[test]
    fn version_comes_from_the_versioned_file_name() {
        let v = |s: &str| version_from_file_name(Path::new(s));
        assert_eq!(v("/x/libonnxruntime.so.1.31.1").as_deref(), Some("1.31.1"));
        assert_eq!(v("/x/libonnxruntime.so"), None);
        assert_eq!(v("/x/libonnxruntime.so.abc"), None);
    }
}
