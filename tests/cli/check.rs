//! `foramen check`: ready on a good set-up, names what failed, writes nothing.

use std::path::Path;

use crate::common;
use crate::common::bundled_model;
use crate::walk;

/// `foramen check ARGS` with `HOME` inside `dir` (nothing may be written there either):
/// its stdout, and whether it exited 0.
fn check(dir: &Path, args: &[&str]) -> (String, bool) {
    let home = dir.join("home");
    std::fs::create_dir_all(&home).expect("home");
    let out = std::process::Command::new(common::bin())
        .args(args)
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (text, out.status.success())
}

#[test]
fn check_is_ready_on_a_good_set_up_and_leaves_nothing() {
    // Issue 20, item 8: the readiness check on a synthetic source (small, so that it
    // keeps its rate on a loaded machine), the bundled model and a writable folder.
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&rec).expect("rec");
    let cfg = dir.path().join("site.toml");
    std::fs::write(&cfg, "[inference]\nlatency_budget_ms = 2000\n").expect("cfg");
    std::fs::create_dir_all(dir.path().join("home")).expect("home");
    let before = walk(dir.path());
    let model = bundled_model();
    let args = [
        "--config",
        cfg.to_str().expect("utf-8"),
        "check",
        "--device",
        "synthetic:1:64x48@15",
        "--model",
        &model,
        "--record-dir",
        rec.to_str().expect("utf-8"),
    ];
    let (text, ready) = check(dir.path(), &args);
    assert!(ready, "{text}");
    for name in ["model", "inference", "capture", "recording"] {
        assert!(text.contains(&format!("PASS  {name}")), "{name}: {text}");
    }
    assert!(text.contains("<= budget 2000 ms"), "{text}");
    assert!(text.contains("delivers 64x48 at"), "{text}");
    assert_eq!(text.lines().last(), Some("READY"), "{text}");
    let (json, ready) = check(dir.path(), &[&args[..], &["--json"]].concat());
    let doc: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(
        ready && doc["ready"] == true && doc["verdict"] == "READY",
        "{doc}"
    );
    assert_eq!(doc["items"].as_array().map(Vec::len), Some(4), "{doc}");
    assert_eq!(walk(dir.path()), before, "the check wrote something");
}

#[test]
fn check_names_what_failed_exits_non_zero_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("rec");
    std::fs::create_dir_all(&rec).expect("rec");
    let tight = dir.path().join("tight.toml");
    std::fs::write(&tight, "[inference]\nlatency_budget_ms = 0.001\n").expect("cfg");
    let missing_rec = dir.path().join("unmounted").join("rec");
    let missing_model = dir.path().join("gone.onnx");
    std::fs::create_dir_all(dir.path().join("home")).expect("home");
    let before = walk(dir.path());
    let model = bundled_model();
    let run = |cfg: &Path, model: &str, rec: &Path, device: &str| {
        let cfg = cfg.to_str().expect("utf-8");
        let rec = rec.to_str().expect("utf-8");
        let args = [
            "--config",
            cfg,
            "check",
            "--model",
            model,
            "--record-dir",
            rec,
        ];
        check(dir.path(), &[&args[..], &["--device", device]].concat())
    };
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[inference]\nlatency_budget_ms = 2000\n").expect("cfg");
    let source = "synthetic:1:64x48@15";
    let cases = [
        (
            run(&tight, &model, &rec, source),
            "NOT READY: inference",
            "> budget 0.001 ms",
        ),
        (
            run(&good, &model, &missing_rec, source),
            "NOT READY: recording",
            "unmounted/rec does not exist",
        ),
        (
            run(&good, missing_model.to_str().expect("utf-8"), &rec, source),
            "NOT READY: model, inference (not run)",
            "gone.onnx",
        ),
        (
            run(&good, &model, &rec, "/dev/video-foramen-none"),
            "NOT READY: capture",
            "FAIL  capture",
        ),
    ];
    std::fs::remove_file(&good).expect("rm");
    for ((text, ready), verdict, detail) in cases {
        assert!(!ready, "{text}");
        assert_eq!(text.lines().last(), Some(verdict), "{text}");
        assert!(text.contains(detail), "{detail}: {text}");
    }
    assert!(!missing_rec.parent().expect("parent").exists());
    assert_eq!(walk(dir.path()), before, "the check wrote something");
}
