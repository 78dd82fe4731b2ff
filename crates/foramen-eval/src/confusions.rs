//! The largest confusions of an evaluation and what each one costs: the mean IoU the
//! evaluation would have had, had those pixels been predicted right.
//!
//! The confusion matrix shows where a model errs; this says how much each error is worth
//! in the headline figure. One cell that holds most of the distance to a target usually
//! marks one boundary the model draws differently from the truth, often a labelling
//! convention of one sequence (vocalfolds' patient1/seq3 labels the dark lumen of the
//! intubation tube as glottal space, its training sequences label the whole tube as
//! intubation): worth knowing before more training is spent on it.

use serde_json::{Value, json};

use crate::ConfusionMatrix;
use crate::evaluation::IGNORE;
use crate::report::{EvalReport, num};

/// How many confusions `metrics.json` and `report.md` list.
pub const LISTED: usize = 5;

/// One off-diagonal cell of the confusion matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Confusion {
    /// The true class.
    pub truth: usize,
    /// The class predicted instead.
    pub predicted: usize,
    /// Pixels of `truth` predicted as `predicted`.
    pub pixels: u64,
    /// Those pixels over every scored pixel of `truth`.
    pub share_of_truth: f64,
    /// The mean IoU over the classes in the truth had these pixels been predicted right
    /// (the report's `mean (classes in the truth)`); `None` when nothing is scored.
    pub miou_if_right: Option<f64>,
}

/// The `count` largest off-diagonal cells of the report's matrix, largest first (ties
/// by truth, then prediction index). Rows of ignored classes are empty (their truth is
/// never scored), so they never appear, and the mean IoU over the classes present in the
/// truth leaves them out as [`crate::Average::Present`] does.
pub fn largest(report: &EvalReport, count: usize) -> Vec<Confusion> {
    let m = &report.matrix;
    let mut cells: Vec<(usize, usize, u64)> = (0..m.len())
        .flat_map(|t| (0..m.len()).map(move |p| (t, p)))
        .filter(|&(t, p)| t != p && m[t][p] > 0)
        .map(|(t, p)| (t, p, m[t][p]))
        .collect();
    cells.sort_by(|a, b| b.2.cmp(&a.2).then((a.0, a.1).cmp(&(b.0, b.1))));
    cells
        .into_iter()
        .take(count)
        .map(|(t, p, pixels)| {
            let mut fixed = ConfusionMatrix::from_rows(m, IGNORE);
            fixed.correct(t, p, pixels);
            Confusion {
                truth: t,
                predicted: p,
                pixels,
                share_of_truth: pixels as f64 / m[t].iter().sum::<u64>() as f64,
                miou_if_right: fixed.mean_iou_present(),
            }
        })
        .collect()
}

/// `metrics.json`'s `confusions`: the [`LISTED`] largest, by class name.
pub fn to_json(report: &EvalReport) -> Value {
    largest(report, LISTED)
        .iter()
        .map(|c| {
            json!({
                "truth": report.names[c.truth],
                "predicted": report.names[c.predicted],
                "pixels": c.pixels,
                "share_of_truth": c.share_of_truth,
                "miou_if_right": num(c.miou_if_right),
            })
        })
        .collect()
}

/// `report.md`'s section: the [`LISTED`] largest confusions as a table.
pub fn markdown(report: &EvalReport) -> String {
    let rows = largest(report, LISTED);
    if rows.is_empty() {
        return "\nNo pixel of the truth was predicted as another class.\n".into();
    }
    let mut md = String::from(
        "\nLargest confusions, and the mean IoU (classes in the truth) had those pixels been predicted right:\n\n| truth | predicted as | pixels | share of the truth class | mIoU if right |\n| --- | --- | --- | --- | --- |\n",
    );
    for c in rows {
        let miou = c.miou_if_right.map_or("n/a".into(), |v| format!("{v:.4}"));
        md.push_str(&format!(
            "| {} | {} | {} | {:.1} % | {miou} |\n",
            report.names[c.truth],
            report.names[c.predicted],
            c.pixels,
            100.0 * c.share_of_truth
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluation::{Evaluation, ImageResult};
    use std::path::Path;

    /// truth 0 0 0 0 1 1 1 1 1 1 2 2 3(void); prediction below.
    fn report() -> EvalReport {
        let names = ["bg", "a", "b", "void"].map(String::from).to_vec();
        let mut e = Evaluation::new(names, vec![false, false, false, true], false);
        e.add(ImageResult {
            stem: "x",
            image: Path::new("x.png"),
            mask: Path::new("x.png"),
            size: (13, 1),
            sequence: "s",
            truth: vec![0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 3],
            pred: vec![0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 0, 1],
            probs: None,
        })
        .expect("add");
        e.finish()
    }

    #[test]
    fn the_largest_cells_and_what_each_costs_by_hand() {
        let r = report();
        let got = largest(&r, 10);
        // a -> b: 3 pixels; bg -> a and b -> bg: 1 each (ties by truth index); the void
        // pixel predicted as a is not scored.
        let cells: Vec<_> = got
            .iter()
            .map(|c| (c.truth, c.predicted, c.pixels))
            .collect();
        assert_eq!(cells, vec![(1, 2, 3), (0, 1, 1), (2, 0, 1)]);
        assert!((got[0].share_of_truth - 0.5).abs() < 1e-12);
        // As scored: IoU bg 3/5, a 3/7, b 1/5. With a -> b right: a 6/7, b 1/2, bg 3/5.
        let as_scored = r.average(crate::Average::Present, "iou").expect("mean");
        assert!((as_scored - (3.0 / 5.0 + 3.0 / 7.0 + 1.0 / 5.0) / 3.0).abs() < 1e-12);
        let fixed = got[0].miou_if_right.expect("mean");
        assert!((fixed - (3.0 / 5.0 + 6.0 / 7.0 + 1.0 / 2.0) / 3.0).abs() < 1e-12);
        assert_eq!(largest(&r, 1).len(), 1);
    }

    #[test]
    fn json_and_markdown_name_the_classes() {
        let r = report();
        let doc = to_json(&r);
        assert_eq!(doc[0]["truth"], "a");
        assert_eq!(doc[0]["predicted"], "b");
        assert_eq!(doc[0]["pixels"], 3);
        let md = markdown(&r);
        assert!(md.contains("| a | b | 3 | 50.0 % | 0.6524 |"), "{md}");
    }
}
