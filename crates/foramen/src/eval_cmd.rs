//! `foramen eval`: every metric of the study for a model or for saved predictions,
//! over the pixels of a whole list pooled, in memory that does not grow with it.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use foramen_core::ClassSet;
use foramen_core::Frame;
use foramen_core::config::ModelConfig;
use foramen_data::dataset::{DatasetInfo, load_mask, read_list};
use foramen_eval::{BinnedRoc, ConfusionMatrix, plot};
use serde_json::{Value, json};

use crate::progress::bar;

/// Where predictions come from.
pub enum Predictions {
    /// Run this model (class map and probabilities at each mask's size).
    Model(Option<PathBuf>),
    /// Class-index PNGs `<stem>.png`, and optionally probabilities `<stem>.npy`.
    Saved {
        pred: PathBuf,
        prob: Option<PathBuf>,
    },
}

/// Options of one evaluation.
pub struct EvalOptions {
    /// Data set root.
    pub data: PathBuf,
    /// List file (relative to `data` unless absolute).
    pub list: PathBuf,
    /// Predictions.
    pub predictions: Predictions,
    /// Output folder.
    pub out: PathBuf,
    /// Class names (else dataset.toml, else the model's).
    pub classes: Option<Vec<String>>,
    /// Classes whose truth pixels are left out of every metric (as Cityscapes' void);
    /// `None`: those of dataset.toml and the model's contract; `Some(empty)`: none.
    pub ignore_classes: Option<Vec<String>>,
}

/// How many worst images the report shows.
const WORST: usize = 4;

/// One of the worst images so far, with its prediction for the report.
struct WorstImage {
    stem: String,
    miou: f64,
    image: PathBuf,
    mask: PathBuf,
    pred: Vec<u8>,
}

/// The previous list entry's truth and prediction, with its size.
struct PreviousFrame {
    truth: Vec<u8>,
    pred: Vec<u8>,
    size: (u32, u32),
}

fn num(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite())
        .map_or(Value::Null, |x| json!(x))
}

