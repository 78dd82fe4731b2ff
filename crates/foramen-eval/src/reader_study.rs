//! The reader study: per-image agreement of each reader (a surgeon, or the model) with a
//! reference, and the tests of whether the readers differ, as JSON and Markdown.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::TestResult;
use crate::stats::{f_oneway, friedman, holm, kruskal, wilcoxon};

/// Mask value that is never scored.
const IGNORE: u8 = 255;

/// Per-image agreement of `pred` with `truth`, per foreground class (index >= 1)
/// present in either mask: (class, IoU, Dice), in class order.
pub fn image_class_scores(truth: &[u8], pred: &[u8]) -> Vec<(u8, f64, f64)> {
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
    (1..255u8)
        .filter(|&c| in_truth[c as usize] + in_pred[c as usize] > 0)
        .map(|c| {
            let (t, p, both) = (in_truth[c as usize], in_pred[c as usize], tp[c as usize]);
            let iou = both as f64 / (t + p - both) as f64;
            (c, iou, 2.0 * both as f64 / (t + p) as f64)
        })
        .collect()
}

/// Per-image agreement of `pred` with `truth`: IoU and Dice per foreground class
/// (index >= 1) present in either mask, averaged. When neither mask has any
/// foreground the two agree completely and both values are 1.
pub fn image_scores(truth: &[u8], pred: &[u8]) -> (f64, f64) {
    mean_scores(&image_class_scores(truth, pred))
}

fn mean_scores(per_class: &[(u8, f64, f64)]) -> (f64, f64) {
    if per_class.is_empty() {
        return (1.0, 1.0);
    }
    let n = per_class.len() as f64;
    let iou = per_class.iter().map(|c| c.1).sum::<f64>() / n;
    (iou, per_class.iter().map(|c| c.2).sum::<f64>() / n)
}

/// Parses a `--reader NAME=DIR`.
pub fn parse_reader(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(format!("reader {s:?} is not NAME=DIR")),
    }
}

/// One class's agreement summed over the images where it is in the reference or the
/// reader's mask.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ClassScore {
    /// Sum of the per-image IoUs.
    pub iou_sum: f64,
    /// Sum of the per-image Dices.
    pub dice_sum: f64,
    /// Images counted.
    pub images: usize,
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
    /// Per foreground class, over the images where it occurs.
    pub classes: BTreeMap<u8, ClassScore>,
}

