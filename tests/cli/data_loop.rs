//! The data loop: frames extracted, exported to Label Studio and imported back, and
//! name collisions refused by name before anything is written.

use std::path::Path;

use foramen_data::dataset::load_mask;

use crate::common;
use crate::common::{bundled_model, foramen, ok};

/// `path` under `dir`, as an argument.
fn arg(dir: &Path, path: &str) -> String {
    dir.join(path).display().to_string()
}

/// Two synthetic clips, `caseA.mp4` and `caseB.mp4`, sampled by `foramen extract` into
/// `frames/`: the names of the frames kept.
fn extract_frames(dir: &Path) -> Vec<String> {
    let d = |p: &str| arg(dir, p);
    for (name, seed) in [("caseA", "3"), ("caseB", "4")] {
        ok(&[
            "synth",
            "--video",
            &d(&format!("{name}.mp4")),
            "--frames",
            "24",
            "--fps",
            "8",
            "--seed",
            seed,
            "--size",
            "320x180",
        ]);
    }
    let text = ok(&[
        "extract",
        &d("caseA.mp4"),
        &d("caseB.mp4"),
        "--out",
        &d("frames"),
        "--every",
        "0.5",
        "--max",
        "3",
    ]);
    assert!(text.contains("frames kept"), "{text}");
    let csv = std::fs::read_to_string(dir.join("frames/extract.csv")).expect("csv");
    // 24 frames at 8 fps, one every 0.5 s: 6 sampled per clip, each with a decision.
    assert_eq!(csv.lines().count(), 1 + 12, "{csv}");
    let kept: Vec<String> = std::fs::read_dir(dir.join("frames"))
        .expect("frames")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".png"))
        .collect();
    assert!(kept.len() >= 2 && kept.len() <= 6, "{kept:?}");
    assert!(
        kept.iter()
            .all(|n| n.starts_with("caseA_") || n.starts_with("caseB_"))
    );
    assert_eq!(csv.matches(",kept,").count(), kept.len());

    kept
}

/// `foramen export label-studio` of `frames/` with the bundled model's masks, then what
/// Label Studio's export holds once those are accepted: each task with an id, an
/// uploaded (prefixed) image name, and the predictions as its annotation. Written to
/// `export.json` and returned.
fn export_and_accept(dir: &Path) -> serde_json::Value {
    let d = |p: &str| arg(dir, p);
    ok(&[
        "export",
        "label-studio",
        "--images",
        &d("frames"),
        "--out",
        &d("tasks.json"),
        "--model",
        &bundled_model(),
        "--image-root",
        "/data/upload/7",
    ]);
    let xml = std::fs::read_to_string(dir.join("tasks.xml")).expect("config xml");
    assert!(
        xml.contains("<BrushLabels") && xml.contains("value=\"disc\""),
        "{xml}"
    );
    let mut tasks: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tasks.json")).expect("tasks"))
            .expect("json");
    for (i, t) in tasks.as_array_mut().expect("list").iter_mut().enumerate() {
        let url = t["data"]["image"].as_str().expect("url").to_string();
        let name = url.rsplit('/').next().expect("name").to_string();
        t["id"] = serde_json::json!(i + 1);
        t["data"]["image"] = serde_json::json!(format!("/data/upload/7/0badc0de-{name}"));
        t["annotations"] = serde_json::json!([{ "result": t["predictions"][0]["result"].clone() }]);
    }
    std::fs::write(dir.join("export.json"), tasks.to_string()).expect("write");
    tasks
}

