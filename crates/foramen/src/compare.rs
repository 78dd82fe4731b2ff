//! `foramen compare`: the reader study. Several readers' masks (surgeons, or the
//! model) against a reference, per-image IoU and Dice, and the significance tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use foramen_data::dataset::{list_images, load_mask};
use foramen_eval::TestResult;
use foramen_eval::stats::{f_oneway, friedman, holm, kruskal, wilcoxon};
use serde_json::{Value, json};

/// Mask value that is never scored.
const IGNORE: u8 = 255;

/// Per-image agreement of `pred` with `truth`: IoU and Dice per foreground class
/// (index >= 1) present in either mask, averaged. When neither mask has any
/// foreground the two agree completely and both values are 1.
pub fn image_scores(truth: &[u8], pred: &[u8]) -> (f64, f64) {
    let mut tp = [0u64; 256];
    let mut in_truth = [0u64; 256];
    let mut in_pred = [0u64; 256];
    for (&t, &p) in truth.iter().zip(pred) {
        if t == IGNORE {
            continue;
        }
        in_truth[t as usize] += 1;
        in_pred[p as usize] += 1;
        if t == p {
            tp[t as usize] += 1;
        }
    }
    let (mut iou, mut dice, mut n) = (0.0, 0.0, 0);
    for c in 1..255 {
        if in_truth[c] + in_pred[c] == 0 {
            continue;
        }
        let union = in_truth[c] + in_pred[c] - tp[c];
        iou += tp[c] as f64 / union as f64;
        dice += 2.0 * tp[c] as f64 / (in_truth[c] + in_pred[c]) as f64;
        n += 1;
    }
    if n == 0 {
        (1.0, 1.0)
    } else {
        (iou / n as f64, dice / n as f64)
    }
}

fn test_json(r: TestResult) -> Value {
    let num = |v: f64| if v.is_finite() { json!(v) } else { Value::Null };
    json!({"statistic": num(r.statistic), "p_value": num(r.p_value)})
}

/// Runs the comparison and writes `OUT/compare.json` and `OUT/report.md`.
pub fn run(reference: &Path, readers: &[(String, PathBuf)], out: &Path) -> Result<()> {
    if readers.is_empty() {
        bail!("give at least one --reader NAME=DIR");
    }
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
    let mut per_reader: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for (name, dir) in readers {
        let (mut ious, mut dices) = (Vec::new(), Vec::new());
        for (path, stem) in refs.iter().zip(&stems) {
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
            let (i, d) = image_scores(truth.as_raw(), pred.as_raw());
            ious.push(i);
            dices.push(d);
        }
        per_reader.push((name.clone(), ious, dices));
    }

    let groups: Vec<&[f64]> = per_reader.iter().map(|r| r.1.as_slice()).collect();
    let mut pairs = Vec::new();
    for a in 0..per_reader.len() {
        for b in a + 1..per_reader.len() {
            pairs.push((a, b, wilcoxon(&per_reader[a].1, &per_reader[b].1)));
        }
    }
    let adjusted = holm(&pairs.iter().map(|p| p.2.p_value).collect::<Vec<_>>());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let readers_json: serde_json::Map<String, Value> = per_reader
        .iter()
        .map(|(name, ious, dices)| {
            let per_image: BTreeMap<&str, f64> = stems.iter().map(String::as_str).zip(ious.iter().copied()).collect();
            (name.clone(), json!({"mean_iou": mean(ious), "mean_dice": mean(dices), "per_image_iou": per_image}))
        })
        .collect();
    let pairwise: Vec<Value> = pairs
        .iter()
        .zip(&adjusted)
        .map(|((a, b, r), adj)| {
            let mut v = test_json(*r);
            v["a"] = json!(per_reader[*a].0);
            v["b"] = json!(per_reader[*b].0);
            v["p_holm"] = if adj.is_finite() {
                json!(adj)
            } else {
                Value::Null
            };
            v
        })
        .collect();
    let doc = json!({
        "reference": reference.display().to_string(),
        "images": stems.len(),
        "readers": readers_json,
        "tests": {
            "anova": test_json(f_oneway(&groups)),
            "kruskal": test_json(kruskal(&groups)),
            "friedman": test_json(friedman(&groups)),
            "pairwise_wilcoxon": pairwise,
        }
    });
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json_path = out.join("compare.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", json_path.display()))?;

    let mut md = format!(
        "# Reader study\n\nReference: `{}`, {} images. Per image: mean IoU and Dice over the foreground classes present in the reference or the reader's mask.\n\n| reader | mean IoU | mean Dice |\n| --- | --- | --- |\n",
        reference.display(),
        stems.len()
    );
    for (name, ious, dices) in &per_reader {
        let _ = writeln!(md, "| {name} | {:.4} | {:.4} |", mean(ious), mean(dices));
    }
    let t = &doc["tests"];
    let _ = writeln!(md, "\n| test | statistic | p |\n| --- | --- | --- |");
    for key in ["anova", "kruskal", "friedman"] {
        let _ = writeln!(
            md,
            "| {key} | {} | {} |",
            t[key]["statistic"], t[key]["p_value"]
        );
    }
    for p in t["pairwise_wilcoxon"].as_array().into_iter().flatten() {
        let _ = writeln!(
            md,
            "| Wilcoxon {} vs {} (Holm p {}) | {} | {} |",
            p["a"], p["b"], p["p_holm"], p["statistic"], p["p_value"]
        );
    }
    let groups: Vec<(String, Vec<f64>)> = per_reader
        .iter()
        .map(|(n, i, _)| (n.clone(), i.clone()))
        .collect();
    let svg = foramen_eval::plot::boxplot_svg("Per-image IoU by reader", "IoU", &groups);
    foramen_eval::plot::write_svg_png(&svg, out, "iou_boxplot")?;
    let _ = writeln!(md, "\n![Per-image IoU by reader](iou_boxplot.png)");
    std::fs::write(out.join("report.md"), md)?;
    say!(
        "compared {} reader(s) on {} images: {}",
        per_reader.len(),
        stems.len(),
        json_path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::image_scores;

    #[test]
    fn per_image_scores() {
        // Class 1: truth 2 px, pred 3 px, overlap 2 -> IoU 2/3, Dice 0.8. Class 2 only
        // in the prediction -> 0. 255 ignored.
        let truth = [1, 1, 0, 0, 255];
        let pred = [1, 1, 1, 2, 2];
        let (iou, dice) = image_scores(&truth, &pred);
        assert!((iou - (2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert!((dice - 0.4).abs() < 1e-12);
        assert_eq!(image_scores(&[0, 0], &[0, 0]), (1.0, 1.0));
    }
}
