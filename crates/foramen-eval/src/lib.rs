//! Segmentation metrics, ROC/AUC, reader-study statistics and reports.
//!
//! So far: the pixel confusion matrix with per-class precision, recall, one-vs-rest
//! accuracy, IoU and Dice; one-vs-rest ROC/AUC streamed into fixed-size histograms;
//! and the reader-study tests (one-way ANOVA, Kruskal-Wallis, Friedman, Wilcoxon
//! signed-rank with Holm's correction), written to agree with SciPy.

mod auc;
mod confusion;
pub mod plot;
mod special;
pub mod stats;

pub use auc::{BinnedRoc, exact_auc};
pub use confusion::{ClassMetrics, ConfusionMatrix, EvalError};
pub use stats::TestResult;
