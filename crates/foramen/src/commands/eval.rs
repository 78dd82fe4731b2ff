//! `foramen eval`: every metric of the study for a model or for saved predictions,
//! over the pixels of a whole list pooled, in memory that does not grow with it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foramen_core::config::ModelConfig;
use foramen_core::{ClassSet, Config};
use foramen_data::dataset::{
    DatasetInfo, Sample, ignored_flags, load_mask, parse_shard, read_list, select_shard,
    sequence_of, side_by_side,
};
use foramen_eval::{EvalReport, Evaluation, ImageResult, plot};
use foramen_segment::{ListFilter, Segmenter, TemporalSettings};

use crate::progress::bar;

/// `foramen eval` options.
#[derive(clap::Args)]
pub struct Args {
    /// Data set root (the list's paths are relative to it).
    #[arg(long, required_unless_present = "merge")]
    data: Option<PathBuf>,
    /// List file of `image mask` lines (relative to --data unless absolute).
    #[arg(long, required_unless_present = "merge")]
    list: Option<PathBuf>,
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
    /// Apply the live temporal filter (`[inference]` settings) in list order, per folder.
    #[arg(long)]
    temporal: bool,
    /// Score only entries I, I+N, I+2N, ... of the list (`I/N`, for array jobs); --out
    /// also gets `shard.bin` for --merge.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// Add up the shard folders' `shard.bin` (all N of one list) into one report in
    /// --out: the numbers of one run over the whole list.
    #[arg(long, num_args = 1.., conflicts_with_all = ["data", "model", "pred", "shard", "temporal"])]
    merge: Vec<PathBuf>,
}

/// Runs `foramen eval`.
pub fn exec(a: Args, config: &Config) -> Result<()> {
    if !a.merge.is_empty() {
        return merge(&a.merge, &a.out);
    }
    foramen_core::paths::protect(&a.model);
    let predictions = match a.pred {
        Some(pred) => Predictions::Saved { pred, prob: a.prob },
        None => Predictions::Model(a.model.or_else(|| config.model.path.clone())),
    };
    let temporal = TemporalSettings::from_config(&config.inference)?;
    let opts = EvalOptions {
        data: a.data.context("--data")?,
        list: a.list.context("--list")?,
        shard: a.shard,
        predictions,
        out: a.out,
        classes: a.classes,
        ignore_classes: if a.no_ignore {
            Some(Vec::new())
        } else {
            a.ignore_classes
        },
        temporal: a.temporal.then_some(temporal),
    };
    run(&opts, &config.model)
}

/// Where predictions come from.
enum Predictions {
    /// Run this model (class map and probabilities at each mask's size).
    Model(Option<PathBuf>),
    /// Class-index PNGs `<stem>.png`, and optionally probabilities `<stem>.npy`.
    Saved {
        pred: PathBuf,
        prob: Option<PathBuf>,
    },
}

/// Options of one evaluation.
struct EvalOptions {
    /// Data set root.
    pub data: PathBuf,
    /// List file (relative to `data` unless absolute).
    pub list: PathBuf,
    /// Only this `(i, n)` shard of the list.
    pub shard: Option<(usize, usize)>,
    /// Predictions.
    pub predictions: Predictions,
    /// Output folder.
    pub out: PathBuf,
    /// Class names (else dataset.toml, else the model's).
    pub classes: Option<Vec<String>>,
    /// Classes whose truth pixels are left out of every metric (as Cityscapes' void);
    /// `None`: those of dataset.toml and the model's contract; `Some(empty)`: none.
    pub ignore_classes: Option<Vec<String>>,
    /// The temporal filter's settings, with `--temporal`.
    pub temporal: Option<TemporalSettings>,
}