/// Runs the evaluation and writes `metrics.json` and `report.md`.
pub fn run(opts: &EvalOptions, model_cfg: &ModelConfig) -> Result<()> {
    let list = if opts.list.is_absolute() {
        opts.list.clone()
    } else {
        opts.data.join(&opts.list)
    };
    let samples = read_list(&opts.data, &list)?;
    if samples.is_empty() {
        bail!("{}: the list is empty", list.display());
    }
    let mut segmenter = match &opts.predictions {
        Predictions::Model(m) => Some(crate::model::load(m.as_deref(), model_cfg)?),
        Predictions::Saved { .. } => None,
    };
    let info = DatasetInfo::read(&opts.data)?;
    let names: Vec<String> = match (&opts.classes, &info, &segmenter) {
        (Some(c), _, _) => c.clone(),
        (None, Some(info), _) => info.classes.iter().map(|c| c.name.clone()).collect(),
        (None, None, Some(seg)) => seg
            .classes()
            .names()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        (None, None, None) => {
            bail!("no class names: give --classes, or a data set with dataset.toml")
        }
    };
    let c = names.len();
    if let Some(seg) = &segmenter
        && seg.classes().len() != c
    {
        bail!(
            "the model has {} classes, the evaluation {c}",
            seg.classes().len()
        );
    }
    let ignored = ignored_classes(opts, info.as_ref(), segmenter.as_ref(), &names)?;
    // Truth value -> value scored: an ignored class becomes the ignore index.
    let truth_lut: [u8; 256] =
        std::array::from_fn(|v| if v < c && ignored[v] { 255 } else { v as u8 });
    let with_probs = matches!(
        opts.predictions,
        Predictions::Model(_) | Predictions::Saved { prob: Some(_), .. }
    );

    let mut cm = ConfusionMatrix::new(c, 255);
    let mut rocs: Vec<BinnedRoc> = if with_probs {
        (0..c).map(|_| BinnedRoc::new()).collect()
    } else {
        Vec::new()
    };
    let (mut flips, mut stable) = (0u64, 0u64);
    let mut previous: Option<PreviousFrame> = None;
    // Only the few worst images keep their prediction: memory stays flat in the list.
    let mut worst: Vec<WorstImage> = Vec::with_capacity(WORST + 1);
    let pb = bar(samples.len() as u64, "images");
    for s in &samples {
        let truth = load_mask(&s.mask)?;
        let (w, h) = truth.dimensions();
        let stem = s
            .mask
            .file_stem()
            .and_then(|x| x.to_str())
            .context("mask name")?
            .to_string();
        let (pred, probs): (Vec<u8>, Option<Vec<f32>>) = match (
            &opts.predictions,
            segmenter.as_mut(),
        ) {
            (Predictions::Model(_), Some(seg)) => {
                let img = image::open(&s.image)
                    .with_context(|| format!("reading {}", s.image.display()))?
                    .into_rgb8();
                let (iw, ih) = img.dimensions();
                if (iw, ih) != (w, h) {
                    bail!(
                        "{} is {iw}x{ih} but its mask {} is {w}x{h}: the mask does not belong to the image",
                        s.image.display(),
                        s.mask.display()
                    );
                }
                let frame = Frame::new(0, 0, iw, ih, img.into_raw()).context("image buffer")?;
                seg.segment(&frame)
                    .with_context(|| format!("segmenting {}", s.image.display()))?;
                let p = seg.last_probabilities(w, h);
                let mut cls = vec![0u8; (w * h) as usize];
                let mut conf = vec![0u8; cls.len()];
                foramen_segment::prepost::argmax_confidence(&p, c, false, &mut cls, &mut conf);
                (cls, Some(p))
            }
            (Predictions::Saved { pred, prob }, _) => {
                let pp = pred.join(format!("{stem}.png"));
                let pm = load_mask(&pp)?;
                if pm.dimensions() != (w, h) {
                    bail!(
                        "{} is {:?}, its mask {} is {:?}",
                        pp.display(),
                        pm.dimensions(),
                        s.mask.display(),
                        (w, h)
                    );
                }
                let probs = match prob {
                    Some(dir) => {
                        let np = dir.join(format!("{stem}.npy"));
                        let (shape, data) = foramen_data::npy::read_f32(&np)?;
                        if shape != [c, h as usize, w as usize] {
                            bail!(
                                "{} has shape {shape:?}, expected [{c}, {h}, {w}]",
                                np.display()
                            );
                        }
                        Some(data)
                    }
                    None => None,
                };
                (pm.into_raw(), probs)
            }
            (Predictions::Model(_), None) => bail!("model not loaded"),
        };
        let mut truth = truth.into_raw();
        if ignored.iter().any(|&i| i) {
            truth.iter_mut().for_each(|t| *t = truth_lut[*t as usize]);
        }
        cm.add(&truth, &pred)
            .with_context(|| format!("{} against {}", stem, s.mask.display()))?;
        let mut img_cm = ConfusionMatrix::new(c, 255);
        img_cm.add(&truth, &pred)?;
        let miou = img_cm.mean_iou_present().unwrap_or(f64::NAN);
        if worst.len() < WORST || worst.last().is_some_and(|w| miou < w.miou) {
            worst.push(WorstImage {
                stem,
                miou,
                image: s.image.clone(),
                mask: s.mask.clone(),
                pred: pred.clone(),
            });
            worst.sort_by(|a, b| a.miou.total_cmp(&b.miou));
            worst.truncate(WORST);
        }
        if let Some(p) = &probs {
            let n = truth.len();
            for (i, &t) in truth.iter().enumerate() {
                if t == 255 {
                    continue;
                }
                for (k, roc) in rocs.iter_mut().enumerate() {
                    roc.add(p[k * n + i], t as usize == k);
                }
            }
        }
        // Temporal stability: consecutive list entries of the same size are
        // consecutive video frames; count predicted flips where the truth held.
        if let Some(prev) = previous.as_ref().filter(|p| p.size == (w, h)) {
            for i in 0..truth.len() {
                if truth[i] != 255 && prev.truth[i] == truth[i] {
                    stable += 1;
                    flips += u64::from(prev.pred[i] != pred[i]);
                }
            }
        }
        previous = Some(PreviousFrame {
            truth,
            pred,
            size: (w, h),
        });
        pb.inc(1);
    }
    pb.finish_and_clear();

    let metrics: Vec<foramen_eval::ClassMetrics> = (0..c).map(|k| cm.class_metrics(k)).collect();
    let aucs: Vec<Option<f64>> = (0..c)
        .map(|k| rocs.get(k).and_then(BinnedRoc::auc))
        .collect();
    let fields = ["precision", "recall", "accuracy", "iou", "dice", "auc"];
    let value = |k: usize, f: &str| -> Option<f64> {
        let m = &metrics[k];
        match f {
            "precision" => m.precision,
            "recall" => m.recall,
            "accuracy" => m.accuracy,
            "iou" => m.iou,
            "dice" => m.dice,
            _ => aucs[k],
        }
    };
    // `mean` averages every class with a defined value (a class absent from the truth
    // but predicted scores IoU 0 there); `mean_present` only the classes in the truth,
    // the usual "mIoU over the classes present" of training logs and model cards.
    let average = |from: usize, present_only: bool| -> Value {
        let mut o = serde_json::Map::new();
        for f in fields {
            let vals: Vec<f64> = (from..c)
                .filter(|&k| !ignored[k] && (!present_only || metrics[k].support > 0))
                .filter_map(|k| value(k, f))
                .collect();
            o.insert(
                f.into(),
                num((!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)),
            );
        }
        Value::Object(o)
    };
    let per_class: serde_json::Map<String, Value> = (0..c)
        .map(|k| {
            let mut o = serde_json::Map::new();
            for f in fields {
                o.insert(f.into(), num(value(k, f)));
            }
            o.insert("support".into(), json!(metrics[k].support));
            o.insert("ignored".into(), json!(ignored[k]));
            (names[k].clone(), Value::Object(o))
        })
        .collect();
    let matrix: Vec<Vec<u64>> = (0..c)
        .map(|t| (0..c).map(|p| cm.get(t, p)).collect())
        .collect();
    let ignored_names: Vec<&String> = (0..c).filter(|&k| ignored[k]).map(|k| &names[k]).collect();
    let doc = json!({
        "classes": names,
        "ignored_classes": ignored_names,
        "images": samples.len(),
        "confusion_matrix": matrix,
        "per_class": per_class,
        "mean": average(0, false),
        "mean_foreground": average(1, false),
        "mean_present": average(0, true),
        "pixel_accuracy": num(cm.pixel_accuracy()),
        "temporal": {"flip_rate": num((stable > 0).then(|| flips as f64 / stable as f64)), "pixels": stable},
    });
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating {}", opts.out.display()))?;
    let path = opts.out.join("metrics.json");
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))?;

    let ignored_line = if ignored_names.is_empty() {
        String::new()
    } else {
        let listed: Vec<&str> = ignored_names.iter().map(|s| s.as_str()).collect();
        format!(
            "Ignored classes: {}. Their truth pixels are left out of every figure, as Cityscapes and CamVid treat void; their rows show what was predicted elsewhere. `--no-ignore` scores them.\n\n",
            listed.join(", ")
        )
    };
    let mut md = format!(
        "# Evaluation\n\n{} images of `{}`.\n\n{ignored_line}| class | precision | recall | accuracy | IoU | Dice | AUC | support |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
        samples.len(),
        list.display()
    );
    let cell = |v: &Value| v.as_f64().map_or("n/a".to_string(), |x| format!("{x:.4}"));
    for name in &names {
        let m = &doc["per_class"][name];
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&m["precision"]),
            cell(&m["recall"]),
            cell(&m["accuracy"]),
            cell(&m["iou"]),
            cell(&m["dice"]),
            cell(&m["auc"]),
            m["support"]
        );
    }
    for (label, key) in [
        ("mean", "mean"),
        ("mean (foreground)", "mean_foreground"),
        ("mean (classes in the truth)", "mean_present"),
    ] {
        let m = &doc[key];
        let _ = writeln!(
            md,
            "| **{label}** | {} | {} | {} | {} | {} | {} | |",
            cell(&m["precision"]),
            cell(&m["recall"]),
            cell(&m["accuracy"]),
            cell(&m["iou"]),
            cell(&m["dice"]),
            cell(&m["auc"])
        );
    }
    let _ = writeln!(
        md,
        "\nPixel accuracy {}. Temporal flip rate (predicted class changes between consecutive frames where the truth did not): {}.",
        cell(&doc["pixel_accuracy"]),
        cell(&doc["temporal"]["flip_rate"])
    );
    // Figures: ROC curves (with probabilities) and the normalised confusion matrix.
    let colors: Vec<[u8; 3]> = match &info {
        Some(info) if info.classes.len() == c => info.classes.iter().map(|k| k.color).collect(),
        _ => ClassSet::from_names(&names)
            .classes
            .iter()
            .map(|k| k.color)
            .collect(),
    };
    let mut html_figs = String::new();
    if with_probs {
        let curves: Vec<_> = (0..c)
            .filter_map(|k| {
                aucs[k].map(|auc| plot::RocCurve {
                    name: names[k].clone(),
                    color: colors[k],
                    points: rocs[k].curve(400),
                    auc,
                })
            })
            .collect();
        let svg = plot::roc_svg(&curves);
        plot::write_svg_png(&svg, &opts.out, "roc")?;
        let _ = writeln!(md, "\n![ROC curves](roc.png)");
        html_figs.push_str(&svg);
    }
    let svg = plot::confusion_svg(&names, &matrix);
    plot::write_svg_png(&svg, &opts.out, "confusion")?;
    let _ = writeln!(md, "\n![Confusion matrix](confusion.png)");
    html_figs.push_str(&svg);

    let _ = writeln!(
        md,
        "\nWorst images by mean IoU over the classes they contain (picture, truth, prediction):\n"
    );
    let worst_dir = opts.out.join("worst");
    std::fs::create_dir_all(&worst_dir)?;
    for WorstImage {
        stem,
        miou,
        image,
        mask,
        pred,
    } in &worst
    {
        let _ = writeln!(md, "- `{stem}`: {miou:.4}");
        if let Some(tile) = side_by_side(image, mask, pred, &colors) {
            let file = worst_dir.join(format!("{stem}.png"));
            tile.save(&file)
                .with_context(|| format!("writing {}", file.display()))?;
            let _ = writeln!(md, "\n  ![{stem}](worst/{stem}.png)\n");
        }
    }
    std::fs::write(opts.out.join("report.md"), &md)?;
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Foramen evaluation</title></head><body><pre>{}</pre>{html_figs}</body></html>\n",
        md.replace('&', "&amp;").replace('<', "&lt;")
    );
    std::fs::write(opts.out.join("report.html"), html)?;
    say!(
        "evaluated {} images: mIoU {} (foreground {}, classes in the truth {}), written to {}",
        samples.len(),
        cell(&doc["mean"]["iou"]),
        cell(&doc["mean_foreground"]["iou"]),
        cell(&doc["mean_present"]["iou"]),
        path.display()
    );
    Ok(())
}

