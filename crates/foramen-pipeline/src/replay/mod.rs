//! The offline pipeline that `foramen replay` and `foramen bench` run: headless
//! annotated replay of a recording, as pipelined threads.
//!
//! decode (capture thread) -> segment -> blend -> encode (the caller's thread), joined
//! by bounded channels that block rather than drop: offline, every frame is kept and the
//! output has exactly the input's frame count and size.

pub mod batch;
mod stages;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};
use foramen_capture::{
    CaptureError, DropPolicy, FrameSource, VideoEncoder, open_source, spawn_capture,
};
use foramen_core::{Config, FramePool, LatencyStats, Mask, clock_us, lock};
use foramen_overlay::OverlayStyle;

use crate::model::{load, pipeline_model_config};
use crate::{PipelineError, Result};
use stages::{Blended, Recycling, SegmentCounts, TimedSource};

/// Depth of each pipeline channel: enough to ride out jitter, small enough that
/// 1080p frames in flight stay under ~100 MB.
const DEPTH: usize = 4;

/// Frames written before the allocation count starts, at most: the frame, mask and
/// output pools grow until they cover every buffer in flight, which on the 1080p demo
/// takes some 100 frames; after that the pipeline allocates only inside the ONNX Runtime
/// call. Shorter inputs count their second half.
const ALLOC_WARMUP_FRAMES: u64 = 120;

/// How to run the pipeline.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    /// Stop after this many frames (all when `None`).
    pub max_frames: Option<u64>,
    /// Output codec (the encoder's default choice when `None`).
    pub codec: Option<foramen_capture::Codec>,
}

/// Per-frame time of each stage, ms.
#[derive(Debug, Default)]
pub struct StageStats {
    /// Reading and decoding the frame (capture thread).
    pub decode: LatencyStats,
    /// Resize and normalise into the model's input tensor.
    pub pre: LatencyStats,
    /// The model (ONNX Runtime `run`).
    pub model: LatencyStats,
    /// Argmax and confidence.
    pub post: LatencyStats,
    /// Compositing the mask onto the frame.
    pub blend: LatencyStats,
    /// Encoding and writing the frame.
    pub encode: LatencyStats,
}

/// Rust heap allocations while the pipeline was warm.
#[derive(Clone, Copy, Debug, Default)]
pub struct SteadyAllocations {
    /// Frames written during the count.
    pub frames: u64,
    /// Allocations and reallocations through Rust's allocator, all threads.
    pub allocations: u64,
    /// Bytes those asked for.
    pub bytes: u64,
}

/// What `replay` measured.
#[derive(Debug)]
pub struct ReplaySummary {
    /// Frames written.
    pub frames: u64,
    /// Frames the source lost (undecodable).
    pub lost: u64,
    /// Frames whose segmentation failed (written without overlay).
    pub unsegmented: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Decode-to-encode latency per frame, ms.
    pub total: LatencyStats,
    /// Inference (pre + model + post) per frame, ms.
    pub infer: LatencyStats,
    /// Each stage's time per frame.
    pub stages: StageStats,
    /// Allocations after the first frames (none when too few frames).
    pub steady_allocations: Option<SteadyAllocations>,
    /// Frames the container announced, when the input ended before them (a cut or
    /// damaged file: the output holds every frame that could be decoded).
    pub ended_early_of: Option<u64>,
    /// Frame size.
    pub size: (u32, u32),
    /// The output video.
    pub out: PathBuf,
    /// Its codec (`h264`, `mpeg4`, `h264-444`).
    pub codec: &'static str,
}

/// What the caller sees of a running replay: progress, and the Rust heap counters when
/// the binary counts them (its global allocator; a library cannot install one).
pub trait ReplayObserver {
    /// The pipeline starts; `expected_frames` is 0 when the input does not say.
    fn started(&mut self, _expected_frames: u64) {}
    /// One more frame was written.
    fn frame_written(&mut self) {}
    /// Every frame is written (before the threads are joined).
    fn finished(&mut self) {}
    /// Rust heap allocations and bytes so far, when counted.
    fn heap_allocations(&self) -> Option<(u64, u64)> {
        None
    }
}

