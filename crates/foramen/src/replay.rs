//! `foramen replay`: headless annotated replay of a recording, as pipelined threads.
//!
//! decode (capture thread) -> segment -> blend -> encode (this thread), joined by
//! bounded channels that block rather than drop: offline, every frame is kept and the
//! output has exactly the input's frame count and size.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use crossbeam_channel::bounded;
use foramen_capture::{
    CaptureError, CaptureEvent, DropPolicy, FrameSource, SourceInfo, VideoEncoder, open_source,
    spawn_capture,
};
use foramen_core::{Config, Frame, FramePool, LatencyStats, Mask, clock_us};
use foramen_overlay::{Compositor, OverlayStyle};
use foramen_segment::StageTimings;

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

struct Segmented {
    frame: Frame,
    mask: Option<Mask>,
    timings: StageTimings,
}

struct Blended {
    frame_id: u64,
    pts_us: i64,
    captured_at_us: u64,
    rgb: Vec<u8>,
    mask_frame: Option<u64>,
    mask_age_ms: Option<f64>,
    timings: StageTimings,
    blend_ms: f32,
}

/// The model settings a pipeline stage uses: ONNX Runtime's threads do not spin while
/// they wait, unless the config says so, because spinning takes the cores that decode,
/// composite and encode need (measured with `foramen bench` on the demo: 17.7 frames/s
/// spinning, 20.9 not).
pub fn pipeline_model_config(cfg: &Config) -> foramen_core::config::ModelConfig {
    let mut m = cfg.model.clone();
    m.allow_spinning.get_or_insert(false);
    m
}

/// Times each decode and ends the stream after a frame budget.
struct TimedSource {
    inner: Box<dyn FrameSource>,
    decode_ms: Arc<Mutex<LatencyStats>>,
    frames_left: Option<u64>,
}

impl FrameSource for TimedSource {
    fn info(&self) -> &SourceInfo {
        self.inner.info()
    }

