//! `foramen extract`, `foramen export label-studio` and `foramen import label-studio`:
//! from procedure videos to a labelled, training-ready data set.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foramen_capture::{FrameSource, OpenCvSource};
use foramen_core::{ClassSet, Frame};
use foramen_data::dataset::{DatasetInfo, list_images, load_mask, save_gray};
use foramen_data::extract::{Decision, ExtractOptions, FrameScore, score, select};
use foramen_data::labelstudio::{
    LabelMap, import_export, labeling_config_xml, split_by_video, task_json,
};

use crate::progress::bar;

/// `foramen extract`: scores every `every_s`-th second of each video, keeps the frames
/// worth labelling, writes them as `<stem>_<frame>.png` plus `extract.csv` with every
/// sampled frame's scores and decision.
pub fn extract(videos: &[PathBuf], out: &Path, every_s: f64, max: Option<usize>) -> Result<()> {
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
        max,
        ..ExtractOptions::default()
    };
    let (mut total_kept, mut total_seen) = (0usize, 0usize);
    let videos_bar = bar(videos.len() as u64, "videos");
    for video in videos {
        let stem = video
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{}: no file name", video.display()))?
            .replace(['_', ' ', ','], "-");
        // Pass 1: score the sampled frames.
        let mut src = OpenCvSource::open_file(video)
            .with_context(|| format!("opening {}", video.display()))?;
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
                scores.push(score(
                    frame.id,
                    frame.pts_us,
                    &frame.rgb,
                    frame.width,
                    frame.height,
                ));
            }
        }
        frames_bar.finish_and_clear();
        let decisions = select(&scores, &opts);
        // Pass 2: write the kept frames.
        let keep: BTreeMap<u64, ()> = scores
            .iter()
            .zip(&decisions)
            .filter(|(_, d)| **d == Decision::Kept)
            .map(|(s, _)| (s.index, ()))
            .collect();
        if !keep.is_empty() {
            let mut src = OpenCvSource::open_file(video)?;
            let last = *keep.keys().last().unwrap_or(&0);
            while let Ok(Some(frame)) = src.next_frame() {
                if keep.contains_key(&frame.id) {
                    write_png(&out.join(format!("{stem}_{:06}.png", frame.id)), &frame)?;
                }
                if frame.id >= last {
                    break;
                }
            }
        }
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
        say!(
            "{}: {} of {} sampled frames kept",
            video.display(),
            keep.len(),
            scores.len()
        );
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

/// `foramen export label-studio`: one task per image, with pre-annotations from a
/// model (`--model`) or from existing class masks (`--masks`), and the labelling config.
pub fn export(
    images: &Path,
    out: &Path,
    model: Option<&Path>,
    masks: Option<&Path>,
    image_root: &str,
    config_xml: Option<&Path>,
    cfg: &foramen_core::Config,
) -> Result<()> {
    let files = list_images(images).with_context(|| format!("listing {}", images.display()))?;
    if files.is_empty() {
        bail!("{}: no images", images.display());
    }
    let mut seg = model
        .map(|m| crate::model::load(Some(m), &cfg.model))
        .transpose()?;
    let classes = match (&seg, masks) {
        (Some(s), _) => s.classes().clone(),
        (None, Some(dir)) => DatasetInfo::read(dir.parent().unwrap_or(dir))?
            .map(|i| i.class_set())
            .transpose()?
            .unwrap_or_else(ClassSet::lumbar),
        (None, None) => ClassSet::lumbar(),
    };
    let model_name = model
        .and_then(|m| m.file_name())
        .map_or_else(|| "masks".to_string(), |n| n.to_string_lossy().into_owned());
    let root = image_root.trim_end_matches('/');
    let pb = bar(files.len() as u64, "images");
    let mut tasks = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let url = if root.is_empty() {
            name.clone()
        } else {
            format!("{root}/{name}")
        };
        let pred: Option<(Vec<u8>, u32, u32)> = if let Some(seg) = seg.as_mut() {
            let img = image::open(path)
                .with_context(|| format!("reading {}", path.display()))?
                .into_rgb8();
            let (w, h) = img.dimensions();
            let frame = Frame::new(i as u64, 0, w, h, img.into_raw()).context("frame")?;
            seg.segment(&frame)
                .with_context(|| format!("segmenting {}", path.display()))?;
            // At the image's own size, as `foramen segment` writes it: the argmax of the
            // resized probabilities.
            let p = seg.last_probabilities(w, h);
            let n = (w * h) as usize;
            let (mut full, mut conf) = (vec![0u8; n], vec![0u8; n]);
            foramen_segment::prepost::argmax_confidence(
                &p,
                seg.classes().len(),
                false,
                &mut full,
                &mut conf,
            );
            Some((full, w, h))
        } else if let Some(dir) = masks {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mpath = dir.join(format!("{stem}.png"));
            let m = load_mask(&mpath)?;
            let (w, h) = m.dimensions();
            let (iw, ih) = image::image_dimensions(path)
                .with_context(|| format!("reading {}", path.display()))?;
            if (w, h) != (iw, ih) {
                bail!(
                    "{}: mask is {w}x{h}, image {} is {iw}x{ih}",
                    mpath.display(),
                    path.display()
                );
            }
            Some((m.into_raw(), w, h))
        } else {
            None
        };
        tasks.push(task_json(
            &url,
            pred.as_ref()
                .map(|(m, w, h)| (m.as_slice(), *w, *h, &classes, model_name.as_str())),
        ));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let json = serde_json::to_string(&tasks)?;
    std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    let xml_path = config_xml
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out.with_extension("xml"));
    std::fs::write(&xml_path, labeling_config_xml(&classes))
        .with_context(|| format!("writing {}", xml_path.display()))?;
    say!(
        "{} tasks in {}{}; labelling config (paste into the project) in {}",
        tasks.len(),
        out.display(),
        if seg.is_some() || masks.is_some() {
            " with pre-annotations"
        } else {
            ""
        },
        xml_path.display()
    );
    Ok(())
}

