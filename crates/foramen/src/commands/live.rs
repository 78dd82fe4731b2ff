//! `foramen live` and `foramen view`: start the session, then either the window
//! (`foramen-app`) or, with `--headless`, a console loop that reports the same counters.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use foramen_app::{AppOptions, WindowSettings, run_window};
use foramen_core::Config;
use foramen_pipeline::live::{CaptureStats, LiveSession, Mode, SessionSpec};
use foramen_segment::WorkerState;

use super::synth::parse_size;

/// `foramen live` options.
#[derive(clap::Args)]
pub struct LiveArgs {
    /// Capture device, or any source (`synthetic:SEED:WxH@FPS`, file, folder)
    /// played through the live path (default: `[capture].device`).
    #[arg(long)]
    device: Option<String>,
    #[command(flatten)]
    window: WindowArgs,
}

/// `foramen view` options.
#[derive(clap::Args)]
pub struct ViewArgs {
    /// Video file or image folder.
    input: String,
    /// Replay at this frame rate instead of the file's own.
    #[arg(long)]
    fps: Option<f64>,
    #[command(flatten)]
    window: WindowArgs,
}

/// Options shared by `live` and `view`.
#[derive(clap::Args, Clone, Debug)]
pub struct WindowArgs {
    /// ONNX model (default: `[model].path`, else the bundled lumbar model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Save a screenshot of the window (PNG) after N frames have been shown: N PATH.
    #[arg(long, num_args = 2, value_names = ["N", "PATH"])]
    snapshot_after_frames: Option<Vec<String>>,
    /// Save a screenshot of the window after S seconds: S PATH (states without new
    /// frames, such as NO SIGNAL).
    #[arg(long, num_args = 2, value_names = ["S", "PATH"])]
    snapshot_after_seconds: Option<Vec<String>>,
    /// Close after N frames have been shown (for tests and CI).
    #[arg(long)]
    exit_after_frames: Option<u64>,
    /// Per-frame display latency CSV, written at exit.
    #[arg(long)]
    telemetry: Option<PathBuf>,
    /// Start recording at once (into `[recording].dir`).
    #[arg(long)]
    record: bool,
    /// Folder for recordings (overrides `[recording].dir`).
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// Run the pipeline without a window (recording station, tests): prints a summary.
    #[arg(long)]
    headless: bool,
    /// Window size WxH (default 1280x720).
    #[arg(long, value_parser = parse_size)]
    window_size: Option<(u32, u32)>,
}

/// Runs `foramen live`.
pub fn exec_live(a: LiveArgs, config: Config, config_path: Option<PathBuf>) -> Result<()> {
    let input = a.device.unwrap_or_else(|| config.capture.device.clone());
    run(input, Mode::Live, None, a.window, config, config_path)
}

/// Runs `foramen view`.
pub fn exec_view(a: ViewArgs, config: Config, config_path: Option<PathBuf>) -> Result<()> {
    run(a.input, Mode::Review, a.fps, a.window, config, config_path)
}

/// `N PATH` of `--snapshot-after-*`, N parsed as `T`.
fn count_and_path<T: std::str::FromStr>(
    v: &Option<Vec<String>>,
    flag: &str,
    what: &str,
) -> Result<Option<(T, PathBuf)>> {
    v.as_ref()
        .map(|v| {
            let n = v[0]
                .parse()
                .ok()
                .with_context(|| format!("{flag}: {:?} is not {what}", v[0]))?;
            Ok((n, PathBuf::from(&v[1])))
        })
        .transpose()
}

/// Runs a live or review session until the window closes (or, headless, until the
/// stream ends, `--exit-after-frames` or Ctrl-C).
fn run(
    input: String,
    mode: Mode,
    fps: Option<f64>,
    args: WindowArgs,
    mut config: Config,
    config_path: Option<PathBuf>,
) -> Result<()> {
    if let Some(dir) = &args.record_dir {
        config.recording.dir = dir.clone();
    }
    // A missing model is not fatal here: the video runs and the status says why.
    let model = args
        .model
        .clone()
        .or_else(|| config.model.path.clone())
        .map_or_else(|| foramen_pipeline::model::resolve(None), Ok)
        .unwrap_or_else(|e| {
            tracing::warn!("{e}");
            PathBuf::from("models/lumbar-synth.onnx")
        });
    let snapshot_after = count_and_path(
        &args.snapshot_after_frames,
        "--snapshot-after-frames",
        "a frame count",
    )?;
    let snapshot_after_s = count_and_path(
        &args.snapshot_after_seconds,
        "--snapshot-after-seconds",
        "a number of seconds",
    )?;
    let spec = SessionSpec {
        input,
        mode,
        model,
        config: config.clone(),
        fps,
    };
    if args.headless {
        return headless(spec, &args);
    }
    let opts = AppOptions {
        config_path,
        snapshot_after,
        snapshot_after_s,
        exit_after_frames: args.exit_after_frames,
        telemetry: args.telemetry.clone(),
        snapshot_dir: config.recording.dir.join("snapshots"),
    };
    let settings = WindowSettings {
        size: args.window_size.unwrap_or((1280, 720)),
        record: args.record,
    };
    Ok(run_window(spec, config, opts, settings)?)
}