/// `foramen import label-studio` of `export.json` into `ds/`: the masks are the model's,
/// at the images' size, and no video is in two lists.
fn import_and_check(dir: &Path, kept: &[String]) {
    let d = |p: &str| arg(dir, p);
    ok(&[
        "import",
        "label-studio",
        &d("export.json"),
        "--images",
        &d("frames"),
        "--out",
        &d("ds"),
        "--classes",
        "bone,ligament,disc",
    ]);
    // The masks are the model's, at the images' size.
    ok(&[
        "segment",
        &d("ds/images"),
        "--out",
        &d("pred"),
        "--model",
        &bundled_model(),
    ]);
    for name in kept {
        let got = load_mask(&dir.join("ds/masks").join(name)).expect("mask");
        let want = load_mask(&dir.join("pred").join(name)).expect("pred");
        assert_eq!(got.dimensions(), (320, 180));
        let same = got
            .pixels()
            .zip(want.pixels())
            .filter(|(a, b)| a == b)
            .count();
        assert_eq!(same, 320 * 180, "{name}: the imported mask is the model's");
    }
    let manifest = std::fs::read_to_string(dir.join("ds/dataset.toml")).expect("toml");
    assert!(manifest.contains("name = \"disc\""), "{manifest}");
    // Split by video: no video in two lists.
    let lists: Vec<String> = ["train.txt", "val.txt", "test.txt"]
        .iter()
        .map(|l| std::fs::read_to_string(dir.join("ds").join(l)).expect("list"))
        .collect();
    for case in ["caseA_", "caseB_"] {
        assert!(
            lists.iter().filter(|l| l.contains(case)).count() <= 1,
            "{lists:?}"
        );
    }
}

/// Bad input: one task's image is missing and another has a label outside --classes;
/// refused with both named and nothing written, or imported without them when allowed.
fn import_bad_tasks(dir: &Path, mut tasks: serde_json::Value, kept: usize) {
    let d = |p: &str| arg(dir, p);
    let arr = tasks.as_array_mut().expect("list");
    arr[0]["data"]["image"] = serde_json::json!("/data/upload/7/0badc0de-nowhere.png");
    arr[1]["annotations"][0]["result"][0]["value"]["brushlabels"] = serde_json::json!(["tumour"]);
    std::fs::write(dir.join("bad.json"), tasks.to_string()).expect("write");
    let (bad, frames, out) = (d("bad.json"), d("frames"), d("bad"));
    let import = [
        "import",
        "label-studio",
        &bad,
        "--images",
        &frames,
        "--out",
        &out,
        "--classes",
        "bone,ligament,disc",
    ];
    let out = foramen(&import);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("task 1: image nowhere.png not found"), "{err}");
    assert!(
        err.contains("task 2") && err.contains("unknown label \"tumour\""),
        "{err}"
    );
    assert!(!dir.join("bad/dataset.toml").exists(), "nothing written");
    let text = ok(&[&import[..], &["--allow-partial"]].concat());
    assert!(
        text.contains(&format!("{} tasks imported", kept - 2)),
        "{text}"
    );
}

/// Recordings to labelled data set: extract frames from two clips, export them to Label
/// Studio with the model's masks as pre-annotations, "accept" those in Label Studio
/// (predictions become annotations), import the export: the data set holds exactly
/// the model's masks, split by source video. Then the bad-input paths.
#[test]
fn extract_export_import_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let kept = extract_frames(dir.path());
    let tasks = export_and_accept(dir.path());
    import_and_check(dir.path(), &kept);
    import_bad_tasks(dir.path(), tasks, kept.len());
}

/// A Label Studio export of polygon tasks for `images` (file names), one task each.
fn polygon_export(images: &[&str]) -> String {
    let tasks: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(i, name)| {
            serde_json::json!({
                "id": i + 1,
                "data": {"image": format!("/data/local-files/?d=images/{name}")},
                "annotations": [{"result": [{"type": "polygonlabels", "original_width": 32, "original_height": 24,
                    "value": {"points": [[10, 10], [60, 10], [60, 60]], "polygonlabels": ["bone"]}}]}]
            })
        })
        .collect();
    serde_json::Value::Array(tasks).to_string()
}

