//! `foramen segment`: class-index PNGs (and optional probabilities) for images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use foramen_core::config::ModelConfig;
use foramen_core::{Frame, LatencyStats};
use foramen_data::dataset::save_gray;

use crate::progress::bar;

/// The images named by `input`: the file itself, or a folder's images in name order.
pub fn list_images(input: &Path) -> Result<Vec<PathBuf>> {
    if input.is_file() {
        return Ok(vec![input.to_path_buf()]);
    }
    if !input.is_dir() {
        bail!("{}: no such file or folder", input.display());
    }
    let files = foramen_data::dataset::list_images(input)?;
    if files.is_empty() {
        bail!("{}: no images (png, jpg, bmp, tif)", input.display());
    }
    Ok(files)
}

/// Segments every image of `input` into `out`.
pub fn run(
    input: &Path,
    model: Option<&Path>,
    out: &Path,
    probs: bool,
    cfg: &ModelConfig,
) -> Result<()> {
    let files = list_images(input)?;
    let mut seg = crate::model::load(model, cfg)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let c = seg.classes().len();
    let mut infer = LatencyStats::default();
    let t = Instant::now();
    let pb = bar(files.len() as u64, "images");
    for (i, path) in files.iter().enumerate() {
        let img = image::open(path)
            .with_context(|| format!("reading {}", path.display()))?
            .into_rgb8();
        let (w, h) = img.dimensions();
        let frame = Frame::new(i as u64, 0, w, h, img.into_raw()).context("image buffer")?;
        let res = seg
            .segment(&frame)
            .with_context(|| format!("segmenting {}", path.display()))?;
        infer.push(res.timings.infer_ms as f64);
        // The class map at the image's own size is the argmax of the resized
        // probabilities, so the PNG and the .npy always agree.
        let p = seg.last_probabilities(w, h);
        let n = (w * h) as usize;
        let mut classes = vec![0u8; n];
        let mut conf = vec![0u8; n];
        foramen_segment::prepost::argmax_confidence(&p, c, false, &mut classes, &mut conf);
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("image file name")?;
        save_gray(&out.join(format!("{stem}.png")), w, h, classes)?;
        if probs {
            foramen_data::npy::write_f32(
                &out.join(format!("{stem}.npy")),
                &[c, h as usize, w as usize],
                &p,
            )?;
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    say!(
        "segmented {} image(s) with {} into {} in {:.1} s (inference mean {:.1} ms, p99 {:.1} ms)",
        files.len(),
        seg.path().display(),
        out.display(),
        t.elapsed().as_secs_f64(),
        infer.mean(),
        infer.percentile(99.0)
    );
    Ok(())
}