/// The once-a-second status line of a headless session.
fn status_line(
    session: &LiveSession,
    cap: &CaptureStats,
    w: &WorkerState,
    no_signal_ms: f64,
    t_s: f64,
) -> String {
    let mut rec = session
        .recording()
        .map(|r| {
            let failed = r
                .error
                .map(|e| format!("  RECORDING FAILED: {e}"))
                .unwrap_or_default();
            format!(" rec {} frames {} lost{failed}", r.frames, r.lost)
        })
        .unwrap_or_default();
    let silent_ms = foramen_core::clock_us().saturating_sub(cap.last_frame_at_us) / 1000;
    if silent_ms as f64 > no_signal_ms {
        rec.push_str(&format!(
            "  NO SIGNAL for {silent_ms} ms: {}",
            cap.last_error
                .clone()
                .unwrap_or_else(|| "no frames arriving".into())
        ));
    }
    format!(
        "{t_s:>6.1} s  frames {}  capture {:.1} fps  masks {}  AI {:?}{}",
        cap.frames, cap.fps, w.masks, w.status, rec
    )
}

/// The pipeline without a window: prints a status line a second and a summary.
fn headless(spec: SessionSpec, args: &WindowArgs) -> Result<()> {
    let no_signal_ms = spec.config.capture.no_signal_ms;
    let session = LiveSession::start(spec, Arc::new(|| ()))?;
    if args.record {
        let dir = session.start_recording()?;
        say!("recording to {}", dir.display());
    }
    let t0 = Instant::now();
    let mut next_print = Duration::from_secs(1);
    loop {
        std::thread::sleep(Duration::from_millis(20));
        let cap = session.capture_stats();
        let w = session.worker();
        if t0.elapsed() >= next_print {
            next_print += Duration::from_secs(1);
            let t_s = t0.elapsed().as_secs_f64();
            say!("{}", status_line(&session, &cap, &w, no_signal_ms, t_s));
        }
        let done = args.exit_after_frames.is_some_and(|n| cap.frames >= n) || cap.ended.is_some();
        if done {
            break;
        }
    }
    summary(&session)
}

/// The end-of-session summary of a headless session; fails when no frame came.
fn summary(session: &LiveSession) -> Result<()> {
    let cap = session.capture_stats();
    let w = session.worker();
    // A model run must not outlive the runtime at process exit (ONNX Runtime reports the
    // torn-down session as an inference failure).
    session.stop_worker(Duration::from_secs(2));
    if let Some(r) = session.finish_recording(Duration::from_secs(60)) {
        say!(
            "recording {}: {} frames, {} masks, {} segments, {} lost{}",
            r.dir.display(),
            r.frames,
            r.masks,
            r.segments,
            r.lost,
            r.error.map(|e| format!(", error: {e}")).unwrap_or_default()
        );
    }
    // How far the newest mask was behind the newest frame when the session ended: with
    // newest-frame-wins inference it stays within about one inference time.
    let behind_ms = match (session.latest_frame(), session.latest_mask()) {
        (Some(f), Some(m)) => {
            Some(f.captured_at_us.saturating_sub(m.source_captured_at_us) as f64 / 1e3)
        }
        _ => None,
    };
    say!(
        "AI: {} masks, {} stale frames skipped{}",
        w.masks,
        w.skipped,
        behind_ms
            .map(|ms| format!(", last mask {ms:.0} ms behind the video"))
            .unwrap_or_default()
    );
    say!(
        "{} frames, {} masks, {} capture errors, AI {:?}",
        cap.frames,
        w.masks,
        cap.errors,
        w.status
    );
    if cap.frames == 0 {
        bail!(
            "no frames from {}{}",
            session.info().name,
            cap.last_error.map(|e| format!(": {e}")).unwrap_or_default()
        );
    }
    Ok(())
}
