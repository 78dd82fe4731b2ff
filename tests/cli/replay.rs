//! `foramen replay`: frame count and size kept, masks where the truth is, image
//! folders, and a list of inputs sharded over array jobs.

use foramen_capture::open_source;
use foramen_data::dataset::load_mask;

use crate::common;
use crate::common::{bundled_model, foramen, ok, repo};
use crate::count_frames;

#[test]
fn replay_keeps_frame_count_and_size_of_an_unseen_clip() {
    let dir = tempfile::tempdir().expect("tmp");
    let clip = dir.path().join("odd.mp4");
    let masks = dir.path().join("masks");
    let clip_s = clip.display().to_string();
    // An odd size and length the pipeline has never seen.
    ok(&[
        "synth",
        "--video",
        &clip_s,
        "--frames",
        "23",
        "--fps",
        "24",
        "--size",
        "333x197",
        "--seed",
        "41",
        "--masks",
        &masks.display().to_string(),
    ]);
    assert_eq!(std::fs::read_dir(&masks).expect("masks").count(), 23);

    let out = dir.path().join("annotated.mp4");
    let csv = dir.path().join("t.csv");
    let text = ok(&[
        "replay",
        &clip_s,
        "--model",
        &bundled_model(),
        "--out",
        &out.display().to_string(),
        "--telemetry",
        &csv.display().to_string(),
    ]);
    assert!(text.contains("replayed 23 frames (333x197)"), "{text}");
    assert_eq!(count_frames(&out.display().to_string()), (23, 333, 197));

    let rows: Vec<String> = std::fs::read_to_string(&csv)
        .expect("csv")
        .lines()
        .map(String::from)
        .collect();
    assert!(
        rows[0].starts_with("frame,pts_ms,mask_frame,mask_age_ms,infer_ms")
            && rows[0].ends_with(",total_ms,provider"),
        "{}",
        rows[0]
    );
    assert_eq!(rows.len(), 24);
    for (i, row) in rows[1..].iter().enumerate() {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[0], i.to_string());
        assert_eq!(
            f[2],
            i.to_string(),
            "offline replay: each frame carries its own mask"
        );
        let age: f64 = f[3].parse().expect("age");
        let total: f64 = f[9].parse().expect("total");
        assert!(age >= 0.0 && total >= age, "{row}");
        assert_eq!(f[10], "cpu", "the provider in use: {row}");
    }
}

#[test]
fn replay_marks_tissue_where_the_truth_is() {
    // The annotated video must differ from the input where the true mask has a class
    // and stay closer to it where the truth is background.
    let dir = tempfile::tempdir().expect("tmp");
    let clip = dir.path().join("c.mp4").display().to_string();
    let masks = dir.path().join("m");
    ok(&[
        "synth",
        "--video",
        &clip,
        "--frames",
        "6",
        "--fps",
        "30",
        "--size",
        "640x360",
        "--seed",
        "5",
        "--masks",
        &masks.display().to_string(),
    ]);
    let out = dir.path().join("a.mp4").display().to_string();
    ok(&["replay", &clip, "--model", &bundled_model(), "--out", &out]);
    let mut raw = open_source(&clip).expect("raw");
    let mut ann = open_source(&out).expect("annotated");
    let (mut fg, mut fg_n, mut bg, mut bg_n) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while let (Some(a), Some(b)) = (
        raw.next_frame().expect("raw"),
        ann.next_frame().expect("ann"),
    ) {
        let truth = load_mask(&masks.join(format!("{i:06}.png"))).expect("mask");
        for (p, t) in truth.pixels().enumerate() {
            let d: f64 = (0..3)
                .map(|k| (a.rgb[p * 3 + k] as f64 - b.rgb[p * 3 + k] as f64).abs())
                .sum();
            if t.0[0] > 0 {
                fg += d;
                fg_n += 1.0;
            } else {
                bg += d;
                bg_n += 1.0;
            }
        }
        i += 1;
    }
    assert_eq!(i, 6);
    let (fg, bg) = (fg / fg_n, bg / bg_n);
    assert!(
        fg > 40.0 && fg > 3.0 * bg,
        "overlay change on tissue {fg:.1} vs background {bg:.1}"
    );
}

#[test]
fn replay_reads_a_real_image_folder() {
    let seq = repo().join("../shared/data/vocalfolds/img/patient2/seq8");
    if !seq.exists() {
        eprintln!("skipping: {} not present", seq.display());
        return;
    }
    let n_images = std::fs::read_dir(&seq).expect("seq").count() as u64;
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("seq8.mp4").display().to_string();
    ok(&[
        "replay",
        &seq.display().to_string(),
        "--model",
        &bundled_model(),
        "--out",
        &out,
    ]);
    assert_eq!(count_frames(&out), (n_images, 512, 512));
}

/// `foramen replay --inputs LIST --shard I/N --out-dir D`: the shards together replay
/// every input once, one video and telemetry CSV per input; a broken input is recorded in
/// the shard's summary, the others still run, and the exit status says it failed.
#[test]
fn replay_shards_a_list_of_inputs_and_records_each_in_its_summary() {
    let dir = tempfile::tempdir().expect("tmp");
    let list = dir.path().join("archive.txt");
    let inputs = "# three recordings and a missing one\nsynthetic:1:64x48@5:6\nsynthetic:2:64x48@5:4\nmissing.mp4\nsynthetic:3:64x48@5:5\n";
    std::fs::write(&list, inputs).expect("list");
    let out = dir.path().join("out");
    let (list_s, out_s) = (list.display().to_string(), out.display().to_string());
    let model = bundled_model();
    let shard = |s: &str| {
        let args = [
            "replay",
            "--inputs",
            &list_s,
            "--shard",
            s,
            "--out-dir",
            &out_s,
        ];
        foramen(&[&args[..], &["--model", &model]].concat())
    };
    // Shard 0/2: inputs 1 and 3 (the missing file): it fails, input 1 is still written.
    let first = shard("0/2");
    assert!(!first.status.success(), "{}", common::text(&first));
    let second = shard("1/2");
    assert!(second.status.success(), "{}", common::text(&second));
    for (name, frames) in [
        ("synthetic_1_64x48@5_6", 6),
        ("synthetic_2_64x48@5_4", 4),
        ("synthetic_3_64x48@5_5", 5),
    ] {
        let video = out
            .join(format!("{name}.annotated.mp4"))
            .display()
            .to_string();
        assert_eq!(count_frames(&video), (frames, 64, 48), "{name}");
        let csv = std::fs::read_to_string(out.join(format!("{name}.telemetry.csv"))).expect("csv");
        assert_eq!(csv.lines().count() as u64, frames + 1, "{name}");
    }
    let summary = std::fs::read_to_string(out.join("shard-0-of-2.csv")).expect("summary");
    let rows: Vec<&str> = summary.lines().collect();
    assert_eq!(rows.len(), 3, "{summary}");
    assert!(
        rows[1].contains(",6,") && rows[1].ends_with("\"ok\""),
        "{summary}"
    );
    assert!(
        rows[2].contains("missing.mp4") && rows[2].contains("failed"),
        "{summary}"
    );
    let other = std::fs::read_to_string(out.join("shard-1-of-2.csv")).expect("summary");
    assert_eq!(other.lines().count(), 3, "{other}");
}