/// Observes nothing.
impl ReplayObserver for () {}

/// The encode loop's running totals.
#[derive(Default)]
struct Totals {
    total: LatencyStats,
    infer: LatencyStats,
    stages: StageStats,
    frames: u64,
    alloc_start: Option<(u64, (u64, u64))>,
    alloc_end: Option<(u64, (u64, u64))>,
}

impl Totals {
    fn steady_allocations(&self) -> Option<SteadyAllocations> {
        match (self.alloc_start, self.alloc_end) {
            (Some((f0, (a0, b0))), Some((f1, (a1, b1)))) => Some(SteadyAllocations {
                frames: f1 - f0,
                allocations: a1 - a0,
                bytes: b1 - b0,
            }),
            _ => None,
        }
    }
}

/// The telemetry CSV, if asked for, with its path.
type Telemetry<'a> = Option<(&'a Path, std::io::BufWriter<std::fs::File>)>;

/// Creates the telemetry CSV (and its folder) with its header, if asked for.
fn telemetry_file(path: Option<&Path>) -> Result<Telemetry<'_>> {
    let Some(path) = path else {
        return Ok(None);
    };
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(PipelineError::io("creating", d))?;
    }
    let file = std::fs::File::create(path).map_err(PipelineError::io("creating", path))?;
    let mut f = std::io::BufWriter::new(file);
    writeln!(f, "{}", stages::TELEMETRY_HEADER).map_err(PipelineError::io("writing", path))?;
    Ok(Some((path, f)))
}

/// Where the encode loop writes: the video and the telemetry CSV.
struct Sinks<'a> {
    encoder: VideoEncoder,
    out: &'a Path,
    csv: Telemetry<'a>,
    /// The provider in use, the telemetry's last column.
    provider: &'static str,
    output_buffers: crossbeam_channel::Sender<Vec<u8>>,
}

/// The encode stage, on the caller's thread: writes each composited frame and its
/// telemetry row, and counts heap allocations once the pipeline is warm.
fn encode_all(
    blended: &Receiver<Blended>,
    sinks: &mut Sinks,
    expected: u64,
    observer: &mut dyn ReplayObserver,
) -> Result<Totals> {
    let alloc_warmup = if expected > 0 {
        (expected / 2).clamp(1, ALLOC_WARMUP_FRAMES)
    } else {
        ALLOC_WARMUP_FRAMES
    };
    let mut t = Totals::default();
    for b in blended {
        let te = Instant::now();
        sinks
            .encoder
            .write_rgb(&b.rgb)
            .map_err(encode_error("encoding the replay into", sinks.out))?;
        t.stages.encode.push(te.elapsed().as_secs_f64() * 1000.0);
        let total_ms = clock_us().saturating_sub(b.captured_at_us) as f64 / 1000.0;
        t.total.push(total_ms);
        t.stages.blend.push(b.blend_ms as f64);
        if b.mask_frame.is_some() {
            t.infer.push(b.timings.total_ms() as f64);
            t.stages.pre.push(b.timings.pre_ms as f64);
            t.stages.model.push(b.timings.infer_ms as f64);
            t.stages.post.push(b.timings.post_ms as f64);
        }
        if let Some((path, f)) = sinks.csv.as_mut() {
            writeln!(
                f,
                "{},{}",
                stages::telemetry_row(&b, total_ms),
                sinks.provider
            )
            .map_err(PipelineError::io("writing", *path))?;
        }
        t.frames += 1;
        observer.frame_written();
        let _ = sinks.output_buffers.try_send(b.rgb);
        // Counted from a warm pipeline up to the last frame written, before teardown.
        if let Some(counts) = observer.heap_allocations() {
            if t.frames == alloc_warmup {
                t.alloc_start = Some((t.frames, counts));
            } else if t.frames > alloc_warmup {
                t.alloc_end = Some((t.frames, counts));
            }
        }
    }
    Ok(t)
}