/// Loads the model or the data set's names and checks that they agree.
fn class_names(
    opts: &EvalOptions,
    info: Option<&DatasetInfo>,
    segmenter: Option<&Segmenter>,
) -> Result<Vec<String>> {
    let names: Vec<String> = match (&opts.classes, info, segmenter) {
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
    if let Some(seg) = segmenter
        && seg.classes().len() != names.len()
    {
        bail!(
            "the model has {} classes, the evaluation {}",
            seg.classes().len(),
            names.len()
        );
    }
    Ok(names)
}

/// The list's path and its entries (this shard's, with `--shard`); an empty one is an
/// error.
fn samples(opts: &EvalOptions) -> Result<(PathBuf, Vec<Sample>)> {
    let list = if opts.list.is_absolute() {
        opts.list.clone()
    } else {
        opts.data.join(&opts.list)
    };
    let mut samples = read_list(&opts.data, &list)?;
    if let Some(shard) = opts.shard {
        samples = select_shard(samples, shard);
    }
    if samples.is_empty() {
        bail!("{}: the list is empty", list.display());
    }
    Ok((list, samples))
}

/// Saved predictions are found by the mask's file stem: two entries with one stem would
/// both be scored against one prediction, so that is refused, naming both entries.
fn check_distinct_stems(list: &Path, samples: &[Sample]) -> Result<()> {
    let mut seen = std::collections::BTreeMap::new();
    for (line, s) in samples.iter().enumerate() {
        let stem = s.mask.file_stem().unwrap_or_default().to_os_string();
        if let Some(first) = seen.insert(stem.clone(), line + 1) {
            bail!(
                "{}: entries {first} and {} both have masks named {:?}: --pred matches predictions by file name, so give each image a distinct name (or evaluate the model with --model)",
                list.display(),
                line + 1,
                stem
            );
        }
    }
    Ok(())
}

/// Runs the evaluation and writes `metrics.json`, `report.md`, `report.html` and the
/// figures.
fn run(opts: &EvalOptions, model_cfg: &ModelConfig) -> Result<()> {
    let (list, samples) = samples(opts)?;
    let mut inputs = vec![list.as_path()];
    if let Predictions::Saved { pred, prob } = &opts.predictions {
        inputs.push(pred);
        inputs.extend(prob.as_deref());
        check_distinct_stems(&list, &samples)?;
    }
    foramen_core::paths::check_output(&opts.out, &inputs)?;
    let mut segmenter = match &opts.predictions {
        Predictions::Model(m) => Some(foramen_pipeline::model::load(m.as_deref(), model_cfg)?),
        Predictions::Saved { .. } => None,
    };
    let info = DatasetInfo::read(&opts.data)?;
    let names = class_names(opts, info.as_ref(), segmenter.as_ref())?;
    let ignored = ignored_flags(
        &names,
        opts.ignore_classes.as_deref(),
        info.as_ref().map_or(&[][..], |i| &i.ignore_classes),
        segmenter
            .as_ref()
            .map_or(&[][..], |s| &s.contract().ignore_classes),
    )
    .map_err(anyhow::Error::msg)?;
    let with_probs = matches!(
        opts.predictions,
        Predictions::Model(_) | Predictions::Saved { prob: Some(_), .. }
    );
    let c = names.len();
    let mut eval = Evaluation::new(names, ignored, with_probs);
    let mut filter = opts.temporal.map(ListFilter::new);
    let mut scorer = Scorer {
        opts,
        segmenter: segmenter.as_mut(),
        filter: filter.as_mut(),
        classes: c,
    };
    let pb = bar(samples.len() as u64, "images");
    for s in &samples {
        scorer.score(s, &mut eval)?;
        pb.inc(1);
    }
    pb.finish_and_clear();
    if let Some(shard) = opts.shard {
        write_shard(&eval, shard, &opts.out)?;
    }
    let report = eval.finish();
    let path = write_report(&report, &list, &opts.out, info.as_ref(), filter.as_ref())?;
    say!("{}, written to {}", report.summary(), path.display());
    Ok(())
}

/// What scores one list entry: the model or the saved predictions, and the temporal
/// filter when asked.
struct Scorer<'a> {
    opts: &'a EvalOptions,
    segmenter: Option<&'a mut Segmenter>,
    filter: Option<&'a mut ListFilter>,
    classes: usize,
}

impl Scorer<'_> {
    /// Predicts (or reads the prediction of) entry `s`, filters it when asked, and adds
    /// it to `eval`.
    fn score(&mut self, s: &Sample, eval: &mut Evaluation) -> Result<()> {
        let truth = load_mask(&s.mask)?;
        let (w, h) = truth.dimensions();
        let stem = s
            .mask
            .file_stem()
            .and_then(|x| x.to_str())
            .context("mask name")?
            .to_string();
        let (pred, probs) = match (&self.opts.predictions, self.segmenter.as_deref_mut()) {
            (Predictions::Model(_), Some(seg)) => predict(seg, s, (w, h))?,
            (Predictions::Saved { pred, prob }, _) => {
                saved(pred, prob.as_deref(), &stem, s, (w, h), self.classes)?
            }
            (Predictions::Model(_), None) => bail!("model not loaded"),
        };
        let sequence = sequence_of(&self.opts.data, &s.image);
        let (pred, probs) = match (self.filter.as_deref_mut(), probs) {
            (Some(f), Some(p)) => f.entry(&sequence, &p, (w, h), pred)?,
            (Some(_), None) => bail!("--temporal filters probabilities: give --prob"),
            (None, probs) => (pred, probs),
        };
        let image = ImageResult {
            stem: &stem,
            image: &s.image,
            mask: &s.mask,
            size: (w, h),
            sequence: &sequence,
            truth: truth.into_raw(),
            pred,
            probs: probs.as_deref(),
        };
        eval.add(image)
            .with_context(|| format!("{} against {}", stem, s.mask.display()))
    }
}

/// `OUT/shard.bin`, for `--merge`.
fn write_shard(eval: &Evaluation, shard: (usize, usize), out: &Path) -> Result<()> {
    let path = out.join("shard.bin");
    std::fs::create_dir_all(out)?;
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(eval.write_shard(shard, std::io::BufWriter::new(file))?)
}

