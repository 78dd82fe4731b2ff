//! `foramen compare`: the reader study. Several readers' masks (surgeons, or the
//! model) against a reference, per-image IoU and Dice, and the significance tests.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foramen_data::dataset::{DatasetInfo, list_images, load_mask};
use foramen_eval::reader_study::{ReaderScores, ReaderStudy, parse_reader};

/// `foramen compare` options.
#[derive(clap::Args)]
pub struct Args {
    /// Folder of reference class-index PNGs.
    #[arg(long)]
    reference: PathBuf,
    /// A reader as NAME=DIR (DIR holds PNGs named like the reference's); repeat.
    #[arg(long = "reader", value_parser = parse_reader, required = true)]
    readers: Vec<(String, PathBuf)>,
    /// Output folder for compare.json and report.md.
    #[arg(long)]
    out: PathBuf,
    /// Class names in index order for the report (else dataset.toml in or beside the
    /// reference folder, else the classes' indices).
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
}

/// Runs `foramen compare`: writes `OUT/compare.json` and `OUT/report.md`.
pub fn exec(a: Args) -> Result<()> {
    let (reference, readers, out) = (a.reference.as_path(), &a.readers, a.out.as_path());
    if readers.is_empty() {
        bail!("give at least one --reader NAME=DIR");
    }
    for (i, (name, _)) in readers.iter().enumerate() {
        if readers[..i].iter().any(|(n, _)| n == name) {
            bail!("reader {name} is given twice: give each reader a distinct name");
        }
    }
    let mut inputs = vec![reference];
    inputs.extend(readers.iter().map(|(_, d)| d.as_path()));
    foramen_core::paths::check_output(out, &inputs)?;
    let (names, from) = DatasetInfo::names_for(reference, a.classes)?;
    let refs =
        list_images(reference).with_context(|| format!("listing {}", reference.display()))?;
    if refs.is_empty() {
        bail!("{}: no reference masks", reference.display());
    }
    let stems: Vec<String> = refs
        .iter()
        .map(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .map(String::from)
                .context("mask file name")
        })
        .collect::<Result<_>>()?;
    let scores = readers
        .iter()
        .map(|(name, dir)| score_reader(name, dir, &refs, &stems))
        .collect::<Result<Vec<_>>>()?;
    let study = ReaderStudy::new(stems, scores)
        .with_class_names(names, &from)
        .map_err(anyhow::Error::msg)?;
    let reference_name = reference.display().to_string();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json_path = out.join("compare.json");
    let doc = study.to_json(&reference_name);
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    let mut md = study.markdown(&reference_name);
    let groups: Vec<(String, Vec<f64>)> = study
        .readers
        .iter()
        .map(|r| (r.name.clone(), r.ious.clone()))
        .collect();
    let svg = foramen_eval::plot::boxplot_svg("Per-image IoU by reader", "IoU", &groups);
    foramen_eval::plot::write_svg_png(&svg, out, "iou_boxplot")?;
    let _ = writeln!(md, "\n![Per-image IoU by reader](iou_boxplot.png)");
    std::fs::write(out.join("report.md"), md)?;
    say!(
        "compared {} reader(s) on {} images: {}",
        study.readers.len(),
        study.images.len(),
        json_path.display()
    );
    Ok(())
}

/// One reader's IoU and Dice on every reference image; every image must be there, at
/// the reference's size.
fn score_reader(
    name: &str,
    dir: &Path,
    refs: &[PathBuf],
    stems: &[String],
) -> Result<ReaderScores> {
    let mut r = ReaderScores {
        name: name.to_string(),
        ..ReaderScores::default()
    };
    for (path, stem) in refs.iter().zip(stems) {
        let truth = load_mask(path)?;
        let rp = dir.join(format!("{stem}.png"));
        if !rp.is_file() {
            bail!(
                "reader {name}: missing {} (every reader needs every reference image)",
                rp.display()
            );
        }
        let pred = load_mask(&rp)?;
        if pred.dimensions() != truth.dimensions() {
            bail!(
                "reader {name}: {} is {:?}, reference {} is {:?}",
                rp.display(),
                pred.dimensions(),
                path.display(),
                truth.dimensions()
            );
        }
        r.add_image(truth.as_raw(), pred.as_raw());
    }
    Ok(r)
}
