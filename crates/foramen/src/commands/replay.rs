//! `foramen replay`: headless annotated replay of a recording through the offline
//! pipeline (`foramen_pipeline::replay`), with a progress bar.

use std::path::{Path, PathBuf};

use anyhow::Result;
use foramen_core::Config;
use foramen_core::paths::{check_distinct, check_output};
use foramen_pipeline::replay::{self, ReplayObserver, ReplayOptions, ReplaySummary, batch};

/// What a pipeline command reads: the input and the model (`replay`, `bench`).
#[derive(clap::Args)]
pub struct Source {
    /// Video file, image folder, or synthetic[:SEED[:WxH[@FPS[:FRAMES]]]].
    pub input: String,
    /// ONNX model (default: the bundled lumbar model).
    #[arg(long)]
    pub model: Option<PathBuf>,
}

/// `foramen replay` options.
#[derive(clap::Args)]
pub struct Args {
    /// Video file, image folder, or synthetic[:SEED[:WxH[@FPS[:FRAMES]]]].
    #[arg(required_unless_present = "inputs")]
    input: Option<String>,
    /// ONNX model (default: the bundled lumbar model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// A list of inputs, one per line: a video and telemetry per input in --out-dir.
    #[arg(long, conflicts_with_all = ["input", "out", "telemetry"], requires = "out_dir")]
    inputs: Option<PathBuf>,
    /// With --inputs: only inputs I, I+N, I+2N, ... (`I/N`, for array jobs).
    #[arg(long, value_parser = foramen_data::dataset::parse_shard, default_value = "0/1")]
    shard: (usize, usize),
    /// With --inputs: the output folder.
    #[arg(long)]
    out_dir: Option<PathBuf>,
    /// Annotated video to write (default: out/<input name>.annotated.mp4).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Per-frame telemetry CSV.
    #[arg(long)]
    telemetry: Option<PathBuf>,
}

/// Runs `foramen replay`.
pub fn exec(a: Args, config: &Config) -> Result<()> {
    let model = a.model.or_else(|| config.model.path.clone());
    foramen_core::paths::protect(&model);
    if let (Some(list), Some(dir)) = (&a.inputs, &a.out_dir) {
        check_output(dir, &[list.as_path()])?;
        let mut bar = Progress::default();
        let s = batch::run_list(list, a.shard, dir, model.as_deref(), config, &mut bar)?;
        say!("{s}");
        anyhow::ensure!(
            s.failed == 0,
            "{} inputs failed: see {}",
            s.failed,
            s.csv.display()
        );
        return Ok(());
    }
    let input = a.input.unwrap_or_default();
    let out = a.out.unwrap_or_else(|| {
        let stem = Path::new(input.trim_end_matches('/'))
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("replay")
            .replace(':', "_");
        PathBuf::from("out").join(format!("{stem}.annotated.mp4"))
    });
    check_output(&out, &[Path::new(&input)])?;
    if let Some(t) = &a.telemetry {
        check_output(t, &[Path::new(&input)])?;
        check_distinct(&out, t)?;
    }
    let summary = run(
        &input,
        model.as_deref(),
        &out,
        a.telemetry.as_deref(),
        config,
        &ReplayOptions::default(),
    )?;
    say!("{summary}");
    Ok(())
}

/// Runs the offline pipeline with a progress bar and the binary's allocation counter.
pub fn run(
    input: &str,
    model: Option<&Path>,
    out: &Path,
    telemetry: Option<&Path>,
    config: &Config,
    opts: &ReplayOptions,
) -> Result<ReplaySummary> {
    let mut progress = Progress::default();
    Ok(replay::run(
        input,
        model,
        out,
        telemetry,
        config,
        opts,
        &mut progress,
    )?)
}

/// A progress bar, and the heap counters of the binary's global allocator.
#[derive(Default)]
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl ReplayObserver for Progress {
    fn started(&mut self, expected_frames: u64) {
        self.bar = Some(crate::progress::bar(expected_frames, "frames"));
    }

    fn frame_written(&mut self) {
        if let Some(b) = &self.bar {
            b.inc(1);
        }
    }

    fn finished(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    fn heap_allocations(&self) -> Option<(u64, u64)> {
        Some(foramen_core::alloc_count::snapshot())
    }
}
