//! Foramen: real-time AI guidance for lumbar endoscopic spine surgery.

/// Prints a line on stdout; a closed pipe (`foramen ... | head`) is not an error.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod alloc_count;
mod app;
mod bench;
mod compare;
mod eval_cmd;
mod labelstudio_cmd;
mod live;
mod model;
mod progress;
mod replay;
mod segment_cmd;
mod synth;
mod window;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[global_allocator]
static ALLOCATOR: alloc_count::Counting = alloc_count::Counting;

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
    Synth {
        /// Data set folder to write (dataset.toml, images/, masks/, train/val/test lists).
        #[arg(long, conflicts_with = "video", required_unless_present = "video")]
        out: Option<PathBuf>,
        /// Number of scenes in the data set.
        #[arg(long, default_value_t = 100)]
        count: usize,
        /// Clip to write (.mp4).
        #[arg(long)]
        video: Option<PathBuf>,
        /// Frames in the clip.
        #[arg(long, default_value_t = 300)]
        frames: u64,
        /// Clip frame rate.
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
        /// Folder for the clip's per-frame masks (`000000.png`, ...).
        #[arg(long, requires = "video")]
        masks: Option<PathBuf>,
        /// First scene seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Picture size WxH (default 640x360 for data sets, 1920x1080 for clips).
        #[arg(long, value_parser = synth::parse_size)]
        size: Option<(u32, u32)>,
    },
    /// Segment an image or a folder of images into class-index PNGs.
    Segment {
        /// An image file or a folder of images.
        input: PathBuf,
        /// ONNX model (default: the bundled lumbar model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Output folder: `<stem>.png` class indices (and `<stem>.npy` with --probs).
        #[arg(long)]
        out: PathBuf,
        /// Also write float32 softmax probabilities, shape (C, H, W), at the image's size.
        #[arg(long)]
        probs: bool,
    },
    /// Precision, recall, accuracy, IoU, Dice, confusion matrix and ROC AUC over a list.
    Eval {
        /// Data set root (the list's paths are relative to it).
        #[arg(long)]
        data: PathBuf,
        /// List file of `image mask` lines (relative to --data unless absolute).
        #[arg(long)]
        list: PathBuf,
        /// Run this ONNX model (default: the bundled one, unless --pred is given).
        #[arg(long, conflicts_with = "pred")]
        model: Option<PathBuf>,
        /// Saved class-index PNGs named like the masks.
        #[arg(long)]
        pred: Option<PathBuf>,
        /// Saved float32 probabilities `<stem>.npy`, shape (C, H, W), for ROC AUC.
        #[arg(long, requires = "pred")]
        prob: Option<PathBuf>,
        /// Output folder for metrics.json and report.md.
        #[arg(long)]
        out: PathBuf,
        /// Class names in index order (else dataset.toml, else the model's).
        #[arg(long, value_delimiter = ',')]
        classes: Option<Vec<String>>,
        /// Leave these classes' truth pixels out of every metric, e.g. `void` (default:
        /// those named by dataset.toml's and the model's `ignore_classes`).
        #[arg(long, value_delimiter = ',', conflicts_with = "no_ignore")]
        ignore_classes: Option<Vec<String>>,
        /// Score every class, even those dataset.toml or the model ignore.
        #[arg(long)]
        no_ignore: bool,
    },
    /// The reader study: readers' masks (surgeons or a model) against a reference.
    Compare {
        /// Folder of reference class-index PNGs.
        #[arg(long)]
        reference: PathBuf,
        /// A reader as NAME=DIR (DIR holds PNGs named like the reference's); repeat.
        #[arg(long = "reader", value_parser = parse_reader, required = true)]
        readers: Vec<(String, PathBuf)>,
        /// Output folder for compare.json and report.md.
        #[arg(long)]
        out: PathBuf,
    },
    /// Annotate a recording (video file, image folder or `synthetic:...`) headlessly.
    Replay {
        /// Video file, image folder, or synthetic[:SEED[:WxH[@FPS[:FRAMES]]]].
        input: String,
        /// ONNX model (default: the bundled lumbar model).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Annotated video to write (default: out/<input name>.annotated.mp4).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Per-frame telemetry CSV.
        #[arg(long)]
        telemetry: Option<PathBuf>,
    },
    /// Time the real offline pipeline (decode, preprocess, model, postprocess,
    /// composite, encode) stage by stage, against the model alone.
    Bench {
        /// Video file, image folder, or synthetic[:SEED[:WxH[@FPS[:FRAMES]]]].
        input: String,
        /// ONNX model (default: the bundled lumbar model).
        #[arg(long)]
        model: Option<PathBuf>,
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
    },
    /// The operating-room window on a capture card (V4L2/UVC) or any source, live.
    Live {
        /// Capture device, or any source (`synthetic:SEED:WxH@FPS`, file, folder)
        /// played through the live path (default: `[capture].device`).
        #[arg(long)]
        device: Option<String>,
        #[command(flatten)]
        window: WindowArgs,
    },
    /// Pick frames worth labelling from procedure videos: sharp, not blank, not
    /// near-duplicates, spread over each video (PNGs plus extract.csv with every decision).
    Extract {
        /// Video files.
        #[arg(required = true)]
        videos: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Look at one frame every this many seconds.
        #[arg(long, default_value_t = 1.0)]
        every: f64,
        /// Keep at most this many frames per video.
        #[arg(long)]
        max: Option<usize>,
    },
    /// Write tasks for a labelling tool.
    Export {
        #[command(subcommand)]
        target: ExportTarget,
    },
    /// Read labels from a labelling tool into a Foramen data set.
    Import {
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Check a recording folder (after a crash too): segments, frames, masks.
    Recording {
        /// The recording folder (with session.toml).
        dir: PathBuf,
    },
    /// Review a recording or an image folder in the window, paced like live, with
    /// pause (P), step (arrows) and seek.
    View {
        /// Video file or image folder.
        input: String,
        /// Replay at this frame rate instead of the file's own.
        #[arg(long)]
        fps: Option<f64>,
        #[command(flatten)]
        window: WindowArgs,
    },
}

