//! Segmentation metrics, ROC/AUC, reader-study statistics and reports.