fn encode_error(what: &'static str, out: &Path) -> impl FnOnce(CaptureError) -> PipelineError {
    let path = out.to_path_buf();
    move |source| PipelineError::Encode { what, path, source }
}

/// The frame count the container announced, when the input ended `read` frames in,
/// before it (a cut or damaged file) and before the frame budget.
fn ended_early(
    input: &str,
    announced: Option<u64>,
    read: u64,
    opts: &ReplayOptions,
) -> Option<u64> {
    // One frame of slack: some containers' counts are estimates from the duration.
    let n = announced.filter(|&n| read + 1 < n && opts.max_frames.is_none_or(|m| read < m))?;
    tracing::warn!("{input}: ended after {read} of the {n} frames its container announces");
    Some(n)
}

/// Opens `input` behind the decode timer and the frame budget; the timer's stats come
/// back beside it, since the source itself moves into the capture thread.
fn open_timed(
    input: &str,
    opts: &ReplayOptions,
) -> Result<(Box<TimedSource>, Arc<Mutex<LatencyStats>>)> {
    let inner = open_source(input).map_err(|source| PipelineError::Open {
        input: format!("input {input}"),
        source,
    })?;
    let decode_ms = Arc::new(Mutex::new(LatencyStats::default()));
    let source = Box::new(TimedSource {
        inner,
        decode_ms: decode_ms.clone(),
        frames_left: opts.max_frames,
    });
    Ok((source, decode_ms))
}

/// The running threads upstream of the encoder.
struct Threads {
    capture: foramen_capture::CaptureHandle,
    segment: std::thread::JoinHandle<SegmentCounts>,
    blend: std::thread::JoinHandle<()>,
}

/// The threads, the composited frames the encoder reads, and the way its spent output
/// buffers go back to blend.
type Graph = (Threads, Receiver<Blended>, Sender<Vec<u8>>);

/// Wires the graph: capture -[DEPTH, block]-> segment -[DEPTH, block]-> blend
/// -[DEPTH, block]-> encode; encode -[output buffers, try_send]-> blend; masks and
/// frames go back upstream once blended, so the steady state allocates neither.
fn spawn_graph(
    mut source: Box<TimedSource>,
    seg: foramen_segment::Segmenter,
    style: OverlayStyle,
) -> Result<Graph> {
    // Enough for every frame in flight (`foramen bench` counts allocations).
    let frame_pool = FramePool::new(3 * DEPTH + 4);
    source.set_frame_pool(frame_pool.clone());
    let (mask_back_tx, mask_back_rx) = bounded::<Mask>(2 * DEPTH + 2);
    let capture = spawn_capture(source, DEPTH, DropPolicy::Block);
    let (seg_tx, seg_rx) = bounded(DEPTH);
    let (blend_tx, blended) = bounded(DEPTH);
    // Room for every buffer that can be in flight, so none is ever dropped and re-made.
    let (output_buffers, pool_rx) = bounded::<Vec<u8>>(2 * DEPTH + 4);
    let segment = stages::spawn_segment(seg, capture.events().clone(), seg_tx, mask_back_rx)?;
    let recycling = Recycling {
        frame_pool,
        masks_back: mask_back_tx,
        output_buffers: pool_rx,
    };
    let blend = stages::spawn_blend(style, seg_rx, blend_tx, recycling)?;
    let threads = Threads {
        capture,
        segment,
        blend,
    };
    Ok((threads, blended, output_buffers))
}