/// `foramen export ...`
#[derive(Subcommand)]
enum ExportTarget {
    /// Label Studio tasks (JSON) with optional pre-annotations, and the labelling config (XML).
    LabelStudio {
        /// Folder of images to label.
        #[arg(long)]
        images: PathBuf,
        /// Tasks file to write.
        #[arg(long)]
        out: PathBuf,
        /// Pre-annotate with this model's masks (brush labels).
        #[arg(long, conflicts_with = "masks")]
        model: Option<PathBuf>,
        /// Pre-annotate with existing class masks (`<stem>.png` per image).
        #[arg(long)]
        masks: Option<PathBuf>,
        /// URL prefix under which Label Studio serves the images.
        #[arg(long, default_value = "/data/local-files/?d=images")]
        image_root: String,
        /// Where to write the labelling config (default: OUT with .xml).
        #[arg(long)]
        config_xml: Option<PathBuf>,
    },
}

/// `foramen import ...`
#[derive(Subcommand)]
enum ImportSource {
    /// A Label Studio JSON export (brush and polygon labels).
    LabelStudio {
        /// The export file.
        export: PathBuf,
        /// Folder holding the labelled images (matched by file name).
        #[arg(long)]
        images: PathBuf,
        /// Data set folder to write.
        #[arg(long)]
        out: PathBuf,
        /// Class names for indices 1, 2, ... (default: labels in order of first appearance).
        #[arg(long)]
        classes: Option<String>,
        /// Train/val/test ratios, by source video.
        #[arg(long, default_value = "80,10,10", value_parser = labelstudio_cmd::parse_split)]
        split: [f64; 3],
        /// Seed of the split.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Import the good tasks even when some are skipped.
        #[arg(long)]
        allow_partial: bool,
    },
}

/// Options shared by `live` and `view`.
#[derive(clap::Args, Clone, Debug)]
struct WindowArgs {
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
    #[arg(long, value_parser = synth::parse_size)]
    window_size: Option<(u32, u32)>,
}

fn parse_reader(s: &str) -> Result<(String, PathBuf), String> {
    let (name, dir) = s
        .split_once('=')
        .ok_or_else(|| format!("reader {s:?} is not NAME=DIR"))?;
    if name.is_empty() || dir.is_empty() {
        return Err(format!("reader {s:?} is not NAME=DIR"));
    }
    Ok((name.to_string(), PathBuf::from(dir)))
}

