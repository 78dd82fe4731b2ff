//! The evaluation by sequence (one video, one procedure): each sequence's own confusion
//! matrix, and from it its mean IoU, pixel accuracy and per-class IoU.
//!
//! One figure over a whole list hides a sequence that disagrees with the others: a new
//! tower, a new patient, or a labelling convention of its own (vocalfolds' patient1/seq3
//! scores 0.78 where patient2/seq6 scores 0.87: seq3 labels the lumen of the intubation
//! tube as glottal space, the training sequences label the whole tube as intubation).
//! The study reports per procedure too; this is that table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::ConfusionMatrix;
use crate::evaluation::IGNORE;
use crate::report::{EvalReport, num};

/// What one sequence accumulated.
#[derive(Clone, Debug)]
pub(crate) struct SequenceTally {
    /// Images of the sequence.
    pub images: usize,
    /// Its pixels, rows truth, columns prediction (ignored classes left out).
    pub cm: ConfusionMatrix,
}

impl SequenceTally {
    pub(crate) fn new(classes: usize) -> Self {
        Self {
            images: 0,
            cm: ConfusionMatrix::new(classes, IGNORE),
        }
    }
}

/// One sequence's figures.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceReport {
    /// The sequence (the caller's name for it: a folder, a video).
    pub name: String,
    /// Images scored.
    pub images: usize,
    /// Mean IoU over the classes in the sequence's truth.
    pub miou: Option<f64>,
    /// Correct pixels over scored pixels.
    pub pixel_accuracy: Option<f64>,
    /// Per-class IoU (`None` where the class is neither in the truth nor predicted).
    pub iou: Vec<Option<f64>>,
    /// Per-class truth pixels.
    pub support: Vec<u64>,
}

/// The reports of every sequence, by name.
pub(crate) fn reports(tallies: &BTreeMap<String, SequenceTally>) -> Vec<SequenceReport> {
    tallies
        .iter()
        .map(|(name, t)| {
            let c = t.cm.classes();
            let metrics: Vec<_> = (0..c).map(|k| t.cm.class_metrics(k)).collect();
            SequenceReport {
                name: name.clone(),
                images: t.images,
                miou: t.cm.mean_iou_present(),
                pixel_accuracy: t.cm.pixel_accuracy(),
                iou: metrics.iter().map(|m| m.iou).collect(),
                support: metrics.iter().map(|m| m.support).collect(),
            }
        })
        .collect()
}

/// `metrics.json`'s `sequences`: one object per sequence, IoU by class name (ignored
/// classes left out; null for a class not in that sequence's truth).
pub fn to_json(r: &EvalReport) -> Value {
    let rows: Vec<Value> = r
        .sequences
        .iter()
        .map(|s| {
            let iou: serde_json::Map<String, Value> = (0..r.names.len())
                .filter(|&k| !r.ignored[k])
                .map(|k| {
                    (
                        r.names[k].clone(),
                        num(s.iou[k].filter(|_| s.support[k] > 0)),
                    )
                })
                .collect();
            json!({"name": s.name, "images": s.images, "miou": num(s.miou),
                   "pixel_accuracy": num(s.pixel_accuracy), "iou": iou})
        })
        .collect();
    Value::Array(rows)
}

/// `report.md`'s table by sequence; empty with fewer than two sequences (the table would
/// repeat the totals).
pub fn markdown(r: &EvalReport) -> String {
    if r.sequences.len() < 2 {
        return String::new();
    }
    let classes: Vec<usize> = (0..r.names.len()).filter(|&k| !r.ignored[k]).collect();
    let cell = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.4}"));
    let mut md = String::from(
        "\nBy sequence (mean IoU over the classes in that sequence's truth; a class it does not hold: -):\n\n| sequence | images | mIoU | pixel accuracy |",
    );
    for &k in &classes {
        let _ = write!(md, " {} |", r.names[k]);
    }
    md.push_str(&format!("\n|{}\n", " --- |".repeat(4 + classes.len())));
    for s in &r.sequences {
        let _ = write!(
            md,
            "| {} | {} | {} | {} |",
            s.name,
            s.images,
            cell(s.miou),
            cell(s.pixel_accuracy)
        );
        for &k in &classes {
            // A class only predicted there (no truth pixel) scores 0 but is not averaged.
            let _ = write!(md, " {} |", cell(s.iou[k].filter(|_| s.support[k] > 0)));
        }
        md.push('\n');
    }
    md
}

