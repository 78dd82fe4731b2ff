//! The typed result of an evaluation: per-class metrics, averages, the confusion matrix,
//! ROC curves, temporal stability and the worst images, written as `metrics.json` and as
//! the Markdown table of `report.md` from the same values.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::evaluation::WorstImage;
use crate::sequences::SequenceReport;
use crate::{BinnedRoc, ClassMetrics};

/// The metrics every class row and average gives, in column order.
pub const FIELDS: [&str; 6] = ["precision", "recall", "accuracy", "iou", "dice", "auc"];

/// What an evaluation measured.
#[derive(Clone, Debug)]
pub struct EvalReport {
    /// Class names in index order.
    pub names: Vec<String>,
    /// Classes whose truth pixels were left out.
    pub ignored: Vec<bool>,
    /// Images scored.
    pub images: usize,
    /// Per-class precision, recall, accuracy, IoU, Dice and support.
    pub metrics: Vec<ClassMetrics>,
    /// Per-class one-vs-rest ROC AUC (none without probabilities).
    pub aucs: Vec<Option<f64>>,
    /// The ROC histograms (empty without probabilities).
    pub rocs: Vec<BinnedRoc>,
    /// Pixel counts, rows truth, columns prediction.
    pub matrix: Vec<Vec<u64>>,
    /// Correct pixels over scored pixels.
    pub pixel_accuracy: Option<f64>,
    /// Predicted class changes between consecutive frames where the truth held.
    pub flip_rate: Option<f64>,
    /// Pixels the flip rate is over.
    pub stable_pixels: u64,
    /// The worst images by mean IoU, worst first.
    pub worst: Vec<WorstImage>,
    /// Each sequence's figures, by name.
    pub sequences: Vec<SequenceReport>,
}

/// Which classes an average is over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Average {
    /// Every class with a defined value (a class absent from the truth but predicted
    /// scores IoU 0 there).
    All,
    /// Every class but the background (index 0).
    Foreground,
    /// Only the classes present in the truth: the "mIoU over the classes present" of
    /// training logs and model cards.
    Present,
}

impl Average {
    /// Every average, with its JSON key and report label.
    pub const ALL: [(Average, &'static str, &'static str); 3] = [
        (Average::All, "mean", "mean"),
        (Average::Foreground, "mean_foreground", "mean (foreground)"),
        (
            Average::Present,
            "mean_present",
            "mean (classes in the truth)",
        ),
    ];
}

/// A JSON number, or null for a missing or non-finite value.
pub(crate) fn num(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite())
        .map_or(Value::Null, |x| json!(x))
}

fn cell(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map_or("n/a".to_string(), |x| format!("{x:.4}"))
}

impl EvalReport {
    /// Class `k`'s value of `field` (one of [`FIELDS`]).
    pub fn value(&self, k: usize, field: &str) -> Option<f64> {
        let m = &self.metrics[k];
        match field {
            "precision" => m.precision,
            "recall" => m.recall,
            "accuracy" => m.accuracy,
            "iou" => m.iou,
            "dice" => m.dice,
            _ => self.aucs[k],
        }
    }

    /// The average of `field` over the classes `which` selects, ignored classes never.
    pub fn average(&self, which: Average, field: &str) -> Option<f64> {
        let from = usize::from(which == Average::Foreground);
        let vals: Vec<f64> = (from..self.names.len())
            .filter(|&k| !self.ignored[k])
            .filter(|&k| which != Average::Present || self.metrics[k].support > 0)
            .filter_map(|k| self.value(k, field))
            .collect();
        (!vals.is_empty()).then(|| vals.iter().sum::<f64>() / vals.len() as f64)
    }

    /// The names of the ignored classes.
    pub fn ignored_names(&self) -> Vec<&str> {
        (0..self.names.len())
            .filter(|&k| self.ignored[k])
            .map(|k| self.names[k].as_str())
            .collect()
    }

    /// `metrics.json`.
    pub fn to_json(&self) -> Value {
        let fields = |get: &dyn Fn(&str) -> Option<f64>| -> serde_json::Map<String, Value> {
            FIELDS
                .iter()
                .map(|f| (f.to_string(), num(get(f))))
                .collect()
        };
        let per_class: serde_json::Map<String, Value> = (0..self.names.len())
            .map(|k| {
                let mut o = fields(&|f| self.value(k, f));
                o.insert("support".into(), json!(self.metrics[k].support));
                o.insert("ignored".into(), json!(self.ignored[k]));
                (self.names[k].clone(), Value::Object(o))
            })
            .collect();
        let mut doc = json!({
            "classes": self.names,
            "ignored_classes": self.ignored_names(),
            "images": self.images,
            "confusion_matrix": self.matrix,
            "per_class": per_class,
            "pixel_accuracy": num(self.pixel_accuracy),
            "temporal": {"flip_rate": num(self.flip_rate), "pixels": self.stable_pixels},
            "confusions": crate::confusions::to_json(self),
            "sequences": crate::sequences::to_json(self),
        });
        for (which, key, _) in Average::ALL {
            doc[key] = Value::Object(fields(&|f| self.average(which, f)));
        }
        doc
    }

