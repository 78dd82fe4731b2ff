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
pub fn dataset(out: &Path, count: usize, seed: u64, size: (u32, u32)) -> Result<()> {
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
pub fn video(
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