/// `foramen import label-studio`: two images that would write one mask, or one image
/// labelled twice, refused before anything is written; distinct names imported into
/// `ok/` with the split in the description.
fn import_collisions(d: &Path) {
    let images = d.join("images");
    std::fs::create_dir_all(&images).expect("mkdir");
    for name in ["a.png", "a.jpg", "b.png"] {
        image::RgbImage::new(32, 24)
            .save(images.join(name))
            .expect("image");
    }
    let import = |names: &[&str], out: &str| {
        let export = d.join(format!("{out}.json"));
        std::fs::write(&export, polygon_export(names)).expect("export");
        foramen(&[
            "import",
            "label-studio",
            export.to_str().expect("utf-8"),
            "--images",
            images.to_str().expect("utf-8"),
            "--out",
            d.join(out).to_str().expect("utf-8"),
        ])
    };
    for (names, what) in [
        (&["a.png", "a.jpg"][..], "would both write masks/a.png"),
        (&["b.png", "b.png"], "both label b.png"),
    ] {
        let out = import(names, "collide");
        let log = common::text(&out);
        assert!(
            !out.status.success() && log.contains(what),
            "{names:?}: {log}"
        );
        assert!(!d.join("collide").exists(), "nothing written");
    }
    let out = import(&["a.png", "b.png"], "ok");
    assert!(out.status.success(), "{}", common::text(&out));
    let manifest = std::fs::read_to_string(d.join("ok/dataset.toml")).expect("dataset.toml");
    assert!(manifest.contains("(80/10/10, seed 0)"), "{manifest}");
}

/// `eval --pred` with two list entries of one mask name (they would share one
/// prediction), and `compare` with one reader name twice, on the data set in `ok/`.
fn eval_and_compare_collisions(d: &Path) {
    let list = d.join("list.txt");
    std::fs::create_dir_all(d.join("x")).expect("mkdir");
    std::fs::copy(d.join("ok/masks/a.png"), d.join("x/a.png")).expect("copy");
    std::fs::write(&list, "images/a.png masks/a.png\nimages/b.png ../x/a.png\n").expect("list");
    let ds = d.join("ok");
    let out = foramen(&[
        "eval",
        "--data",
        ds.to_str().expect("utf-8"),
        "--list",
        list.to_str().expect("utf-8"),
        "--pred",
        ds.join("masks").to_str().expect("utf-8"),
        "--out",
        d.join("e").to_str().expect("utf-8"),
    ]);
    let log = common::text(&out);
    assert!(
        !out.status.success() && log.contains("entries 1 and 2"),
        "{log}"
    );
    // compare: one reader name twice.
    let m = ds.join("masks");
    let m = m.to_str().expect("utf-8");
    let out = foramen(&[
        "compare",
        "--reference",
        m,
        "--reader",
        &format!("r={m}"),
        "--reader",
        &format!("r={m}"),
        "--out",
        d.join("c").to_str().expect("utf-8"),
    ]);
    assert!(!out.status.success() && common::text(&out).contains("reader r is given twice"));
}

/// `foramen extract` of two videos of one name: refused, no frames folder.
fn extract_collisions(d: &Path) {
    for sub in ["p", "q"] {
        std::fs::create_dir_all(d.join(sub)).expect("mkdir");
        let v = d.join(sub).join("case.mp4");
        ok(&[
            "synth",
            "--video",
            v.to_str().expect("utf-8"),
            "--frames",
            "4",
            "--size",
            "64x48",
        ]);
    }
    let out = foramen(&[
        "extract",
        d.join("p/case.mp4").to_str().expect("utf-8"),
        d.join("q/case.mp4").to_str().expect("utf-8"),
        "--out",
        d.join("frames").to_str().expect("utf-8"),
    ]);
    assert!(
        !out.status.success() && common::text(&out).contains("would both be named case"),
        "{}",
        common::text(&out)
    );
    assert!(!d.join("frames").exists());
}

#[test]
fn name_collisions_are_refused_by_name_before_anything_is_written() {
    // Issue 18, item 12 (and 19: the split in the description).
    let dir = tempfile::tempdir().expect("tmp");
    import_collisions(dir.path());
    eval_and_compare_collisions(dir.path());
    extract_collisions(dir.path());
}