/// Which classes are ignored (one flag per class): the options' list, else the union of
/// dataset.toml's and the model's. A name that is not a class is an error naming its source.
fn ignored_classes(
    opts: &EvalOptions,
    info: Option<&DatasetInfo>,
    segmenter: Option<&foramen_segment::Segmenter>,
    names: &[String],
) -> Result<Vec<bool>> {
    let mut wanted: Vec<(String, &str)> = Vec::new();
    match &opts.ignore_classes {
        Some(list) => wanted.extend(list.iter().map(|n| (n.clone(), "--ignore-classes"))),
        None => {
            if let Some(info) = info {
                wanted.extend(
                    info.ignore_classes
                        .iter()
                        .map(|n| (n.clone(), "dataset.toml")),
                );
            }
            if let Some(seg) = segmenter {
                let from = seg.contract().ignore_classes.iter();
                wanted.extend(from.map(|n| (n.clone(), "the model's contract")));
            }
        }
    }
    let mut flags = vec![false; names.len()];
    for (name, source) in wanted {
        let Some(k) = names.iter().position(|n| *n == name) else {
            bail!("ignored class `{name}` (from {source}) is not one of the classes {names:?}");
        };
        flags[k] = true;
    }
    if flags.iter().all(|&f| f) {
        bail!("every class is ignored: nothing left to score");
    }
    Ok(flags)
}

/// Picture, coloured truth and coloured prediction side by side (ignored pixels grey).
fn side_by_side(
    image_path: &std::path::Path,
    mask_path: &std::path::Path,
    pred: &[u8],
    colors: &[[u8; 3]],
) -> Option<image::RgbImage> {
    let truth = load_mask(mask_path).ok()?;
    let (w, h) = truth.dimensions();
    let picture = image::open(image_path).ok()?.into_rgb8();
    let picture = image::imageops::resize(&picture, w, h, image::imageops::FilterType::Triangle);
    let paint = |v: u8| colors.get(v as usize).copied().unwrap_or([128, 128, 128]);
    let mut out = image::RgbImage::new(w * 3, h);
    for y in 0..h {
        for x in 0..w {
            out.put_pixel(x, y, *picture.get_pixel(x, y));
            out.put_pixel(w + x, y, image::Rgb(paint(truth.get_pixel(x, y).0[0])));
            out.put_pixel(2 * w + x, y, image::Rgb(paint(pred[(y * w + x) as usize])));
        }
    }
    Some(out)
}
