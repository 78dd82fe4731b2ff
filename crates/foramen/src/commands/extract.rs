//! `foramen extract`: from procedure videos to the frames worth labelling.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use foramen_capture::{FrameSource, OpenCvSource};
use foramen_core::Frame;
use foramen_data::extract::{Decision, ExtractOptions, FrameScore, score, select};

use crate::progress::bar;

/// `foramen extract` options.
#[derive(clap::Args)]
pub struct Args {
    /// Video files.
    #[arg(required = true)]
    videos: Vec<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Look at one frame every this many seconds.
    #[arg(long, default_value_t = 1.0, value_parser = super::synth::parse_rate)]
    every: f64,
    /// Keep at most this many frames per video.
    #[arg(long)]
    max: Option<usize>,
}

/// Runs `foramen extract`: scores every `--every`-th second of each video, keeps the
/// frames worth labelling, writes them as `<stem>_<frame>.png` plus `extract.csv` with
/// every sampled frame's scores and decision.
pub fn exec(a: Args) -> Result<()> {
    let out = &a.out;
    let videos: Vec<&Path> = a.videos.iter().map(PathBuf::as_path).collect();
    foramen_core::paths::check_output(out, &videos)?;
    // Frames are named after their video's file name: two videos of one name would
    // write over each other's frames and merge in the split by video.
    let stems: Vec<String> = a
        .videos
        .iter()
        .map(|v| video_stem(v))
        .collect::<Result<_>>()?;
    for (i, s) in stems.iter().enumerate() {
        if let Some(j) = stems[..i].iter().position(|t| t == s) {
            anyhow::bail!(
                "{} and {} would both be named {s}: rename one (frames are named after their video)",
                a.videos[j].display(),
                a.videos[i].display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let csv_path = out.join("extract.csv");
    let mut csv = std::io::BufWriter::new(
        std::fs::File::create(&csv_path)
            .with_context(|| format!("writing {}", csv_path.display()))?,
    );
    writeln!(
        csv,
        "video,frame,pts_ms,sharpness,mean_luma,luma_std,saturated,decision,reason"
    )?;
    let opts = ExtractOptions {
        max: a.max,
        ..ExtractOptions::default()
    };
    let (mut total_kept, mut total_seen) = (0usize, 0usize);
    let videos_bar = bar(a.videos.len() as u64, "videos");
    for (video, stem) in a.videos.iter().zip(&stems) {
        let scores = score_video(video, stem, a.every)?;
        let decisions = select(&scores, &opts);
        let keep: BTreeSet<u64> = scores
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| **d == Decision::Kept)
            .map(|(s, _)| s.index)
            .collect();
        write_kept(video, stem, &keep, out)?;
        for (s, d) in scores.iter().zip(&decisions) {
            writeln!(
                csv,
                "{},{},{:.1},{:.2},{:.1},{:.1},{:.4},{},\"{}\"",
                video.display(),
                s.index,
                s.pts_us as f64 / 1e3,
                s.sharpness,
                s.mean,
                s.std,
                s.saturated,
                d.label(),
                d.reason().replace('"', "'")
            )?;
        }
        total_kept += keep.len();
        total_seen += scores.len();
        let (kept, seen) = (keep.len(), scores.len());
        say!("{}: {kept} of {seen} sampled frames kept", video.display());
        videos_bar.inc(1);
    }
    videos_bar.finish_and_clear();
    csv.flush()?;
    say!(
        "{total_kept} frames kept of {total_seen} sampled, in {}; decisions in {}",
        out.display(),
        csv_path.display()
    );
    Ok(())
}

/// The name a video's frames get: its file stem, with `_`, spaces and commas (which
/// the source-video split and the lists use as separators) made `-`.
fn video_stem(video: &Path) -> Result<String> {
    Ok(video
        .file_stem()
        .and_then(|s| s.to_str())
        .with_context(|| format!("{}: no file name", video.display()))?
        .replace(['_', ' ', ','], "-"))
}

/// Pass 1: scores one frame every `every_s` seconds (a cut file: what was decoded).
fn score_video(video: &Path, stem: &str, every_s: f64) -> Result<Vec<FrameScore>> {
    let mut src =
        OpenCvSource::open_file(video).with_context(|| format!("opening {}", video.display()))?;
    let info = src.info().clone();
    let step = ((every_s * info.fps).round() as u64).max(1);
    let frames_bar = bar(info.frame_count.unwrap_or(0), &format!("frames of {stem}"));
    let mut scores: Vec<FrameScore> = Vec::new();
    loop {
        let frame = match src.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                // A cut file: keep what was decoded, say so.
                tracing::warn!(
                    "{}: {e}; stopping at the last decodable frame",
                    video.display()
                );
                break;
            }
        };
        frames_bar.inc(1);
        if frame.id % step == 0 {
            let (w, h) = (frame.width, frame.height);
            scores.push(score(frame.id, frame.pts_us, &frame.rgb, w, h));
        }
    }
    frames_bar.finish_and_clear();
    Ok(scores)
}

/// Pass 2: writes the kept frames as `<stem>_<frame>.png`.
fn write_kept(video: &Path, stem: &str, keep: &BTreeSet<u64>, out: &Path) -> Result<()> {
    let Some(&last) = keep.last() else {
        return Ok(());
    };
    let mut src =
        OpenCvSource::open_file(video).with_context(|| format!("opening {}", video.display()))?;
    while let Ok(Some(frame)) = src.next_frame() {
        if keep.contains(&frame.id) {
            write_png(&out.join(format!("{stem}_{:06}.png", frame.id)), &frame)?;
        }
        if frame.id >= last {
            break;
        }
    }
    Ok(())
}

/// PNG without any metadata (no text chunks, no time stamps): nothing that could
/// identify a patient leaves with the pixels.
fn write_png(path: &Path, frame: &Frame) -> Result<()> {
    image::save_buffer(
        path,
        &frame.rgb,
        frame.width,
        frame.height,
        image::ExtendedColorType::Rgb8,
    )
    .with_context(|| format!("writing {}", path.display()))
}
