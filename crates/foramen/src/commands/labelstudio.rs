//! `foramen export label-studio` and `foramen import label-studio`: from extracted
//! frames to labelling tasks, and from the labels to a training-ready data set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foramen_core::paths::{check_distinct, check_output};
use foramen_core::{ClassSet, Config};
use foramen_data::dataset::{DatasetInfo, list_images, load_mask, save_gray, write_split_lists};
use foramen_data::labelstudio::{
    ExportTasks, ImageFiles, ImportedTask, LabelMap, check_task_names, image_url,
    imported_dataset_info, labeling_config_xml, split_by_video, task_json,
};

use crate::progress::bar;

/// `foramen export ...`
#[derive(clap::Subcommand)]
pub enum ExportTarget {
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
#[derive(clap::Subcommand)]
pub enum ImportSource {
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
        #[arg(long, default_value = "80,10,10", value_parser = parse_split)]
        split: [f64; 3],
        /// Seed of the split.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Import the good tasks even when some are skipped.
        #[arg(long)]
        allow_partial: bool,
    },
}

/// Runs `foramen export ...`.
pub fn exec_export(target: ExportTarget, config: &Config) -> Result<()> {
    let ExportTarget::LabelStudio {
        images,
        out,
        model,
        masks,
        image_root,
        config_xml,
    } = target;
    let xml = config_xml.unwrap_or_else(|| out.with_extension("xml"));
    let mut inputs = vec![images.as_path()];
    inputs.extend(model.as_deref());
    inputs.extend(masks.as_deref());
    check_output(&out, &inputs)?;
    check_output(&xml, &inputs)?;
    check_distinct(&out, &xml)?;
    export(
        &images,
        &out,
        model.as_deref(),
        masks.as_deref(),
        &image_root,
        &xml,
        config,
    )
}

/// Runs `foramen import ...`.
pub fn exec_import(source: ImportSource) -> Result<()> {
    let ImportSource::LabelStudio {
        export,
        images,
        out,
        classes,
        split,
        seed,
        allow_partial,
    } = source;
    check_output(&out, &[&export, &images])?;
    let opts = ImportOptions {
        split,
        seed,
        allow_partial,
    };
    import(&export, &images, &out, classes.as_deref(), &opts)
}

