//! Segmentation metrics, ROC/AUC, reader-study statistics and reports.
//!
//! The pixel confusion matrix with per-class precision, recall, one-vs-rest accuracy,
//! IoU and Dice; one-vs-rest ROC/AUC streamed into fixed-size histograms; the
//! evaluation accumulator (`evaluation`) and its typed report (`report`: JSON and
//! Markdown) with its largest confusions and what each costs (`confusions`) and its
//! figures by sequence (`sequences`); the
//! reader study's per-image scores and tests (`reader_study`: one-way ANOVA,
//! Kruskal-Wallis, Friedman, Wilcoxon signed-rank with Holm's correction), written to
//! agree with SciPy; and the figures (`plot`).

mod auc;
mod confusion;
pub mod confusions;
pub mod evaluation;
pub mod plot;
pub mod reader_study;
pub mod report;
pub mod sequences;
pub mod shard;
mod special;
pub mod stats;

pub use auc::{BinnedRoc, exact_auc};
pub use confusion::{ClassMetrics, ConfusionMatrix, EvalError};
pub use evaluation::{Evaluation, ImageResult, WorstImage};
pub use reader_study::{ReaderStudy, image_scores};
pub use report::{Average, EvalReport};
pub use sequences::SequenceReport;
pub use shard::ShardError;
pub use stats::TestResult;
