//! The pixel confusion matrix and the per-class metrics derived from it.

/// Per-class metrics from a confusion matrix; `None` where the ratio is 0/0.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassMetrics {
    /// TP / (TP + FP).
    pub precision: Option<f64>,
    /// TP / (TP + FN).
    pub recall: Option<f64>,
    /// One-vs-rest accuracy: (TP + TN) / all.
    pub accuracy: Option<f64>,
    /// TP / (TP + FP + FN).
    pub iou: Option<f64>,
    /// 2 TP / (2 TP + FP + FN).
    pub dice: Option<f64>,
    /// Pixels of this class in the truth.
    pub support: u64,
}

/// Pixel counts, rows = truth, columns = prediction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfusionMatrix {
    pub(crate) n: usize,
    pub(crate) counts: Vec<u64>,
    pub(crate) ignore: u8,
}

/// Errors adding masks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EvalError {
    /// Truth and prediction differ in size.
    #[error("truth has {truth} pixels, prediction {pred}")]
    SizeMismatch {
        /// Truth pixels.
        truth: usize,
        /// Prediction pixels.
        pred: usize,
    },
    /// A class index outside the class list (and not the ignore index).
    #[error("{which} holds class {value}, but there are only {classes} classes")]
    ClassOutOfRange {
        /// `truth` or `prediction`.
        which: &'static str,
        /// The value found.
        value: u8,
        /// Number of classes.
        classes: usize,
    },
}

impl ConfusionMatrix {
    /// An empty matrix for `classes` classes; truth pixels equal to `ignore` are skipped.
    pub fn new(classes: usize, ignore: u8) -> Self {
        Self {
            n: classes,
            counts: vec![0; classes * classes],
            ignore,
        }
    }

    /// Adds one mask pair.
    pub fn add(&mut self, truth: &[u8], pred: &[u8]) -> Result<(), EvalError> {
        if truth.len() != pred.len() {
            return Err(EvalError::SizeMismatch {
                truth: truth.len(),
                pred: pred.len(),
            });
        }
        for (&t, &p) in truth.iter().zip(pred) {
            if t == self.ignore {
                continue;
            }
            for (which, v) in [("truth", t), ("prediction", p)] {
                if v as usize >= self.n {
                    return Err(EvalError::ClassOutOfRange {
                        which,
                        value: v,
                        classes: self.n,
                    });
                }
            }
            self.counts[t as usize * self.n + p as usize] += 1;
        }
        Ok(())
    }

    /// A matrix from its rows (truth) of per-prediction counts, as `EvalReport::matrix`
    /// holds them.
    pub(crate) fn from_rows(rows: &[Vec<u64>], ignore: u8) -> Self {
        Self {
            n: rows.len(),
            counts: rows.concat(),
            ignore,
        }
    }

    /// Moves `pixels` of truth `t` from prediction `p` to the diagonal: what the matrix
    /// would be had they been predicted right.
    pub(crate) fn correct(&mut self, t: usize, p: usize, pixels: u64) {
        self.counts[t * self.n + p] -= pixels;
        self.counts[t * self.n + t] += pixels;
    }

    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.n
    }

    /// Adds another matrix of the same classes, cell by cell.
    pub(crate) fn add_counts(&mut self, other: &ConfusionMatrix) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Count of pixels with truth `t` predicted as `p`.
    pub fn get(&self, t: usize, p: usize) -> u64 {
        self.counts[t * self.n + p]
    }

    /// All counted pixels.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Metrics of class `c`.
    pub fn class_metrics(&self, c: usize) -> ClassMetrics {
        let tp = self.get(c, c);
        let fn_: u64 = (0..self.n).map(|p| self.get(c, p)).sum::<u64>() - tp;
        let fp: u64 = (0..self.n).map(|t| self.get(t, c)).sum::<u64>() - tp;
        let all = self.total();
        let tn = all - tp - fp - fn_;
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        ClassMetrics {
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            accuracy: ratio(tp + tn, all),
            iou: ratio(tp, tp + fp + fn_),
            dice: ratio(2 * tp, 2 * tp + fp + fn_),
            support: tp + fn_,
        }
    }

    /// Fraction of counted pixels predicted correctly.
    pub fn pixel_accuracy(&self) -> Option<f64> {
        let correct: u64 = (0..self.n).map(|c| self.get(c, c)).sum();
        let all = self.total();
        (all > 0).then(|| correct as f64 / all as f64)
    }

    /// Mean IoU over the classes present in the truth.
    pub fn mean_iou_present(&self) -> Option<f64> {
        let ious: Vec<f64> = (0..self.n)
            .map(|c| self.class_metrics(c))
            .filter(|m| m.support > 0)
            .filter_map(|m| m.iou)
            .collect();
        (!ious.is_empty()).then(|| ious.iter().sum::<f64>() / ious.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_example() {
        // truth:      0 0 1 1 2 255
        // prediction: 0 1 1 1 0 2
        let mut cm = ConfusionMatrix::new(3, 255);
        cm.add(&[0, 0, 1, 1, 2, 255], &[0, 1, 1, 1, 0, 2])
            .expect("add");
        assert_eq!(cm.total(), 5, "the ignored pixel is not counted");
        let c1 = cm.class_metrics(1);
        assert_eq!(c1.precision, Some(2.0 / 3.0));
        assert_eq!(c1.recall, Some(1.0));
        assert_eq!(c1.iou, Some(2.0 / 3.0));
        assert_eq!(c1.dice, Some(0.8));
        assert_eq!(c1.accuracy, Some(4.0 / 5.0));
        let c2 = cm.class_metrics(2);
        assert_eq!((c2.iou, c2.precision, c2.support), (Some(0.0), None, 1));
        assert_eq!(cm.pixel_accuracy(), Some(3.0 / 5.0));
        let m0 = cm.class_metrics(0).iou.expect("iou");
        assert_eq!(cm.mean_iou_present(), Some((m0 + 2.0 / 3.0 + 0.0) / 3.0));
    }

    #[test]
    fn absent_classes_do_not_enter_the_mean() {
        let mut cm = ConfusionMatrix::new(4, 255);
        cm.add(&[0, 1, 1], &[0, 1, 1]).expect("add");
        assert_eq!(cm.class_metrics(3).iou, None);
        assert_eq!(cm.mean_iou_present(), Some(1.0));
    }

    #[test]
    fn bad_input_is_rejected() {
        let mut cm = ConfusionMatrix::new(2, 255);
        assert_eq!(
            cm.add(&[0], &[0, 1]),
            Err(EvalError::SizeMismatch { truth: 1, pred: 2 })
        );
        assert!(matches!(
            cm.add(&[5], &[0]),
            Err(EvalError::ClassOutOfRange {
                which: "truth",
                value: 5,
                ..
            })
        ));
        assert!(matches!(
            cm.add(&[1], &[9]),
            Err(EvalError::ClassOutOfRange {
                which: "prediction",
                ..
            })
        ));
    }
}