/// `foramen import label-studio`: a JSON export to a Foramen data set, split by video.
pub fn import(
    export_json: &Path,
    images: &Path,
    out: &Path,
    classes: Option<&str>,
    split: [f64; 3],
    seed: u64,
    allow_partial: bool,
) -> Result<()> {
    let text = std::fs::read_to_string(export_json)
        .with_context(|| format!("reading {}", export_json.display()))?;
    let mut labels = match classes {
        Some(list) => LabelMap::Fixed(
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        ),
        None => LabelMap::FirstSeen(Vec::new()),
    };
    let files: BTreeMap<String, PathBuf> = list_images(images)
        .with_context(|| format!("listing {}", images.display()))?
        .into_iter()
        .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p)))
        .collect();
    let mut size = |name: &str| {
        files
            .get(name)
            .and_then(|p| image::image_dimensions(p).ok())
    };
    let (tasks, issues) = import_export(&text, &mut labels, &mut size)
        .map_err(|e| anyhow::anyhow!("{}: {e}", export_json.display()))?;
    for i in &issues {
        eprintln!("{}: {i}", export_json.display());
    }
    if !issues.is_empty() && !allow_partial {
        bail!(
            "{}: {} of {} tasks skipped (see above); nothing written. Fix them, or pass --allow-partial to import the rest",
            export_json.display(),
            issues.len(),
            issues.len() + tasks.len()
        );
    }
    if tasks.is_empty() {
        bail!("{}: no task could be imported", export_json.display());
    }
    for d in ["images", "masks"] {
        std::fs::create_dir_all(out.join(d))
            .with_context(|| format!("creating {}", out.join(d).display()))?;
    }
    let names: Vec<String> = tasks.iter().map(|t| t.image_name.clone()).collect();
    let assign = split_by_video(&names, split, seed);
    let mut lists: [Vec<String>; 3] = Default::default();
    let pb = bar(tasks.len() as u64, "tasks");
    for t in &tasks {
        let src = &files[&t.image_name];
        let stem = Path::new(&t.image_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = src
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "png".into());
        let img_rel = format!("images/{stem}.{ext}");
        let mask_rel = format!("masks/{stem}.png");
        std::fs::copy(src, out.join(&img_rel)).with_context(|| {
            format!(
                "copying {} to {}",
                src.display(),
                out.join(&img_rel).display()
            )
        })?;
        save_gray(&out.join(&mask_rel), t.width, t.height, t.mask.clone())?;
        let video = foramen_data::labelstudio::source_video(&t.image_name);
        lists[assign[&video]].push(format!("{img_rel} {mask_rel}"));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let names = labels.names();
    let class_set = ClassSet::from_names(&names);
    let info = DatasetInfo {
        name: out
            .file_name()
            .map_or_else(|| "imported".into(), |n| n.to_string_lossy().into_owned()),
        description: format!(
            "Imported from the Label Studio export {} by foramen import. Class indices: {}. Unlabelled pixels are 0 (background); where results overlap, the later result wins. Split by source video ({:.0}/{:.0}/{:.0}, seed {seed}).",
            export_json.display(),
            names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{i} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            split[0] * 100.0,
            split[1] * 100.0,
            split[2] * 100.0
        ),
        ignore_index: 255,
        classes: class_set.classes.clone(),
        ignore_classes: Vec::new(),
    };
    info.write(out)?;
    for (list, name) in lists.iter().zip(["train.txt", "val.txt", "test.txt"]) {
        let mut text = list.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(out.join(name), text)
            .with_context(|| format!("writing {}", out.join(name).display()))?;
    }
    say!(
        "{} tasks imported into {} (train {}, val {}, test {}; {} videos); {} skipped",
        tasks.len(),
        out.display(),
        lists[0].len(),
        lists[1].len(),
        lists[2].len(),
        assign.len(),
        issues.len()
    );
    Ok(())
}

/// Parses `80,10,10` (or fractions) into train/val/test ratios.
pub fn parse_split(s: &str) -> Result<[f64; 3], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|x| x.trim().parse::<f64>().map_err(|e| format!("{x:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match v.as_slice() {
        [a, b, c] if [a, b, c].iter().all(|x| x.is_finite() && **x >= 0.0) && a + b + c > 0.0 => {
            Ok([*a, *b, *c])
        }
        _ => Err(format!(
            "split {s:?} must be three non-negative numbers, e.g. 80,10,10"
        )),
    }
}