/// `--merge`: the shards added up and reported as one run; every shard of one `I/N`
/// split must be there once.
fn merge(dirs: &[PathBuf], out: &Path) -> Result<()> {
    foramen_core::paths::check_output(out, &dirs.iter().map(PathBuf::as_path).collect::<Vec<_>>())?;
    let files: Vec<PathBuf> = dirs.iter().map(|d| d.join("shard.bin")).collect();
    let (eval, n) = foramen_eval::shard::merge_files(&files)?;
    let report = eval.finish();
    let path = write_report(&report, Path::new(&format!("{n} shards")), out, None, None)?;
    say!("{}, written to {}", report.summary(), path.display());
    Ok(())
}

/// The model's classes and probabilities for one image, whose mask is `w` x `h`.
fn predict(
    seg: &mut Segmenter,
    s: &Sample,
    (w, h): (u32, u32),
) -> Result<(Vec<u8>, Option<Vec<f32>>)> {
    let (iw, ih) = image::image_dimensions(&s.image)
        .with_context(|| format!("reading {}", s.image.display()))?;
    if (iw, ih) != (w, h) {
        bail!(
            "{} is {iw}x{ih} but its mask {} is {w}x{h}: the mask does not belong to the image",
            s.image.display(),
            s.mask.display()
        );
    }
    let r = super::segment::segment_file(seg, &s.image, 0)?;
    Ok((r.classes, Some(r.probs)))
}

/// Saved predictions of one image: `<stem>.png`, and `<stem>.npy` probabilities if asked.
fn saved(
    pred: &Path,
    prob: Option<&Path>,
    stem: &str,
    s: &Sample,
    (w, h): (u32, u32),
    c: usize,
) -> Result<(Vec<u8>, Option<Vec<f32>>)> {
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
            // A NaN would rank as the lowest score and count silently in every ROC.
            if let Some(at) = data.iter().position(|v| !v.is_finite()) {
                bail!(
                    "{}: value {at} is {}, not a probability",
                    np.display(),
                    data[at]
                );
            }
            Some(data)
        }
        None => None,
    };
    Ok((pm.into_raw(), probs))
}

/// Writes `metrics.json`, the figures, the worst images' tiles, `report.md` and
/// `report.html` into `out`; returns the JSON's path.
fn write_report(
    report: &EvalReport,
    list: &Path,
    out: &Path,
    info: Option<&DatasetInfo>,
    filter: Option<&ListFilter>,
) -> Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let path = out.join("metrics.json");
    let mut doc = report.to_json();
    doc["temporal"]["filter"] = filter.map_or(serde_json::Value::Null, ListFilter::to_json);
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", path.display()))?;
    let mut md = report.markdown(&list.display().to_string());
    md.extend(filter.map(|f| format!("\n{}\n", f.describe())));
    // Figures: ROC curves (with probabilities) and the normalised confusion matrix.
    let names = &report.names;
    let colors: Vec<[u8; 3]> = match info {
        Some(info) if info.classes.len() == names.len() => {
            info.classes.iter().map(|k| k.color).collect()
        }
        _ => ClassSet::from_names(names)
            .classes
            .iter()
            .map(|k| k.color)
            .collect(),
    };
    let mut html_figs = String::new();
    if !report.rocs.is_empty() {
        let curves: Vec<_> = (0..names.len())
            .filter_map(|k| {
                report.aucs[k].map(|auc| plot::RocCurve {
                    name: names[k].clone(),
                    color: colors[k],
                    points: report.rocs[k].curve(400),
                    auc,
                })
            })
            .collect();
        let svg = plot::roc_svg(&curves);
        plot::write_svg_png(&svg, out, "roc")?;
        let _ = writeln!(md, "\n![ROC curves](roc.png)");
        html_figs.push_str(&svg);
    }
    let svg = plot::confusion_svg(names, &report.matrix);
    plot::write_svg_png(&svg, out, "confusion")?;
    let _ = writeln!(md, "\n![Confusion matrix](confusion.png)");
    html_figs.push_str(&svg);
    write_worst(&mut md, report, out, &colors)?;
    std::fs::write(out.join("report.md"), &md)?;
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Foramen evaluation</title></head><body><pre>{}</pre>{html_figs}</body></html>\n",
        md.replace('&', "&amp;").replace('<', "&lt;")
    );
    std::fs::write(out.join("report.html"), html)?;
    Ok(path)
}

/// The worst images' lines and picture | truth | prediction tiles (`worst/<stem>.png`).
fn write_worst(md: &mut String, report: &EvalReport, out: &Path, colors: &[[u8; 3]]) -> Result<()> {
    let _ = writeln!(
        md,
        "\nWorst images by mean IoU over the classes they contain (picture, truth, prediction):\n"
    );
    let worst_dir = out.join("worst");
    std::fs::create_dir_all(&worst_dir)?;
    for w in &report.worst {
        let stem = &w.stem;
        let _ = writeln!(md, "- `{stem}`: {:.4}", w.miou);
        if let Some(tile) = side_by_side(&w.image, &w.mask, &w.pred, colors) {
            let file = worst_dir.join(format!("{stem}.png"));
            tile.save(&file)
                .with_context(|| format!("writing {}", file.display()))?;
            let _ = writeln!(md, "\n  ![{stem}](worst/{stem}.png)\n");
        }
    }
    Ok(())
}