impl Threads {
    /// Joins the threads once the encoder has stopped reading (its receiver dropped).
    fn join(self) -> Result<SegmentCounts> {
        let counts = self
            .segment
            .join()
            .map_err(|_| PipelineError::Panicked { name: "segment" })?;
        self.blend
            .join()
            .map_err(|_| PipelineError::Panicked { name: "blend" })?;
        self.capture.stop_and_join();
        Ok(counts)
    }
}

/// Runs the replay of `input` with `model` (the bundled one when `None`) into `out`,
/// with a per-frame telemetry CSV when asked.
pub fn run(
    input: &str,
    model: Option<&Path>,
    out: &Path,
    telemetry: Option<&Path>,
    cfg: &Config,
    opts: &ReplayOptions,
    observer: &mut dyn ReplayObserver,
) -> Result<ReplaySummary> {
    let (source, decode_ms) = open_timed(input, opts)?;
    let info = source.info().clone();
    // Load the model before creating any output, so a broken model leaves nothing
    // that could pass for a finished replay.
    let seg = load(model, &pipeline_model_config(cfg))?;
    let provider = seg.execution_provider();
    let style = OverlayStyle::new(seg.classes(), &cfg.overlay);
    let csv = telemetry_file(telemetry)?;
    let encoder = VideoEncoder::create_with(out, info.width, info.height, info.fps, opts.codec)
        .map_err(encode_error("creating", out))?;
    let codec = encoder.codec();

    let t0 = Instant::now();
    let (threads, blended, output_buffers) = spawn_graph(source, seg, style)?;
    let expected = match (info.frame_count, opts.max_frames) {
        (Some(n), Some(m)) => n.min(m),
        (n, m) => n.or(m).unwrap_or(0),
    };
    observer.started(expected);
    let mut sinks = Sinks {
        encoder,
        out,
        csv,
        provider,
        output_buffers,
    };
    let encoded = encode_all(&blended, &mut sinks, expected, observer);
    let Sinks { csv, encoder, .. } = sinks;
    drop(blended);
    observer.finished();
    let counts = threads.join()?;
    let totals = encoded?;
    encoder.finish().map_err(encode_error("finishing", out))?;
    if let Some((path, mut f)) = csv {
        f.flush().map_err(PipelineError::io("writing", path))?;
    }
    if let Some(e) = &counts.fatal {
        tracing::warn!("input ended early: {e}");
    }
    Ok(ReplaySummary {
        ended_early_of: ended_early(input, info.frame_count, totals.frames + counts.lost, opts),
        frames: totals.frames,
        lost: counts.lost,
        unsegmented: counts.failed,
        seconds: t0.elapsed().as_secs_f64(),
        total: totals.total.clone(),
        infer: totals.infer.clone(),
        steady_allocations: totals.steady_allocations(),
        stages: StageStats {
            decode: lock(&decode_ms).clone(),
            ..totals.stages
        },
        size: (info.width, info.height),
        out: out.to_path_buf(),
        codec,
    })
}

impl std::fmt::Display for ReplaySummary {
    /// The summary `foramen replay` prints, one line per fact.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "replayed {} frames ({}x{}) in {:.1} s: {:.1} fps; latency mean {:.1} ms, p99 {:.1} ms; inference mean {:.1} ms, p99 {:.1} ms",
            self.frames,
            self.size.0,
            self.size.1,
            self.seconds,
            self.frames as f64 / self.seconds.max(1e-9),
            self.total.mean(),
            self.total.percentile(99.0),
            self.infer.mean(),
            self.infer.percentile(99.0),
        )?;
        if let Some(n) = self.ended_early_of {
            writeln!(
                f,
                "warning: the input ended after {} of the {n} frames it announces (cut or damaged file); \
                 all {} decodable frames were written",
                self.frames + self.lost,
                self.frames
            )?;
        }
        if self.lost + self.unsegmented > 0 {
            writeln!(
                f,
                "warning: {} frame(s) undecodable, {} frame(s) written without overlay",
                self.lost, self.unsegmented
            )?;
        }
        write!(f, "output: {}", self.out.display())
    }
}
