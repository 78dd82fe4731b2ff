//! `foramen bench`: the real offline pipeline, timed stage by stage against the model's
//! own floor.
//!
//! The pipeline is `replay`'s (decode -> segment -> blend -> encode, one thread each,
//! bounded blocking channels). Before it runs, the same model is loaded alone and timed
//! on a frame of the same input, so the report can say how much of the pipeline's cost is
//! the model: efficiency = throughput x bare model time (1.0 means every other stage
//! hides behind the model).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foramen_capture::open_source;
use foramen_core::paths::{check_distinct, check_output};
use foramen_core::{Config, LatencyStats};
use serde_json::json;

use foramen_pipeline::model::{pipeline_model_config, resolve};
use foramen_pipeline::replay::{ReplayOptions, ReplaySummary, SteadyAllocations};

/// Runs of the bare model after its warm-up.
const BARE_RUNS: usize = 100;
/// Warm-up runs of the bare model (ONNX Runtime plans and allocates on the first runs).
const BARE_WARMUP: usize = 10;

/// `foramen bench` options.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: super::replay::Source,
    /// Stop after this many frames (default: the whole input).
    #[arg(long)]
    frames: Option<u64>,
    /// Annotated video the encode stage writes (default: out/bench.annotated.mp4).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Pace the source at its own frame rate through the live path (newest frame
    /// wins at the model) and report video-path and annotation latency instead.
    #[arg(long)]
    realtime: bool,
    /// Output codec: h264 (Foramen's default) or mpeg4 (what the Python baseline
    /// can write; `make bench` compares with it).
    #[arg(long, value_parser = ["h264", "mpeg4"])]
    codec: Option<String>,
}

/// Runs `foramen bench`.
pub fn exec(a: Args, config: &Config) -> Result<()> {
    let model = a.source.model.or_else(|| config.model.path.clone());
    foramen_core::paths::protect(&model);
    let out = a.out.unwrap_or_else(default_out);
    let input = Path::new(&a.source.input);
    check_output(&out, &[input])?;
    if let Some(j) = &a.json {
        check_output(j, &[input])?;
        check_distinct(&out, j)?;
    }
    let args = BenchArgs {
        input: &a.source.input,
        model: model.as_deref(),
        frames: a.frames,
        out: &out,
        json: a.json.as_deref(),
        codec: a.codec.map(|c| {
            if c == "mpeg4" {
                foramen_capture::Codec::Mpeg4
            } else {
                foramen_capture::Codec::H264
            }
        }),
    };
    if a.realtime {
        run_realtime(&args, config)
    } else {
        run(&args, config)
    }
}

/// What `bench` was asked to do.
struct BenchArgs<'a> {
    /// Video file, folder or synthetic source.
    pub input: &'a str,
    /// Model (the bundled one when `None`).
    pub model: Option<&'a Path>,
    /// Frame budget.
    pub frames: Option<u64>,
    /// Annotated video written by the encode stage.
    pub out: &'a Path,
    /// JSON report.
    pub json: Option<&'a Path>,
    /// Output codec of the encode stage (the default choice, H.264 first, when `None`).
    pub codec: Option<foramen_capture::Codec>,
}

fn stats_json(s: &LatencyStats) -> serde_json::Value {
    json!({
        "count": s.len(),
        "mean_ms": s.mean(),
        "p50_ms": s.percentile(50.0),
        "p90_ms": s.percentile(90.0),
        "p99_ms": s.percentile(99.0),
        "max_ms": s.max(),
    })
}

/// Peak resident set size of this process, MiB (Linux `VmHWM`).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The model alone on the first frame of `input`: per-run ms after warm-up.
fn bare_model(args: &BenchArgs, cfg: &Config) -> Result<Bare> {
    let mut seg = foramen_pipeline::model::load(args.model, &pipeline_model_config(cfg))?;
    let mut source =
        open_source(args.input).with_context(|| format!("opening input {}", args.input))?;
    let frame = source
        .next_frame()
        .with_context(|| format!("reading the first frame of {}", args.input))?
        .with_context(|| format!("{} has no frame", args.input))?;
    seg.segment(&frame)
        .with_context(|| format!("segmenting the first frame of {}", args.input))?;
    seg.time_model_only(BARE_WARMUP)?;
    let (a0, _) = foramen_core::alloc_count::snapshot();
    let times = seg.time_model_only(BARE_RUNS)?;
    let (a1, _) = foramen_core::alloc_count::snapshot();
    let mut stats = LatencyStats::default();
    for ms in times {
        stats.push(ms);
    }
    let bare = Bare {
        stats,
        // The Rust side of one ONNX Runtime call (its inputs and outputs lists), minus
        // the one allocation of the vector of times above.
        rust_allocations_per_run: (a1 - a0).saturating_sub(1) as f64 / BARE_RUNS as f64,
        provider: seg.execution_provider().to_string(),
        provider_fallback: seg.provider_fallback().map(str::to_string),
        input: (seg.contract().input.width, seg.contract().input.height),
    };
    Ok(bare)
}