/// `foramen export label-studio`: one task per image, with pre-annotations from a
/// model (`--model`) or from existing class masks (`--masks`), and the labelling config.
fn export(
    images: &Path,
    out: &Path,
    model: Option<&Path>,
    masks: Option<&Path>,
    image_root: &str,
    xml_path: &Path,
    cfg: &Config,
) -> Result<()> {
    let files = list_images(images).with_context(|| format!("listing {}", images.display()))?;
    if files.is_empty() {
        bail!("{}: no images", images.display());
    }
    let mut seg = model
        .map(|m| foramen_pipeline::model::load(Some(m), &cfg.model))
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
    let pb = bar(files.len() as u64, "images");
    let mut tasks = Vec::new();
    for (i, path) in files.iter().enumerate() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let url = image_url(image_root, &name);
        let pred = match (seg.as_mut(), masks) {
            (Some(seg), _) => {
                let r = super::segment::segment_file(seg, path, i as u64)?;
                Some((r.classes, r.size.0, r.size.1))
            }
            (None, Some(dir)) => Some(saved_mask(dir, path)?),
            (None, None) => None,
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
    std::fs::write(xml_path, labeling_config_xml(&classes))
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

/// The existing class mask `<stem>.png` of an image, which must have the image's size.
fn saved_mask(dir: &Path, path: &Path) -> Result<(Vec<u8>, u32, u32)> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mpath = dir.join(format!("{stem}.png"));
    let m = load_mask(&mpath)?;
    let (w, h) = m.dimensions();
    let (iw, ih) =
        image::image_dimensions(path).with_context(|| format!("reading {}", path.display()))?;
    if (w, h) != (iw, ih) {
        bail!(
            "{}: mask is {w}x{h}, image {} is {iw}x{ih}",
            mpath.display(),
            path.display()
        );
    }
    Ok((m.into_raw(), w, h))
}

/// How `import` splits and what it tolerates.
struct ImportOptions {
    split: [f64; 3],
    seed: u64,
    allow_partial: bool,
}

/// The label-to-index map: `--classes` fixed, else labels in order of first appearance.
fn label_map(classes: Option<&str>) -> Result<LabelMap> {
    Ok(match classes {
        Some(list) => LabelMap::fixed(
            list.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
        .map_err(|e| anyhow::anyhow!("--classes: {e}"))?,
        None => LabelMap::FirstSeen(Vec::new()),
    })
}

/// Pass 1 of `import`: checks every task, making and dropping its mask (pass 2,
/// `write_tasks`, makes each again and writes it at once: one mask in memory, however
/// large the export). Prints each skipped task's issue; returns the good tasks (by index)
/// and how many were skipped, or an error when any was and `--allow-partial` is not set.
fn check_tasks(
    export_json: &Path,
    export: &ExportTasks,
    labels: &mut LabelMap,
    size: &mut dyn FnMut(&str) -> Option<(u32, u32)>,
    allow_partial: bool,
) -> Result<(Vec<(usize, ImportedTask)>, usize)> {
    let (mut tasks, mut issues) = (Vec::new(), Vec::new());
    for i in 0..export.len() {
        match export.import(i, labels, size) {
            Ok(t) => tasks.push((
                i,
                ImportedTask {
                    mask: Vec::new(),
                    ..t
                },
            )),
            Err(issue) => issues.push(issue),
        }
    }
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
    check_task_names(tasks.iter().map(|(_, t)| t))
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing written", export_json.display()))?;
    Ok((tasks, issues.len()))
}

/// `foramen import label-studio`: a JSON export to a Foramen data set, split by video.
fn import(
    export_json: &Path,
    images: &Path,
    out: &Path,
    classes: Option<&str>,
    opts: &ImportOptions,
) -> Result<()> {
    let text = std::fs::read_to_string(export_json)
        .with_context(|| format!("reading {}", export_json.display()))?;
    let mut labels = label_map(classes)?;
    let files = ImageFiles::new(images).with_context(|| format!("listing {}", images.display()))?;
    let mut size = |url: &str| {
        files
            .find(url)
            .and_then(|p| image::image_dimensions(p).ok())
    };
    let export =
        ExportTasks::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", export_json.display()))?;
    let (tasks, skipped) = check_tasks(
        export_json,
        &export,
        &mut labels,
        &mut size,
        opts.allow_partial,
    )?;
    let names: Vec<String> = tasks.iter().map(|(_, t)| t.image_name.clone()).collect();
    let assign = split_by_video(&names, opts.split, opts.seed);
    let source = TaskSource {
        export: &export,
        labels: &mut labels,
        size: &mut size,
        files: &files,
    };
    let lists = write_tasks(&tasks, source, &assign, out)?;
    let name = out
        .file_name()
        .map_or_else(|| "imported".into(), |n| n.to_string_lossy().into_owned());
    let source = export_json.display().to_string();
    imported_dataset_info(&name, &source, &labels.names(), opts.split, opts.seed).write(out)?;
    write_split_lists(out, lists.each_ref().map(Vec::as_slice))?;
    say!(
        "{} tasks imported into {} (train {}, val {}, test {}; {} videos); {} skipped",
        tasks.len(),
        out.display(),
        lists[0].len(),
        lists[1].len(),
        lists[2].len(),
        assign.len(),
        skipped
    );
    Ok(())
}

/// Where `write_tasks` makes each mask again and finds each image.
struct TaskSource<'a> {
    export: &'a ExportTasks,
    labels: &'a mut LabelMap,
    size: &'a mut dyn FnMut(&str) -> Option<(u32, u32)>,
    files: &'a ImageFiles,
}

/// Copies each task's image and writes its mask into `out`, one task at a time; the
/// train/val/test list lines, by the task's source video's split (`assign`: video -> 0,
/// 1, 2).
fn write_tasks(
    tasks: &[(usize, ImportedTask)],
    src: TaskSource,
    assign: &BTreeMap<String, usize>,
    out: &Path,
) -> Result<[Vec<String>; 3]> {
    for d in ["images", "masks"] {
        std::fs::create_dir_all(out.join(d))
            .with_context(|| format!("creating {}", out.join(d).display()))?;
    }
    let mut lists: [Vec<String>; 3] = Default::default();
    let pb = bar(tasks.len() as u64, "tasks");
    for (i, t) in tasks {
        let image = &src.files.find(&t.image_url).context("an image went away")?;
        let stem = Path::new(&t.image_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ext = image
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_else(|| "png".into());
        let img_rel = format!("images/{stem}.{ext}");
        let mask_rel = format!("masks/{stem}.png");
        std::fs::copy(image, out.join(&img_rel)).with_context(|| {
            format!(
                "copying {} to {}",
                image.display(),
                out.join(&img_rel).display()
            )
        })?;
        let full = src
            .export
            .import(*i, src.labels, src.size)
            .map_err(|e| anyhow::anyhow!("task {e}"))?;
        save_gray(&out.join(&mask_rel), full.width, full.height, full.mask)?;
        let video = foramen_data::labelstudio::source_video(&t.image_name);
        lists[assign[&video]].push(format!("{img_rel} {mask_rel}"));
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(lists)
}

/// Parses `80,10,10` (or fractions) into train/val/test ratios.
fn parse_split(s: &str) -> Result<[f64; 3], String> {
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