fn main() -> std::process::ExitCode {
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
    let windowed = matches!(cli.command, Command::Live { .. } | Command::View { .. });
    let config = match &cli.config {
        // The window saves its settings there: a new file starts from the defaults.
        Some(p) if windowed && !p.exists() => foramen_core::Config::default(),
        Some(p) => foramen_core::Config::load(p)?,
        None => foramen_core::Config::default(),
    };
    match cli.command {
        Command::Synth {
            out,
            count,
            video,
            frames,
            fps,
            masks,
            seed,
            size,
        } => match (out, video) {
            (Some(out), _) => synth::dataset(&out, count, seed, size.unwrap_or((640, 360))),
            (None, Some(video)) => synth::video(
                &video,
                frames,
                fps,
                size.unwrap_or((1920, 1080)),
                masks,
                seed,
            ),
            (None, None) => anyhow::bail!("give --out DIR (data set) or --video FILE (clip)"),
        },
        Command::Segment {
            input,
            model,
            out,
            probs,
        } => {
            let model = model.or_else(|| config.model.path.clone());
            segment_cmd::run(&input, model.as_deref(), &out, probs, &config.model)
        }
        Command::Eval {
            data,
            list,
            model,
            pred,
            prob,
            out,
            classes,
            ignore_classes,
            no_ignore,
        } => {
            let predictions = match pred {
                Some(pred) => eval_cmd::Predictions::Saved { pred, prob },
                None => eval_cmd::Predictions::Model(model.or_else(|| config.model.path.clone())),
            };
            let opts = eval_cmd::EvalOptions {
                data,
                list,
                predictions,
                out,
                classes,
                ignore_classes: if no_ignore {
                    Some(Vec::new())
                } else {
                    ignore_classes
                },
            };
            eval_cmd::run(&opts, &config.model)
        }
        Command::Compare {
            reference,
            readers,
            out,
        } => compare::run(&reference, &readers, &out),
        Command::Replay {
            input,
            model,
            out,
            telemetry,
        } => {
            let out = out.unwrap_or_else(|| {
                let stem = std::path::Path::new(input.trim_end_matches('/'))
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("replay")
                    .replace(':', "_");
                PathBuf::from("out").join(format!("{stem}.annotated.mp4"))
            });
            let model = model.or_else(|| config.model.path.clone());
            let summary = replay::run(
                &input,
                model.as_deref(),
                &out,
                telemetry.as_deref(),
                &config,
                &replay::ReplayOptions::default(),
            )?;
            summary.print();
            Ok(())
        }
        Command::Bench {
            input,
            model,
            frames,
            out,
            json,
            realtime,
            codec,
        } => {
            let model = model.or_else(|| config.model.path.clone());
            let out = out.unwrap_or_else(bench::default_out);
            let args = bench::BenchArgs {
                input: &input,
                model: model.as_deref(),
                frames,
                out: &out,
                json: json.as_deref(),
                codec: codec.map(|c| {
                    if c == "mpeg4" {
                        foramen_capture::Codec::Mpeg4
                    } else {
                        foramen_capture::Codec::H264
                    }
                }),
            };
            if realtime {
                bench::run_realtime(&args, &config)
            } else {
                bench::run(&args, &config)
            }
        }
        Command::Live { device, window } => {
            let input = device.unwrap_or_else(|| config.capture.device.clone());
            window::run(input, live::Mode::Live, None, window, config, cli.config)
        }
        Command::Recording { dir } => live::recorder::check(&dir),
        Command::Extract {
            videos,
            out,
            every,
            max,
        } => labelstudio_cmd::extract(&videos, &out, every, max),
        Command::Export {
            target:
                ExportTarget::LabelStudio {
                    images,
                    out,
                    model,
                    masks,
                    image_root,
                    config_xml,
                },
        } => labelstudio_cmd::export(
            &images,
            &out,
            model.as_deref(),
            masks.as_deref(),
            &image_root,
            config_xml.as_deref(),
            &config,
        ),
        Command::Import {
            source:
                ImportSource::LabelStudio {
                    export,
                    images,
                    out,
                    classes,
                    split,
                    seed,
                    allow_partial,
                },
        } => labelstudio_cmd::import(
            &export,
            &images,
            &out,
            classes.as_deref(),
            split,
            seed,
            allow_partial,
        ),
        Command::View { input, fps, window } => {
            window::run(input, live::Mode::Review, fps, window, config, cli.config)
        }
    }
}