/// The model alone.
struct Bare {
    stats: LatencyStats,
    rust_allocations_per_run: f64,
    provider: String,
    provider_fallback: Option<String>,
    input: (u32, u32),
}

/// Runs the benchmark and prints (and optionally writes) its report.
fn run(args: &BenchArgs, cfg: &Config) -> Result<()> {
    if args.frames == Some(0) {
        bail!("--frames: must be at least 1");
    }
    let bare = bare_model(args, cfg)?;
    let model_path = resolve(args.model)?;
    let summary = super::replay::run(
        args.input,
        Some(&model_path),
        args.out,
        None,
        cfg,
        &ReplayOptions {
            max_frames: args.frames,
            codec: args.codec,
        },
    )?;
    if summary.frames == 0 {
        bail!("{}: no frame was processed", args.input);
    }
    let report = Report::new(args, &summary, &bare, &model_path);
    report.print();
    if let Some(path) = args.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(&report.json)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        say!("report: {}", path.display());
    }
    Ok(())
}

struct Report {
    json: serde_json::Value,
    lines: Vec<String>,
}

fn per_frame(a: &SteadyAllocations) -> f64 {
    a.allocations as f64 / a.frames.max(1) as f64
}

/// The steady-state allocation counts, whole and per frame, in and outside the model call.
fn allocations_json(a: &SteadyAllocations, model_call_per_run: f64) -> serde_json::Value {
    json!({
        "frames": a.frames,
        "allocations": a.allocations,
        "bytes": a.bytes,
        "allocations_per_frame": per_frame(a),
        "bytes_per_frame": a.bytes as f64 / a.frames.max(1) as f64,
        "model_call_allocations_per_frame": model_call_per_run,
        "outside_model_allocations_per_frame": (per_frame(a) - model_call_per_run).max(0.0),
    })
}

/// The report's last lines: allocations, memory, losses and the output.
fn footer(s: &ReplaySummary, b: &Bare, peak_rss: Option<f64>) -> Vec<String> {
    let mut lines = vec![];
    if let Some(a) = s.steady_allocations {
        lines.push(format!(
            "Rust heap allocations after {} warm-up frames: {:.1} per frame ({:.0} bytes per frame), \
             of which {:.1} in the ONNX Runtime call itself",
            s.frames - a.frames,
            per_frame(&a),
            a.bytes as f64 / a.frames.max(1) as f64,
            b.rust_allocations_per_run
        ));
    }
    if let Some(rss) = peak_rss {
        lines.push(format!(
            "peak RSS {rss:.1} MiB, of which at most {:.1} MiB held through Rust's allocator",
            foramen_core::alloc_count::peak_live_bytes() as f64 / 1048576.0
        ));
    }
    if s.lost + s.unsegmented > 0 {
        lines.push(format!(
            "warning: {} frame(s) undecodable, {} without overlay",
            s.lost, s.unsegmented
        ));
    }
    lines.push(format!("output: {} ({})", s.out.display(), s.codec));
    lines
}

