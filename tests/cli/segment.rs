//! `foramen segment`: class PNGs and probabilities that agree, the bundled model on
//! unseen synthetic scenes, and a missing model refused before anything is written.

use foramen_data::dataset::load_mask;
use std::path::{Path, PathBuf};

use crate::common::{bundled_model, foramen, ok};

/// Writes a synthetic data set of `count` scenes and segments its images with the
/// bundled model; returns (data set folder, prediction folder).
fn synth_and_segment(
    dir: &Path,
    count: &str,
    seed: &str,
    size: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf) {
    let data = dir.join("d");
    let pred = dir.join("p");
    ok(&[
        "synth",
        "--out",
        &data.display().to_string(),
        "--count",
        count,
        "--seed",
        seed,
        "--size",
        size,
    ]);
    let images = data.join("images").display().to_string();
    let pred_s = pred.display().to_string();
    let model = bundled_model();
    let mut args = vec![
        "segment",
        images.as_str(),
        "--model",
        model.as_str(),
        "--out",
        pred_s.as_str(),
    ];
    args.extend_from_slice(extra);
    ok(&args);
    (data, pred)
}

#[test]
fn missing_model_fails_before_writing_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("never.mp4");
    let r = foramen(&[
        "replay",
        "synthetic:1:64x36@10:3",
        "--model",
        "/nonexistent/m.onnx",
        "--out",
        &out.display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success());
    assert!(
        err.contains("/nonexistent/m.onnx") && err.contains("not found"),
        "{err}"
    );
    assert!(!out.exists(), "no output that could pass for a replay");

    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"definitely not protobuf").expect("w");
    let r = foramen(&[
        "segment",
        &bad.display().to_string(),
        "--model",
        &bad.display().to_string(),
        "--out",
        &dir.path().join("o").display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("bad.onnx"), "{err}");
}

#[test]
fn segment_writes_class_pngs_and_probabilities_that_agree() {
    let dir = tempfile::tempdir().expect("tmp");
    let (data, pred) = synth_and_segment(dir.path(), "3", "900", "320x180", &["--probs"]);
    for entry in std::fs::read_dir(data.join("images")).expect("images") {
        let stem = entry
            .expect("e")
            .path()
            .file_stem()
            .expect("stem")
            .to_string_lossy()
            .to_string();
        let png = load_mask(&pred.join(format!("{stem}.png"))).expect("png");
        assert_eq!(png.dimensions(), (320, 180));
        let (shape, p) =
            foramen_data::npy::read_f32(&pred.join(format!("{stem}.npy"))).expect("npy");
        assert_eq!(shape, vec![4, 180, 320]);
        let n = 320 * 180;
        for (i, c) in png.pixels().enumerate() {
            let sum: f32 = (0..4).map(|k| p[k * n + i]).sum();
            assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to 1");
            let arg = (0..4)
                .max_by(|&a, &b| p[a * n + i].total_cmp(&p[b * n + i]))
                .expect("argmax");
            assert_eq!(c.0[0] as usize, arg, "PNG is the argmax of the .npy");
        }
    }
}

#[test]
fn bundled_model_segments_unseen_synthetic_scenes() {
    // Seeds far from the training range (1000..2200): mean IoU over bone, ligament
    // and disc must show a model that learned, not one that guesses.
    let dir = tempfile::tempdir().expect("tmp");
    let (data, pred) = synth_and_segment(dir.path(), "12", "500000", "640x360", &[]);
    let mut cm = foramen_eval::ConfusionMatrix::new(4, 255);
    for entry in std::fs::read_dir(data.join("masks")).expect("masks") {
        let path = entry.expect("e").path();
        let truth = load_mask(&path).expect("truth");
        let p = load_mask(&pred.join(path.file_name().expect("name"))).expect("pred");
        cm.add(truth.as_raw(), p.as_raw()).expect("same size");
    }
    let ious: Vec<f64> = (1..4)
        .map(|c| cm.class_metrics(c).iou.unwrap_or(0.0))
        .collect();
    let miou = ious.iter().sum::<f64>() / 3.0;
    assert!(miou > 0.5, "foreground IoUs {ious:?}");
}
