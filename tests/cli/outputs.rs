//! What every command refuses: bad arguments, outputs that are or hold an input, and
//! anything written outside the output the user named.

use std::path::{Path, PathBuf};

use crate::common;
use crate::common::{bundled_model, foramen, ok};
use crate::walk;

#[test]
fn bad_arguments_are_clear_errors() {
    let r = foramen(&["replay", "/nonexistent/clip.mp4"]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("/nonexistent/clip.mp4"),
        "{err}"
    );
    let r = foramen(&["synth", "--out", "/tmp/x", "--size", "12by9"]);
    assert!(!r.status.success() && String::from_utf8_lossy(&r.stderr).contains("12by9"));
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[overlay]\nopacity = 3\n").expect("w");
    let r = foramen(&[
        "--config",
        &cfg.display().to_string(),
        "replay",
        "synthetic",
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && err.contains("c.toml") && err.contains("line 2"),
        "{err}"
    );
    // Issue 18, item 19: an unwritable output names the real reason, not "no video
    // encoder available".
    // (A folder where the video should go: writing fails as a read-only disk would.)
    let blocked = dir.path().join("x.mp4");
    std::fs::create_dir_all(&blocked).expect("mkdir");
    let r = foramen(&[
        "replay",
        "synthetic:1:64x48@10:3",
        "--out",
        blocked.to_str().expect("utf-8"),
    ]);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success()
            && !err.contains("no video encoder")
            && err.contains("cannot write the file"),
        "{err}"
    );
    // Issue 18, item 15: rates and intervals that hung or divided by zero.
    for args in [
        &["extract", "x.mp4", "--out", "/tmp/x", "--every", "0"][..],
        &["extract", "x.mp4", "--out", "/tmp/x", "--every=-1"],
        &["extract", "x.mp4", "--out", "/tmp/x", "--every", "NaN"],
        &["view", "x.mp4", "--fps", "0", "--headless"],
        &["synth", "--video", "/tmp/x.mp4", "--fps", "inf"],
    ] {
        let r = foramen(args);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            !r.status.success() && err.contains("is not a positive number"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn nothing_is_written_outside_the_named_output() {
    // Issue 18, item 18: every model load wrote ONNX Runtime's telemetry database and a
    // device id under ~/.cache/Microsoft/DeveloperTools.
    let dir = tempfile::tempdir().expect("tmp");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let data = dir.path().join("data");
    ok(&[
        "synth",
        "--out",
        data.to_str().expect("utf-8"),
        "--count",
        "2",
        "--size",
        "96x64",
    ]);
    let out = std::process::Command::new(common::bin())
        .args(["segment", data.join("images").to_str().expect("utf-8")])
        .args(["--out", dir.path().join("pred").to_str().expect("utf-8")])
        .args(["--model", &bundled_model()])
        .env("HOME", &home)
        .env_remove("XDG_CACHE_HOME")
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", common::text(&out));
    let written: Vec<_> = walk(&home);
    assert!(written.is_empty(), "written under HOME: {written:?}");
}

/// Runs `foramen ARGS` and checks that it refused to write its output.
fn refused(args: &[&str]) {
    let out = foramen(args);
    let log = common::text(&out);
    assert!(!out.status.success(), "{args:?} succeeded: {log}");
    assert!(log.contains("refusing to write"), "{args:?}: {log}");
}

/// A synthetic clip `clip.mp4` and data set `data/` under `d`: the first image's path.
fn write_inputs(d: &Path) -> PathBuf {
    let clip = d.join("clip.mp4");
    ok(&[
        "synth",
        "--video",
        clip.to_str().expect("utf-8"),
        "--frames",
        "12",
        "--fps",
        "25",
        "--size",
        "96x64",
    ]);
    std::fs::create_dir_all(d.join("sub")).expect("mkdir");
    let data_s = d.join("data").display().to_string();
    ok(&["synth", "--out", &data_s, "--count", "2", "--size", "96x64"]);
    common::first_entry(&d.join("data/images"))
}

#[test]
fn outputs_that_are_or_hold_an_input_are_refused_and_the_input_kept() {
    // Issue 18, items 1-3 and 19 (export): each command refuses, by name, an output that
    // is, contains or lies inside one of its inputs, before writing anything.
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let first = write_inputs(d);
    let (clip, data, images) = (d.join("clip.mp4"), d.join("data"), d.join("data/images"));
    let before = std::fs::read(&clip).expect("clip");
    let image_before = std::fs::read(&first).expect("image");
    let clip_s = clip.to_str().expect("utf-8");
    let alias_s = &d.join("sub/../clip.mp4").display().to_string();
    let (data_s, images_s) = (
        data.to_str().expect("utf-8"),
        images.to_str().expect("utf-8"),
    );
    let model = bundled_model();
    let m = ["--model", model.as_str()];
    refused(&[&["replay", clip_s, "--out", clip_s][..], &m].concat());
    refused(&[&["replay", clip_s, "--out", alias_s][..], &m].concat());
    refused(&[&["bench", clip_s, "--out", clip_s, "--frames", "5"][..], &m].concat());
    refused(&[&["segment", images_s, "--out", images_s][..], &m].concat());
    refused(&[&["segment", images_s, "--out", data_s][..], &m].concat());
    let export = ["export", "label-studio", "--images", images_s];
    refused(&[&export[..], &["--out", data_s]].concat());
    assert_eq!(
        std::fs::read(&clip).expect("clip"),
        before,
        "the input video is intact"
    );
    assert_eq!(
        std::fs::read(&first).expect("image"),
        image_before,
        "the input image is intact"
    );
    // export: the tasks file and the labelling config may not be one file.
    let xml_s = d.join("tasks.xml").display().to_string();
    refused(&[&export[..], &["--out", &xml_s]].concat());
    // import into the folder holding the labelled images.
    let json = d.join("export.json");
    std::fs::write(&json, "[]").expect("export");
    let json_s = json.to_str().expect("utf-8");
    refused(&[
        "import",
        "label-studio",
        json_s,
        "--images",
        images_s,
        "--out",
        data_s,
    ]);
    assert_eq!(std::fs::read(&first).expect("image"), image_before);
}

#[test]
fn the_model_and_the_settings_file_are_inputs_of_every_command() {
    // Issue 18, variants of items 1-4: the model and the settings file (named or taken
    // from the settings), a dangling link into an input folder, and the window's files.
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let clip = s(&d.join("clip.mp4"));
    ok(&[
        "synth", "--video", &clip, "--frames", "6", "--size", "96x64",
    ]);
    let data = d.join("data");
    ok(&[
        "synth",
        "--out",
        &s(&data),
        "--count",
        "1",
        "--size",
        "96x64",
    ]);
    let model = d.join("m.onnx");
    std::fs::copy(bundled_model(), &model).expect("copy model");
    let model_bytes = std::fs::read(&model).expect("model");
    let settings = d.join("or.toml");
    let settings_text = format!("# the OR's settings\n[model]\npath = {:?}\n", s(&model));
    std::fs::write(&settings, &settings_text).expect("settings");
    std::os::unix::fs::symlink(data.join("images/new"), d.join("link")).expect("link");
    let (m, c, images, link) = (
        s(&model),
        s(&settings),
        s(&data.join("images")),
        s(&d.join("link")),
    );
    let cases: Vec<Vec<&str>> = vec![
        vec!["replay", &clip, "--model", &m, "--out", &m],
        // the model the settings file names
        vec!["--config", &c, "replay", &clip, "--out", &m],
        vec!["--config", &c, "bench", &clip, "--frames", "3", "--out", &c],
        vec!["--config", &c, "segment", &images, "--out", &c],
        vec!["segment", &images, "--model", &m, "--out", &link],
        vec![
            "live",
            "--device",
            "synthetic:1:64x48@25",
            "--headless",
            "--model",
            &m,
            "--telemetry",
            &m,
        ],
        vec![
            "view",
            &images,
            "--headless",
            "--model",
            &m,
            "--record-dir",
            &images,
        ],
    ];
    for args in &cases {
        let out = foramen(args);
        let log = common::text(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {log}");
        assert!(log.contains("refusing to write"), "{args:?}: {log}");
    }
    assert_eq!(
        std::fs::read(&model).expect("model"),
        model_bytes,
        "the model is intact"
    );
    assert_eq!(
        std::fs::read_to_string(&settings).expect("settings"),
        settings_text
    );
    assert!(
        !data.join("images/new").exists(),
        "nothing written through the link"
    );
}
