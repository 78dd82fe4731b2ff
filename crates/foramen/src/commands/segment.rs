//! `foramen segment`: class-index PNGs (and optional probabilities) for images.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use foramen_core::config::ModelConfig;
use foramen_core::{Config, Frame, LatencyStats};
use foramen_data::dataset::save_gray;
use foramen_segment::Segmenter;

use crate::progress::bar;

/// `foramen segment` options.
#[derive(clap::Args)]
pub struct Args {
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
}

/// Runs `foramen segment`.
pub fn exec(a: Args, config: &Config) -> Result<()> {
    let model = a.model.or_else(|| config.model.path.clone());
    foramen_core::paths::protect(&model);
    run(&a.input, model.as_deref(), &a.out, a.probs, &config.model)
}

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

/// One image file through the model, at the image's own size.
pub struct SegmentedImage {
    /// Class per pixel: the argmax of `probs`, so a saved PNG and `.npy` always agree.
    pub classes: Vec<u8>,
    /// Probabilities, (C, height, width).
    pub probs: Vec<f32>,
    /// The image's size.
    pub size: (u32, u32),
    /// The model call's time.
    pub infer_ms: f64,
}

/// Reads and segments one image file (`id` is the frame id it gets).
pub fn segment_file(seg: &mut Segmenter, path: &Path, id: u64) -> Result<SegmentedImage> {
    // The declared size first: a small file must not decode to gigabytes.
    let (w, h) =
        image::image_dimensions(path).with_context(|| format!("reading {}", path.display()))?;
    foramen_core::limits::check_pixels(&path.display().to_string(), w, h)?;
    let img = image::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .into_rgb8();
    let (w, h) = img.dimensions();
    let frame = Frame::new(id, 0, w, h, img.into_raw()).context("image buffer")?;
    let res = seg
        .segment(&frame)
        .with_context(|| format!("segmenting {}", path.display()))?;
    let (classes, probs) = seg.last_classes(w, h);
    Ok(SegmentedImage {
        classes,
        probs,
        size: (w, h),
        infer_ms: res.timings.infer_ms as f64,
    })
}

/// Segments every image of `input` into `out`.
fn run(
    input: &Path,
    model: Option<&Path>,
    out: &Path,
    probs: bool,
    cfg: &ModelConfig,
) -> Result<()> {
    let files = list_images(input)?;
    foramen_core::paths::check_output(out, &[input])?;
    let mut seg = foramen_pipeline::model::load(model, cfg)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let c = seg.classes().len();
    let mut infer = LatencyStats::default();
    let t = Instant::now();
    let pb = bar(files.len() as u64, "images");
    for (i, path) in files.iter().enumerate() {
        let SegmentedImage {
            classes,
            probs: p,
            size: (w, h),
            infer_ms,
        } = segment_file(&mut seg, path, i as u64)?;
        infer.push(infer_ms);
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