    fn set_frame_pool(&mut self, pool: FramePool) {
        self.inner.set_frame_pool(pool);
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.frames_left == Some(0) {
            return Ok(None);
        }
        let t = Instant::now();
        let r = self.inner.next_frame();
        if let Ok(Some(_)) = &r {
            if let Ok(mut d) = self.decode_ms.lock() {
                d.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            if let Some(n) = self.frames_left.as_mut() {
                *n -= 1;
            }
        }
        r
    }
}

/// Runs the replay.
pub fn run(
    input: &str,
    model: Option<&Path>,
    out: &Path,
    telemetry: Option<&Path>,
    cfg: &Config,
    opts: &ReplayOptions,
) -> Result<ReplaySummary> {
    let inner = open_source(input).with_context(|| format!("opening input {input}"))?;
    let info = inner.info().clone();
    let decode_ms = Arc::new(Mutex::new(LatencyStats::default()));
    let mut source = Box::new(TimedSource {
        inner,
        decode_ms: decode_ms.clone(),
        frames_left: opts.max_frames,
    });
    // Decoded frames and masks go back upstream once blended, so the steady state
    // allocates neither (`foramen bench` counts it). Enough for every frame in flight.
    let frame_pool = FramePool::new(3 * DEPTH + 4);
    source.set_frame_pool(frame_pool.clone());
    let (mask_back_tx, mask_back_rx) = bounded::<Mask>(2 * DEPTH + 2);
    // Load the model before creating any output, so a broken model leaves nothing
    // that could pass for a finished replay.
    let mut seg = crate::model::load(model, &pipeline_model_config(cfg))?;
    let style = OverlayStyle::new(seg.classes(), &cfg.overlay);
    let mut csv = telemetry
        .map(|p| -> Result<_> {
            if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d)?;
            }
            let mut f = std::io::BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?);
            writeln!(f, "frame,pts_ms,mask_frame,mask_age_ms,infer_ms,pre_ms,model_ms,post_ms,blend_ms,total_ms")?;
            Ok(f)
        })
        .transpose()?;
    let mut encoder =
        VideoEncoder::create_with(out, info.width, info.height, info.fps, opts.codec)?;
    let codec = encoder.codec();

    let t0 = Instant::now();
    let capture = spawn_capture(source, DEPTH, DropPolicy::Block);
    let events = capture.events().clone();
    let (seg_tx, seg_rx) = bounded::<Segmented>(DEPTH);
    let (blend_tx, blend_rx) = bounded::<Blended>(DEPTH);
    // Finished output buffers go back to the blender instead of being freed.
    // Room for every buffer that can be in flight, so none is ever dropped and re-made.
    let (pool_tx, pool_rx) = bounded::<Vec<u8>>(2 * DEPTH + 4);

    let segment = std::thread::Builder::new().name("segment".into()).spawn(
        move || -> (u64, u64, Option<String>) {
            let (mut lost, mut failed) = (0u64, 0u64);
            for ev in events {
                match ev {
                    CaptureEvent::Frame(frame) => {
                        while let Ok(m) = mask_back_rx.try_recv() {
                            seg.recycle(m);
                        }
                        let (mask, timings) = match seg.segment(&frame) {
                            Ok(r) => (Some(r.mask), r.timings),
                            Err(e) => {
                                failed += 1;
                                tracing::warn!("frame {}: {e}", frame.id);
                                (None, StageTimings::default())
                            }
                        };
                        if seg_tx
                            .send(Segmented {
                                frame,
                                mask,
                                timings,
                            })
                            .is_err()
                        {
                            break;
                        }
                    }
                    CaptureEvent::FrameError(e) => {
                        lost += 1;
                        tracing::warn!("{e}");
                    }
                    CaptureEvent::End(e) => return (lost, failed, e.map(|e| e.to_string())),
                }
            }
            (lost, failed, None)
        },
    )?;

    let blend = std::thread::Builder::new()
        .name("blend".into())
        .spawn(move || {
            let mut comp = Compositor::new();
            for s in seg_rx {
                let t = Instant::now();
                let f = &s.frame;
                let mut rgb = pool_rx.try_recv().unwrap_or_default();
                rgb.resize(f.rgb.len(), 0);
                match &s.mask {
                    Some(m) => comp.composite(&f.rgb, f.width, f.height, m, &style, &mut rgb),
                    None => rgb.copy_from_slice(&f.rgb),
                }
                let b = Blended {
                    frame_id: f.id,
                    pts_us: f.pts_us,
                    captured_at_us: f.captured_at_us,
                    rgb,
                    mask_frame: s.mask.as_ref().map(|m| m.source_frame_id),
                    mask_age_ms: s.mask.as_ref().map(|m| m.age_ms(clock_us())),
                    timings: s.timings,
                    blend_ms: t.elapsed().as_secs_f32() * 1000.0,
                };
                frame_pool.give(s.frame.rgb);
                if let Some(m) = s.mask {
                    let _ = mask_back_tx.try_send(m);
                }
                if blend_tx.send(b).is_err() {
                    break;
                }
            }
        })?;

    let mut total = LatencyStats::default();
    let mut infer = LatencyStats::default();
    let mut stages = StageStats::default();
    let mut frames = 0u64;
    let expected = match (info.frame_count, opts.max_frames) {
        (Some(n), Some(m)) => n.min(m),
        (n, m) => n.or(m).unwrap_or(0),
    };
    let pb = crate::progress::bar(expected, "frames");
    let alloc_warmup = if expected > 0 {
        (expected / 2).clamp(1, ALLOC_WARMUP_FRAMES)
    } else {
        ALLOC_WARMUP_FRAMES
    };
    let mut write_err = None;
    let mut alloc_start = None;
    let mut alloc_end = None;
    for b in &blend_rx {
        let te = Instant::now();
        if let Err(e) = encoder.write_rgb(&b.rgb) {
            write_err = Some(e);
            break;
        }
        stages.encode.push(te.elapsed().as_secs_f64() * 1000.0);
        let total_ms = clock_us().saturating_sub(b.captured_at_us) as f64 / 1000.0;
        total.push(total_ms);
        stages.blend.push(b.blend_ms as f64);
        if b.mask_frame.is_some() {
            infer.push(b.timings.total_ms() as f64);
            stages.pre.push(b.timings.pre_ms as f64);
            stages.model.push(b.timings.infer_ms as f64);
            stages.post.push(b.timings.post_ms as f64);
        }
        if let Some(f) = csv.as_mut() {
            let opt = |v: Option<String>| v.unwrap_or_default();
            writeln!(
                f,
                "{},{:.3},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
                b.frame_id,
                b.pts_us as f64 / 1000.0,
                opt(b.mask_frame.map(|m| m.to_string())),
                opt(b.mask_age_ms.map(|a| format!("{a:.3}"))),
                b.timings.total_ms(),
                b.timings.pre_ms,
                b.timings.infer_ms,
                b.timings.post_ms,
                b.blend_ms,
                total_ms
            )?;
        }
        frames += 1;
        pb.inc(1);
        let _ = pool_tx.try_send(b.rgb);
        // Counted from a warm pipeline up to the last frame written, before teardown.
        if frames == alloc_warmup {
            alloc_start = Some((frames, crate::alloc_count::snapshot()));
        } else if frames > alloc_warmup {
            alloc_end = Some((frames, crate::alloc_count::snapshot()));
        }
    }
    drop(blend_rx);
    pb.finish_and_clear();
    let (lost, unsegmented, fatal) = segment
        .join()
        .map_err(|_| anyhow!("segment thread panicked"))?;
    blend.join().map_err(|_| anyhow!("blend thread panicked"))?;
    capture.stop_and_join();
    if let Some(e) = write_err {
        return Err(e).context("encoding the replay");
    }
    encoder.finish()?;
    if let Some(mut f) = csv {
        f.flush()?;
    }
    if let Some(e) = fatal {
        tracing::warn!("input ended early: {e}");
    }
    let seconds = t0.elapsed().as_secs_f64();
    stages.decode = decode_ms.lock().map(|d| d.clone()).unwrap_or_default();
    let steady_allocations = match (alloc_start, alloc_end) {
        (Some((f0, (a0, b0))), Some((f1, (a1, b1)))) => Some(SteadyAllocations {
            frames: f1 - f0,
            allocations: a1 - a0,
            bytes: b1 - b0,
        }),
        _ => None,
    };
    let read = frames + lost;
    let ended_early_of = info
        .frame_count
        // One frame of slack: some containers' counts are estimates from the duration.
        .filter(|&n| read + 1 < n && opts.max_frames.is_none_or(|m| read < m));
    if let Some(n) = ended_early_of {
        tracing::warn!("{input}: ended after {read} of the {n} frames its container announces");
    }
    Ok(ReplaySummary {
        ended_early_of,
        frames,
        lost,
        unsegmented,
        seconds,
        total,
        infer,
        stages,
        steady_allocations,
        size: (info.width, info.height),
        out: out.to_path_buf(),
        codec,
    })
}

impl ReplaySummary {
    /// The printed summary.
    pub fn print(&self) {
        say!(
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
        );
        if let Some(n) = self.ended_early_of {
            say!(
                "warning: the input ended after {} of the {n} frames it announces (cut or damaged file); \
                 all {} decodable frames were written",
                self.frames + self.lost,
                self.frames
            );
        }
        if self.lost + self.unsegmented > 0 {
            say!(
                "warning: {} frame(s) undecodable, {} frame(s) written without overlay",
                self.lost,
                self.unsegmented
            );
        }
        say!("output: {}", self.out.display());
    }
}