#[cfg(test)]
mod tests {
    use crate::evaluation::{Evaluation, ImageResult};
    use std::path::Path;

    /// Two sequences: `a` with two images, `b` with one; class 3 is void (ignored).
    fn report(sequences: &[&str]) -> crate::EvalReport {
        let names = ["bg", "x", "y", "void"].map(String::from).to_vec();
        let mut e = Evaluation::new(names, vec![false, false, false, true], false);
        let images: [(&[u8], &[u8]); 3] = [
            (&[0, 0, 1, 1], &[0, 1, 1, 1]),
            (&[0, 1, 1, 3], &[0, 1, 0, 2]),
            (&[0, 2, 2, 2], &[0, 2, 2, 1]),
        ];
        for (i, ((truth, pred), seq)) in images.iter().zip(sequences).enumerate() {
            e.add(ImageResult {
                stem: &format!("f{i}"),
                image: Path::new("i.png"),
                mask: Path::new("m.png"),
                size: (4, 1),
                sequence: seq,
                truth: truth.to_vec(),
                pred: pred.to_vec(),
                probs: None,
            })
            .expect("add");
        }
        e.finish()
    }

    #[test]
    fn each_sequence_is_scored_on_its_own_pixels() {
        let r = report(&["a", "a", "b"]);
        let [a, b] = [&r.sequences[0], &r.sequences[1]];
        assert_eq!(
            (a.name.as_str(), a.images, b.name.as_str(), b.images),
            ("a", 2, "b", 1)
        );
        // a: truth bg bg x x | bg x x (void): bg 2/3 right, x 3/4 (one x called bg);
        // bg IoU 2/(3+1) = 0.5, x IoU 3/(4+1) = 0.6; y predicted once over void: not
        // counted. Mean over the classes in a's truth: 0.55; pixels 5 of 7 right.
        assert_eq!(a.iou[0], Some(0.5));
        assert_eq!(a.iou[1], Some(0.6));
        assert_eq!(a.support, vec![3, 4, 0, 0]);
        assert!((a.miou.expect("miou") - 0.55).abs() < 1e-12);
        assert_eq!(a.pixel_accuracy, Some(5.0 / 7.0));
        // b: bg right; y 2 of 3 right, one called x: x IoU 0/1 = 0 but x is not in b's truth.
        assert_eq!(b.iou[1], Some(0.0));
        assert!((b.miou.expect("miou") - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // The sequences' supports add up to the whole evaluation's.
        for k in 0..4 {
            assert_eq!(a.support[k] + b.support[k], r.metrics[k].support);
        }
        let doc = r.to_json();
        assert_eq!(doc["sequences"][1]["name"], "b");
        assert!(
            doc["sequences"][1]["iou"]["x"].is_null(),
            "x is not in b's truth"
        );
        assert!(doc["sequences"][1]["iou"].get("void").is_none());
        let md = r.markdown("val.txt");
        assert!(
            md.contains("| sequence | images | mIoU | pixel accuracy | bg | x | y |"),
            "{md}"
        );
        assert!(
            md.contains("| a | 2 | 0.5500 | 0.7143 | 0.5000 | 0.6000 | - |"),
            "{md}"
        );
        assert!(
            md.contains("| b | 1 | 0.8333 | 0.7500 | 1.0000 | - | 0.6667 |"),
            "{md}"
        );
    }

    #[test]
    fn one_sequence_gets_no_table() {
        let r = report(&["a", "a", "a"]);
        assert_eq!(r.sequences.len(), 1);
        assert_eq!(r.sequences[0].images, 3);
        assert!(!r.markdown("val.txt").contains("By sequence"));
    }
}
