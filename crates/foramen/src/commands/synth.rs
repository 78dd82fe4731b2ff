//! `foramen synth`: synthetic lumbar endoscopy data sets and clips.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use crossbeam_channel::bounded;
use foramen_capture::VideoEncoder;
use foramen_data::dataset::save_gray;
use foramen_data::synth::{SceneSpec, Trajectory, render};
use foramen_data::{SynthDatasetOptions, write_synth_dataset};

use crate::progress::bar;

/// `foramen synth` options.
#[derive(clap::Args)]
pub struct Args {
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
    #[arg(long, default_value_t = 30.0, value_parser = parse_rate)]
    fps: f64,
    /// Folder for the clip's per-frame masks (`000000.png`, ...).
    #[arg(long, requires = "video")]
    masks: Option<PathBuf>,
    /// First scene seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Picture size WxH (default 640x360 for data sets, 1920x1080 for clips).
    #[arg(long, value_parser = parse_size)]
    size: Option<(u32, u32)>,
}

/// Runs `foramen synth`.
pub fn exec(a: Args) -> Result<()> {
    match (a.out, a.video) {
        (Some(out), _) => dataset(&out, a.count, a.seed, a.size.unwrap_or((640, 360))),
        (None, Some(video)) => {
            let size = a.size.unwrap_or((1920, 1080));
            self::video(&video, a.frames, a.fps, size, a.masks, a.seed)
        }
        (None, None) => bail!("give --out DIR (data set) or --video FILE (clip)"),
    }
}

/// Parses a rate or interval that must be a positive, finite number (at most 1000):
/// 0, negative, `inf` and `NaN` are errors, not a hang or a division by zero.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1000.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number up to 1000")),
    }
}

/// Parses `WxH`.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let (w, h) = s
        .split_once('x')
        .ok_or_else(|| format!("size {s:?} is not WxH"))?;
    let w: u32 = w.parse().map_err(|_| format!("bad width in {s:?}"))?;
    let h: u32 = h.parse().map_err(|_| format!("bad height in {s:?}"))?;
    if !(16..=8192).contains(&w) || !(16..=8192).contains(&h) {
        return Err(format!("size {s:?} out of range (16..8192)"));
    }
    Ok((w, h))
}

/// Writes a data set of `count` stills.
fn dataset(out: &Path, count: usize, seed: u64, size: (u32, u32)) -> Result<()> {
    if count == 0 {
        bail!("--count must be at least 1");
    }
    let t = Instant::now();
    let pb = bar(count as u64, "scenes");
    let opts = SynthDatasetOptions {
        count,
        seed,
        width: size.0,
        height: size.1,
        split: (0.8, 0.1),
    };
    let counts = write_synth_dataset(out, &opts, &|| pb.inc(1))
        .with_context(|| format!("writing data set to {}", out.display()))?;
    pb.finish_and_clear();
    say!(
        "wrote {count} scenes ({}x{}) to {} in {:.1} s: train {}, val {}, test {}",
        size.0,
        size.1,
        out.display(),
        t.elapsed().as_secs_f64(),
        counts.train,
        counts.val,
        counts.test
    );
    Ok(())
}

/// Writes a clip with smooth scope motion and, optionally, every frame's mask.
fn video(
    out: &Path,
    frames: u64,
    fps: f64,
    size: (u32, u32),
    masks: Option<PathBuf>,
    seed: u64,
) -> Result<()> {
    if frames == 0 || fps.is_nan() || fps <= 0.0 {
        bail!("--frames and --fps must be positive");
    }
    let t = Instant::now();
    let mut encoder =
        VideoEncoder::create(out, size.0, size.1, fps).context("creating the clip")?;
    if let Some(dir) = &masks {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let traj = Trajectory::new(SceneSpec::from_seed(seed));
    let pb = bar(frames, "frames");
    // Rendering (all cores) and encoding overlap; the channel never drops: every frame
    // of the clip must be written.
    let (tx, rx) = bounded::<(u64, Vec<u8>, Vec<u8>)>(3);
    let codec = encoder.codec();
    let writer = std::thread::Builder::new().name("encode".into()).spawn(
        move || -> Result<VideoEncoder> {
            for (i, rgb, mask) in rx {
                encoder.write_rgb(&rgb)?;
                if let Some(dir) = &masks {
                    let path = dir.join(format!("{i:06}.png"));
                    save_gray(&path, size.0, size.1, mask)?;
                }
            }
            Ok(encoder)
        },
    )?;
    let dt = 1.0 / fps;
    for i in 0..frames {
        let state = traj.state_at((i as f64 * dt) as f32, dt as f32, size.1);
        let r = render(traj.spec(), &state, size.0, size.1);
        if tx.send((i, r.rgb, r.mask)).is_err() {
            break; // The writer failed; its error is reported below.
        }
        pb.inc(1);
    }
    drop(tx);
    let encoder = writer
        .join()
        .map_err(|_| anyhow::anyhow!("encoder thread panicked"))??;
    encoder.finish()?;
    pb.finish_and_clear();
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    say!(
        "wrote {frames} frames {}x{} @ {fps} fps ({codec}, {:.1} MB) to {} in {:.1} s",
        size.0,
        size.1,
        bytes as f64 / 1e6,
        out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}