impl ReaderScores {
    /// Scores one more image: the reader's mask `pred` against the reference's.
    pub fn add_image(&mut self, truth: &[u8], pred: &[u8]) {
        let per_class = image_class_scores(truth, pred);
        for &(c, iou, dice) in &per_class {
            let s = self.classes.entry(c).or_default();
            s.iou_sum += iou;
            s.dice_sum += dice;
            s.images += 1;
        }
        let (iou, dice) = mean_scores(&per_class);
        self.ious.push(iou);
        self.dices.push(dice);
    }
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
    /// Class names by index (empty: classes are named by index).
    pub class_names: Vec<String>,
    /// Where the names came from (`--classes`, a `dataset.toml`, `indices`).
    pub names_from: String,
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
            class_names: Vec::new(),
            names_from: "indices".into(),
        }
    }

    /// Names the classes in the report, checking that every class in the masks has a
    /// name; `names` empty: by index.
    pub fn with_class_names(mut self, names: Vec<String>, from: &str) -> Result<Self, String> {
        if !names.is_empty()
            && let Some(c) = self
                .classes()
                .into_iter()
                .find(|&c| c as usize >= names.len())
        {
            return Err(format!(
                "class {c} is in the masks but {from} names only classes 0-{} ({})",
                names.len() - 1,
                names.join(",")
            ));
        }
        self.class_names = names;
        self.names_from = from.to_string();
        Ok(self)
    }

    /// The foreground classes in any reader's or the reference's masks.
    pub fn classes(&self) -> BTreeSet<u8> {
        let per_reader = self.readers.iter().flat_map(|r| r.classes.keys());
        per_reader.copied().collect()
    }

    /// A class's name, else its index.
    pub fn class_name(&self, c: u8) -> String {
        self.class_names
            .get(c as usize)
            .cloned()
            .unwrap_or_else(|| c.to_string())
    }

    fn per_class_json(&self, r: &ReaderScores) -> Value {
        let per_class: serde_json::Map<String, Value> = r
            .classes
            .iter()
            .map(|(&c, s)| {
                let n = s.images as f64;
                let v = json!({"mean_iou": s.iou_sum / n, "mean_dice": s.dice_sum / n, "images": s.images});
                (self.class_name(c), v)
            })
            .collect();
        Value::Object(per_class)
    }

    /// The per-class table of `report.md`: mean IoU per reader and class.
    fn per_class_markdown(&self, md: &mut String) {
        let classes = self.classes();
        let names: Vec<String> = classes.iter().map(|&c| self.class_name(c)).collect();
        let from = if self.class_names.is_empty() {
            "classes by index".to_string()
        } else {
            format!("names from `{}`", self.names_from)
        };
        let _ = writeln!(
            md,
            "\nPer class ({from}): mean IoU over the images where the class is in the reference or the reader's mask.\n\n| reader | {} |\n| --- |{}",
            names.join(" | "),
            " --- |".repeat(names.len())
        );
        for r in &self.readers {
            let cells: Vec<String> = classes
                .iter()
                .map(|c| {
                    r.classes.get(c).map_or("-".into(), |s| {
                        format!("{:.4}", s.iou_sum / s.images as f64)
                    })
                })
                .collect();
            let _ = writeln!(md, "| {} | {} |", r.name, cells.join(" | "));
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
                let v = json!({"mean_iou": mean(&r.ious), "mean_dice": mean(&r.dices), "per_image_iou": per_image, "per_class": self.per_class_json(r)});
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
            "classes": {"names_from": self.names_from, "names": self.class_names},
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
        self.per_class_markdown(&mut md);
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
        let per_class = image_class_scores(&truth, &pred);
        assert_eq!(per_class.len(), 2);
        assert_eq!((per_class[1].0, per_class[1].1), (2, 0.0));
    }

    #[test]
    fn per_class_scores_are_named_from_the_names_given_else_by_index() {
        let mut r = ReaderScores {
            name: "model".into(),
            ..ReaderScores::default()
        };
        r.add_image(&[1, 1, 2, 0], &[1, 1, 2, 2]); // 1: IoU 1; 2: IoU 1/2
        r.add_image(&[1, 1, 0, 0], &[1, 0, 0, 0]); // 1: IoU 1/2
        assert_eq!(r.ious, [0.75, 0.5]);
        assert_eq!(r.classes[&1].images, 2);
        assert!((r.classes[&1].iou_sum - 1.5).abs() < 1e-12);
        let images = vec!["a".to_string(), "b".to_string()];
        let study = ReaderStudy::new(images, vec![r]);
        let md = study.markdown("ref");
        assert!(
            md.contains("(classes by index)") && md.contains("| reader | 1 | 2 |"),
            "{md}"
        );
        assert!(md.contains("| model | 0.7500 | 0.5000 |"), "{md}");
        let named = |n: &[&str]| {
            let names = n.iter().map(|s| s.to_string()).collect();
            study.clone().with_class_names(names, "--classes")
        };
        let err = named(&["bg", "bone"]).expect_err("class 2 has no name");
        assert!(
            err.contains("class 2") && err.contains("--classes names only classes 0-1"),
            "{err}"
        );
        let study = named(&["bg", "bone", "disc"]).expect("named");
        assert!(study.markdown("ref").contains("| reader | bone | disc |"));
        let doc = study.to_json("ref");
        assert_eq!(doc["readers"]["model"]["per_class"]["disc"]["images"], 1);
        assert_eq!(doc["classes"]["names_from"], "--classes");
    }

    #[test]
    fn three_readers_give_three_pairs_and_the_report_names_them() {
        let reader = |name: &str, ious: [f64; 5]| ReaderScores {
            name: name.into(),
            ious: ious.to_vec(),
            dices: ious.iter().map(|i| 2.0 * i / (1.0 + i)).collect(),
            ..ReaderScores::default()
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