    /// The head of `report.md`: what was evaluated, the ignored classes, the per-class
    /// table with the averages, pixel accuracy, the flip rate, the largest confusions and
    /// the table by sequence.
    pub fn markdown(&self, list: &str) -> String {
        let ignored = self.ignored_names();
        let ignored_line = if ignored.is_empty() {
            String::new()
        } else {
            format!(
                "Ignored classes: {}. Their truth pixels are left out of every figure, as Cityscapes and CamVid treat void; their rows show what was predicted elsewhere. `--no-ignore` scores them.\n\n",
                ignored.join(", ")
            )
        };
        let mut md = format!(
            "# Evaluation\n\n{} images of `{list}`.\n\n{ignored_line}| class | precision | recall | accuracy | IoU | Dice | AUC | support |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n",
            self.images
        );
        for (k, name) in self.names.iter().enumerate() {
            let cells: Vec<String> = FIELDS.iter().map(|f| cell(self.value(k, f))).collect();
            let support = self.metrics[k].support;
            let _ = writeln!(md, "| {name} | {} | {support} |", cells.join(" | "));
        }
        for (which, _, label) in Average::ALL {
            let cells: Vec<String> = FIELDS
                .iter()
                .map(|f| cell(self.average(which, f)))
                .collect();
            let _ = writeln!(md, "| **{label}** | {} | |", cells.join(" | "));
        }
        let _ = writeln!(
            md,
            "\nPixel accuracy {}. Temporal flip rate (predicted class changes between consecutive frames where the truth did not): {}.",
            cell(self.pixel_accuracy),
            cell(self.flip_rate)
        );
        md.push_str(&crate::confusions::markdown(self));
        md.push_str(&crate::sequences::markdown(self));
        md
    }

    /// The one-line summary: mIoU over every class, the foreground, the classes present.
    pub fn summary(&self) -> String {
        let iou = |w| cell(self.average(w, "iou"));
        format!(
            "evaluated {} images: mIoU {} (foreground {}, classes in the truth {})",
            self.images,
            iou(Average::All),
            iou(Average::Foreground),
            iou(Average::Present)
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::evaluation::{Evaluation, ImageResult};
    use std::path::Path;

    fn report() -> super::EvalReport {
        let names = vec!["bg".to_string(), "a".into(), "b".into(), "void".into()];
        let mut e = Evaluation::new(names, vec![false, false, false, true], false);
        let r = ImageResult {
            stem: "x",
            image: Path::new("x.png"),
            mask: Path::new("x.png"),
            size: (6, 1),
            sequence: "s",
            truth: vec![0, 0, 1, 1, 3, 3],
            pred: vec![0, 1, 1, 1, 2, 0],
            probs: None,
        };
        e.add(r).expect("add");
        e.finish()
    }

    #[test]
    fn averages_skip_ignored_classes_and_present_skips_absent_ones() {
        let r = report();
        // IoU: bg 1/2, a 2/3, b 0 (predicted only where void was: not counted, so 0/0).
        assert_eq!(r.value(0, "iou"), Some(0.5));
        assert_eq!(r.value(2, "iou"), None);
        let all = r.average(super::Average::All, "iou").expect("mean");
        assert!((all - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        let fg = r.average(super::Average::Foreground, "iou").expect("fg");
        assert!((fg - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.average(super::Average::All, "auc"), None);
    }

    #[test]
    fn json_and_markdown_give_the_same_values() {
        let r = report();
        let doc = r.to_json();
        assert_eq!(doc["ignored_classes"], serde_json::json!(["void"]));
        assert_eq!(doc["per_class"]["a"]["support"], 2);
        assert_eq!(doc["per_class"]["void"]["ignored"], true);
        assert_eq!(
            doc["mean_foreground"]["iou"]
                .as_f64()
                .map(|v| (v * 1e4).round()),
            Some(6667.0)
        );
        assert!(doc["per_class"]["bg"]["auc"].is_null());
        let md = r.markdown("val.txt");
        assert!(md.starts_with("# Evaluation\n\n1 images of `val.txt`.\n\nIgnored classes: void."));
        assert!(
            md.contains("| a | 0.6667 | 1.0000 | 0.7500 | 0.6667 | 0.8000 | n/a | 2 |"),
            "{md}"
        );
        assert!(md.contains("| **mean (foreground)** | "), "{md}");
        assert!(
            r.summary().starts_with("evaluated 1 images: mIoU 0.5833"),
            "{}",
            r.summary()
        );
    }
}
