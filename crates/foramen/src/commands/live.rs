//! `foramen live` and `foramen view`: start the session, then either the window
//! (`foramen-app`) or, with `--headless`, a console loop that reports the same counters.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use foramen_app::{AppOptions, WindowSettings, run_window};
use foramen_core::Config;
use foramen_pipeline::live::headless::{HeadlessOptions, run_headless};
use foramen_pipeline::live::{Mode, SessionSpec};

use super::synth::{parse_rate, parse_size};

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
    #[arg(long, value_parser = parse_rate)]
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

/// The one rule for outputs: the telemetry and the screenshots are not the source, the
/// model or the settings file, and recordings do not go into the source. A recording
/// folder that holds the source is fine (`view recordings/X` records a new session
/// beside `X`): each session is a new folder.
fn check_outputs(input: &str, args: &WindowArgs, config: &Config) -> Result<()> {
    use foramen_core::paths::check_output;
    let source = [Path::new(input)];
    let mut files: Vec<PathBuf> = args.telemetry.iter().cloned().collect();
    for v in [&args.snapshot_after_frames, &args.snapshot_after_seconds]
        .into_iter()
        .flatten()
    {
        files.extend(v.get(1).map(PathBuf::from));
    }
    for f in &files {
        check_output(f, &source)?;
    }
    match check_output(&config.recording.dir, &source) {
        Err(e) if e.relation != "contains" => Err(e.into()),
        _ => Ok(()),
    }
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
    foramen_core::paths::protect([&model]);
    check_outputs(&input, &args, &config)?;
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
        record: args.record,
    };
    if args.headless {
        // Ctrl-C and SIGTERM (a service manager, `kill`) end the session like its end:
        // the open segment is closed and the summary printed.
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
            tracing::warn!("Ctrl-C will not stop the session cleanly: {e}");
        }
        let opts = HeadlessOptions {
            exit_after_frames: args.exit_after_frames,
        };
        return Ok(run_headless(spec, opts, &stop, &mut std::io::stdout())?);
    }
    let opts = AppOptions {
        config_path,
        snapshot_after,
        snapshot_after_s,
        exit_after_frames: args.exit_after_frames,
        telemetry: args.telemetry.clone(),
        snapshot_dir: config.recording.dir.join("snapshots"),
        keymap: foramen_app::keys::Keymap::from_config(&config.keys)?,
    };
    let settings = WindowSettings {
        size: args.window_size.unwrap_or((1280, 720)),
    };
    Ok(run_window(spec, config, opts, settings)?)
}
