//! The reader study: per-image agreement of each reader (a surgeon, or the model) with a
//! reference, and the tests of whether the readers differ, as JSON and Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::TestResult;
use crate::stats::{f_oneway, friedman, holm, kruskal, wilcoxon};

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

/// One reader's per-image scores, in the reference's image order.
#[derive(Clone, Debug, Default)]
pub struct ReaderScores {
    /// The reader's name.
    pub name: String,
    /// IoU per image.
    pub ious: Vec<f64>,
    /// Dice per image.
    pub dices: Vec<f64>,
}

/// A pairwise Wilcoxon signed-rank test between two readers' IoUs.
#[derive(Clone, Copy, Debug)]
pub struct Pairwise {
    /// First reader's index.
    pub a: usize,
    /// Second reader's index.
    pub b: usize,
    /// The test.
    pub test: TestResult,
    /// Its p value after Holm's correction over all pairs.
    pub p_holm: f64,
}

/// The readers and the tests between them.
#[derive(Clone, Debug)]
pub struct ReaderStudy {
    /// Image names (the reference masks' stems).
    pub images: Vec<String>,
    /// Each reader's scores.
    pub readers: Vec<ReaderScores>,
    /// One-way ANOVA over the readers' IoUs.
    pub anova: TestResult,
    /// Kruskal-Wallis.
    pub kruskal: TestResult,
    /// Friedman (images as blocks).
    pub friedman: TestResult,
    /// Every pair of readers.
    pub pairwise: Vec<Pairwise>,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn num(v: f64) -> Value {
    crate::report::num(Some(v))
}

fn test_json(r: TestResult) -> Value {
    json!({"statistic": num(r.statistic), "p_value": num(r.p_value)})
}

impl ReaderStudy {
    /// Runs the tests on the readers' IoUs.
    pub fn new(images: Vec<String>, readers: Vec<ReaderScores>) -> Self {
        let groups: Vec<&[f64]> = readers.iter().map(|r| r.ious.as_slice()).collect();
        let mut pairs = Vec::new();
        for a in 0..readers.len() {
            for b in a + 1..readers.len() {
                pairs.push((a, b, wilcoxon(&readers[a].ious, &readers[b].ious)));
            }
        }
        let adjusted = holm(&pairs.iter().map(|p| p.2.p_value).collect::<Vec<_>>());
        let pairwise = pairs
            .into_iter()
            .zip(adjusted)
            .map(|((a, b, test), p_holm)| Pairwise { a, b, test, p_holm })
            .collect();
        Self {
            anova: f_oneway(&groups),
            kruskal: kruskal(&groups),
            friedman: friedman(&groups),
            images,
            readers,
            pairwise,
        }
    }

    /// `compare.json`.
    pub fn to_json(&self, reference: &str) -> Value {
        let readers: serde_json::Map<String, Value> = self
            .readers
            .iter()
            .map(|r| {
                let per_image: BTreeMap<&str, f64> = self
                    .images
                    .iter()
                    .map(String::as_str)
                    .zip(r.ious.iter().copied())
                    .collect();
                let v = json!({"mean_iou": mean(&r.ious), "mean_dice": mean(&r.dices), "per_image_iou": per_image});
                (r.name.clone(), v)
            })
            .collect();
        let pairwise: Vec<Value> = self
            .pairwise
            .iter()
            .map(|p| {
                let mut v = test_json(p.test);
                v["a"] = json!(self.readers[p.a].name);
                v["b"] = json!(self.readers[p.b].name);
                v["p_holm"] = num(p.p_holm);
                v
            })
            .collect();
        json!({
            "reference": reference,
            "images": self.images.len(),
            "readers": readers,
            "tests": {
                "anova": test_json(self.anova),
                "kruskal": test_json(self.kruskal),
                "friedman": test_json(self.friedman),
                "pairwise_wilcoxon": pairwise,
            }
        })
    }

    /// `report.md` without its figure: the readers' means and the tests.
    pub fn markdown(&self, reference: &str) -> String {
        let mut md = format!(
            "# Reader study\n\nReference: `{reference}`, {} images. Per image: mean IoU and Dice over the foreground classes present in the reference or the reader's mask.\n\n| reader | mean IoU | mean Dice |\n| --- | --- | --- |\n",
            self.images.len()
        );
        for r in &self.readers {
            let _ = writeln!(
                md,
                "| {} | {:.4} | {:.4} |",
                r.name,
                mean(&r.ious),
                mean(&r.dices)
            );
        }
        let _ = writeln!(md, "\n| test | statistic | p |\n| --- | --- | --- |");
        for (key, t) in [
            ("anova", self.anova),
            ("kruskal", self.kruskal),
            ("friedman", self.friedman),
        ] {
            let _ = writeln!(md, "| {key} | {} | {} |", num(t.statistic), num(t.p_value));
        }
        for p in &self.pairwise {
            let _ = writeln!(
                md,
                "| Wilcoxon {} vs {} (Holm p {}) | {} | {} |",
                json!(self.readers[p.a].name),
                json!(self.readers[p.b].name),
                num(p.p_holm),
                num(p.test.statistic),
                num(p.test.p_value)
            );
        }
        md
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn three_readers_give_three_pairs_and_the_report_names_them() {
        let reader = |name: &str, ious: [f64; 5]| ReaderScores {
            name: name.into(),
            ious: ious.to_vec(),
            dices: ious.iter().map(|i| 2.0 * i / (1.0 + i)).collect(),
        };
        let images: Vec<String> = (0..5).map(|i| format!("f{i}")).collect();
        let study = ReaderStudy::new(
            images,
            vec![
                reader("model", [0.6, 0.7, 0.65, 0.5, 0.8]),
                reader("senior", [0.62, 0.71, 0.6, 0.55, 0.79]),
                reader("junior", [0.4, 0.5, 0.45, 0.3, 0.6]),
            ],
        );
        assert_eq!(study.pairwise.len(), 3);
        assert!(study.pairwise.iter().all(|p| p.p_holm >= p.test.p_value));
        let doc = study.to_json("ref");
        assert_eq!(doc["images"], 5);
        assert_eq!(doc["readers"]["junior"]["per_image_iou"]["f3"], 0.3);
        assert!((doc["readers"]["model"]["mean_iou"].as_f64().unwrap_or(0.0) - 0.65).abs() < 1e-12);
        let md = study.markdown("ref");
        assert!(md.contains("| model | 0.6500 |"), "{md}");
        assert!(
            md.contains("| Wilcoxon \"model\" vs \"senior\" (Holm p "),
            "{md}"
        );
    }
}