impl Report {
    fn new(args: &BenchArgs, s: &ReplaySummary, b: &Bare, model: &Path) -> Self {
        let (bare, provider, model_input) = (&b.stats, &b.provider, b.input);
        let fps = s.frames as f64 / s.seconds.max(1e-9);
        let bare_ms = bare.percentile(50.0);
        let efficiency = fps * bare_ms / 1000.0;
        let stages = [
            ("decode", &s.stages.decode),
            ("preprocess", &s.stages.pre),
            ("model", &s.stages.model),
            ("postprocess", &s.stages.post),
            ("composite", &s.stages.blend),
            ("encode", &s.stages.encode),
            ("end_to_end", &s.total),
        ];
        let allocs = s
            .steady_allocations
            .map(|a| allocations_json(&a, b.rust_allocations_per_run));
        let peak_rss = peak_rss_mib();
        let json = json!({
            "tool": "foramen",
            "input": args.input,
            "frame_size": [s.size.0, s.size.1],
            "model": model.display().to_string(),
            "model_input": [model_input.0, model_input.1],
            "execution_provider": provider,
            "provider_fallback": b.provider_fallback,
            "frames": s.frames,
            "lost_frames": s.lost,
            "unsegmented_frames": s.unsegmented,
            "seconds": s.seconds,
            "throughput_fps": fps,
            "bare_model": stats_json(bare),
            "efficiency": efficiency,
            "stages": stages.iter().map(|(n, st)| ((*n).to_string(), stats_json(st))).collect::<serde_json::Map<_, _>>(),
            "steady_state_rust_allocations": allocs,
            "codec": s.codec,
            "peak_rss_mib": peak_rss,
            "peak_rust_heap_mib": foramen_core::alloc_count::peak_live_bytes() as f64 / 1048576.0,
            "output": s.out.display().to_string(),
        });
        let mut lines = vec![
            format!(
                "foramen bench: {} frames of {}x{} from {} through {} ({}x{} input, {})",
                s.frames,
                s.size.0,
                s.size.1,
                args.input,
                model.display(),
                model_input.0,
                model_input.1,
                provider
            ),
            format!(
                "throughput {fps:.1} frames/s; bare model {bare_ms:.2} ms (p90 {:.2}); efficiency {efficiency:.2}",
                bare.percentile(90.0)
            ),
            format!(
                "{:<12} {:>8} {:>8} {:>8} {:>8}",
                "stage (ms)", "p50", "p90", "p99", "max"
            ),
        ];
        for (name, st) in stages {
            lines.push(format!(
                "{:<12} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                name,
                st.percentile(50.0),
                st.percentile(90.0),
                st.percentile(99.0),
                st.max()
            ));
        }
        lines.extend(footer(s, b, peak_rss));
        Self { json, lines }
    }

    fn print(&self) {
        for l in &self.lines {
            say!("{l}");
        }
    }
}

/// `bench --realtime`: the source paced at its own frame rate through the live
/// architecture without a window (`foramen_pipeline::live::realtime`): the latency of
/// the video path (capture to ready for display) and of the annotation (capture to mask).
fn run_realtime(args: &BenchArgs, cfg: &Config) -> Result<()> {
    if args.frames == Some(0) {
        bail!("--frames: must be at least 1");
    }
    let model = resolve(args.model)?;
    // Fail on a broken model here: the live worker would only report it and retry.
    drop(foramen_pipeline::model::load(Some(&model), &cfg.model)?);
    let r = foramen_pipeline::live::realtime::run_paced(args.input, &model, cfg, args.frames)?;
    let fps = r.frames as f64 / r.seconds.max(1e-9);
    let annotated = r.masks as f64 / r.frames.max(1) as f64;
    let line = |name: &str, s: &LatencyStats| {
        format!(
            "{name:<22} p50 {:>7.2}  p90 {:>7.2}  p99 {:>7.2}  max {:>7.2} ms ({} samples)",
            s.percentile(50.0),
            s.percentile(90.0),
            s.percentile(99.0),
            s.max(),
            s.len()
        )
    };
    say!(
        "foramen bench --realtime: {} frames of {} at {:.1} frames/s (source {:.1}) through {}",
        r.frames,
        args.input,
        fps,
        r.source_fps,
        model.display()
    );
    say!(
        "masks {} ({:.0} % of frames annotated; the worker skipped {} stale frames, newest wins)",
        r.masks,
        100.0 * annotated,
        r.skipped
    );
    say!("{}", line("video path (ms)", &r.video));
    say!("{}", line("annotation (ms)", &r.annotation));
    if let Some(path) = args.json {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let doc = json!({
            "tool": "foramen", "mode": "realtime", "input": args.input,
            "model": model.display().to_string(), "frames": r.frames, "seconds": r.seconds,
            "capture_fps": fps, "source_fps": r.source_fps, "masks": r.masks,
            "annotated_fraction": annotated, "skipped": r.skipped,
            "video_latency": stats_json(&r.video), "annotation_latency": stats_json(&r.annotation),
            "peak_rss_mib": peak_rss_mib(),
        });
        let text = serde_json::to_string_pretty(&doc)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        say!("report: {}", path.display());
    }
    Ok(())
}

/// Default annotated output of `bench`.
fn default_out() -> PathBuf {
    PathBuf::from("out").join("bench.annotated.mp4")
}
