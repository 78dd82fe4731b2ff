//! Foramen: real-time AI guidance for lumbar endoscopic spine surgery.
//!
//! The command line only: parses and dispatches to `commands/`, one file per subcommand.
//! The pipelines are in `foramen-pipeline`, the window in `foramen-app`.

/// Prints a line on stdout; a closed pipe (`foramen ... | head`) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod commands;
mod progress;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use commands::{
    bench, check, clip, compare, eval, extract, labelstudio, live, recording, replay, report,
    segment, synth,
};

#[global_allocator]
static ALLOCATOR: foramen_core::alloc_count::Counting = foramen_core::alloc_count::Counting;

/// Real-time segmentation of bone, ligament and disc in spine endoscopy video.
#[derive(Parser)]
#[command(name = "foramen", version, about)]
struct Cli {
    /// Settings file (TOML): model, inference limits, overlay.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render synthetic lumbar endoscopy: a data set (--out) or a clip (--video).
    Synth(synth::Args),
    /// Segment an image or a folder of images into class-index PNGs.
    Segment(segment::Args),
    /// Precision, recall, accuracy, IoU, Dice, confusion matrix and ROC AUC over a list.
    Eval(eval::Args),
    /// The reader study: readers' masks (surgeons or a model) against a reference.
    Compare(compare::Args),
    /// Annotate a recording (video file, image folder or `synthetic:...`) headlessly.
    Replay(replay::Args),
    /// Time the real offline pipeline (decode, preprocess, model, postprocess,
    /// composite, encode) stage by stage, against the model alone.
    Bench(bench::Args),
    /// The operating-room window on a capture card (V4L2/UVC) or any source, live.
    Live(live::LiveArgs),
    /// Pick frames worth labelling from procedure videos: sharp, not blank, not
    /// near-duplicates, spread over each video (PNGs plus extract.csv with every decision).
    Extract(extract::Args),
    /// Write tasks for a labelling tool.
    Export {
        #[command(subcommand)]
        target: labelstudio::ExportTarget,
    },
    /// Read labels from a labelling tool into a Foramen data set.
    Import {
        #[command(subcommand)]
        source: labelstudio::ImportSource,
    },
    /// Readiness before a case: model, inference time, capture, recording room.
    Check(check::Args),
    /// Check a recording folder (after a crash too): segments, frames, masks.
    Recording(recording::Args),
    /// A recording's timeline, one row per second (classes, AI state, losses), its
    /// figure and report.html.
    Report(report::Args),
    /// A span of a recording as a video: recorded masks drawn as in the window, a caption.
    Clip(clip::Args),
    /// Review a recording or an image folder in the window, paced like live, with
    /// pause (P), step (arrows) and seek.
    View(live::ViewArgs),
}

fn main() -> std::process::ExitCode {
    // ONNX Runtime's telemetry keeps a device id and an event database under
    // ~/.cache/Microsoft/DeveloperTools as soon as its environment is created; on a
    // clinical machine nothing may be written outside what the user named. Only this
    // variable stops it before the environment exists (`with_telemetry(false)` acts after).
    // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("ORT_DISABLE_TELEMETRY", "1");
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FORAMEN_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    let windowed = matches!(cli.command, Command::Live(_) | Command::View(_));
    let config = match &cli.config {
        // The window saves its settings there: a new file starts from the defaults.
        Some(p) if windowed && !p.exists() => foramen_core::Config::default(),
        Some(p) => foramen_core::Config::load(p)?,
        None => foramen_core::Config::default(),
    };
    // The settings file and the model are inputs of every command: no output may be one.
    let model = foramen_pipeline::model::resolve(config.model.path.as_deref()).ok();
    foramen_core::paths::protect(cli.config.iter().chain(model.iter()));
    match cli.command {
        Command::Synth(a) => synth::exec(a),
        Command::Segment(a) => segment::exec(a, &config),
        Command::Eval(a) => eval::exec(a, &config),
        Command::Compare(a) => compare::exec(a),
        Command::Replay(a) => replay::exec(a, &config),
        Command::Bench(a) => bench::exec(a, &config),
        Command::Live(a) => live::exec_live(a, config, cli.config),
        Command::Extract(a) => extract::exec(a),
        Command::Export { target } => labelstudio::exec_export(target, &config),
        Command::Import { source } => labelstudio::exec_import(source),
        Command::Check(a) => check::exec(a, config),
        Command::Recording(a) => recording::exec(a),
        Command::Report(a) => report::exec(a, &config),
        Command::Clip(a) => clip::exec(a, &config),
        Command::View(a) => live::exec_view(a, config, cli.config),
    }
}
