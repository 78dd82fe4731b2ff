//! The timeline against `masks.bin` read directly, and a recording cut by a crash.

use std::io::Write as _;

use foramen_core::{ClassSet, Mask};

use super::Timeline;
use crate::recording::{FRAMES_CSV_HEADER, FrameRow, SessionHeader, read_masks, write_mask};

const T0: u64 = 5_000_000;
const FPS: u64 = 25;

/// The mask of frame `id`: a band of class 1 to 3 whose size changes over time.
fn mask(id: u64) -> Mask {
    let (w, h) = (16u32, 12u32);
    let classes = (0..w * h)
        .map(|i| {
            let x = (i % w) as u64;
            if x < (id / 7) % w as u64 {
                ((id / 40) % 3 + 1) as u8
            } else {
                (x % 2) as u8
            }
        })
        .collect();
    Mask {
        source_frame_id: id,
        source_pts_us: (id * 40_000) as i64,
        source_captured_at_us: T0 + id * 1_000_000 / FPS,
        width: w,
        height: h,
        classes,
        confidence: vec![255; (w * h) as usize],
        infer_ms: 9.0,
    }
}

/// A recording of `frames` frames at 25 fps, a mask every other frame (used by the next
/// frame), frames `lost` missing from `frames.csv`, no mask for frames in `off`.
fn record(dir: &std::path::Path, frames: u64, lost: &[u64], off: std::ops::Range<u64>) {
    let classes = ClassSet::lumbar();
    let header = SessionHeader {
        started_utc: "20260101-000000",
        source: "/patients/somebody.mp4",
        width: 16,
        height: 12,
        fps: FPS as f64,
        model: "/models/lumbar-synth.onnx",
        segment_s: 2.0,
        classes: &classes,
        model_fingerprint: Some("2048 bytes, CRC-32 0badf00d"),
    };
    std::fs::write(dir.join("session.toml"), header.to_toml()).expect("toml");
    let mut bin = std::fs::File::create(dir.join("masks.bin")).expect("bin");
    let mut csv = format!("{FRAMES_CSV_HEADER}\n");
    let mut current: Option<Mask> = None;
    for id in 0..frames {
        let used = if off.contains(&id) {
            None
        } else {
            current.as_ref()
        };
        if !lost.contains(&id) {
            let row = FrameRow {
                frame_id: id,
                pts_us: (id * 40_000) as i64,
                captured_at_us: T0 + id * 1_000_000 / FPS,
                segment: id / 50,
                mask: used,
                mask_conf: used.map(|_| (id % 10) as f64 / 10.0),
            };
            csv.push_str(&format!("{row}\n"));
        }
        if id % 2 == 0 {
            let m = mask(id);
            write_mask(&mut bin, &m).expect("write");
            current = Some(m);
        }
    }
    bin.flush().expect("flush");
    std::fs::write(dir.join("frames.csv"), csv).expect("csv");
}

#[test]
fn per_second_class_shares_equal_those_computed_from_masks_bin() {
    let dir = tempfile::tempdir().expect("tmp");
    record(dir.path(), 250, &[30, 31, 77], 100..140);
    let t = Timeline::read(dir.path(), 250.0).expect("timeline");
    assert_eq!(t.seconds.len(), 10);
    let (masks, _) = read_masks(&dir.path().join("masks.bin")).expect("masks");
    for (i, s) in t.seconds.iter().enumerate() {
        let here: Vec<_> = masks
            .iter()
            .filter(|m| (m.captured_at_us - T0) / 1_000_000 == i as u64)
            .collect();
        let pixels: usize = here.iter().map(|m| m.classes.len()).sum();
        assert_eq!(s.masks, here.len() as u64);
        for k in 0..4u8 {
            let n: usize = here
                .iter()
                .map(|m| m.classes.iter().filter(|&&c| c == k).count())
                .sum();
            let want = n as f64 / pixels as f64;
            assert!(
                (s.share(k as usize).expect("share") - want).abs() < 1e-12,
                "{i} {k}"
            );
        }
    }
    // Mean confidence over the rows with a mask: second 0 has ids 1..25 (id 0 had none).
    let want = (1..25).map(|id| (id % 10) as f64 / 10.0).sum::<f64>() / 24.0;
    let got = t.seconds[0].mean_confidence().expect("confidence");
    assert!((got - want).abs() < 1e-9, "{got} {want}");
    assert_eq!(t.seconds[4].mean_confidence(), None, "no masks in 100..125");
    assert_eq!((t.seconds[1].lost, t.seconds[1].frames), (2, 23));
    assert_eq!(t.seconds[3].lost, 1);
    // Frames 100..140 had no mask: seconds 4 (100..125) off, 5 (125..150) mostly off.
    assert_eq!(t.seconds[4].state(), "off");
    assert_eq!(t.seconds[5].state(), "off");
    assert_eq!(t.seconds[6].state(), "on");
    assert_eq!(t.bands(), vec![(4, 5, "off")]);
    assert_eq!(t.missing_span(), None);
    let csv = t.csv();
    assert!(csv.starts_with("second,frames,lost_frames,masks,on_frames,stale_frames,off_frames,missing_masks,state,mean_confidence,share_background"), "{csv}");
    assert_eq!(csv.lines().count(), 11);
    // A stricter age limit makes every frame stale (their masks are 40 ms old).
    let strict = Timeline::read(dir.path(), 20.0).expect("timeline");
    assert_eq!(strict.seconds[0].state(), "stale");
}

#[test]
fn a_crash_cut_masks_bin_gives_a_report_that_marks_the_missing_span() {
    let dir = tempfile::tempdir().expect("tmp");
    record(dir.path(), 250, &[], 0..0);
    let bin = dir.path().join("masks.bin");
    let len = std::fs::metadata(&bin).expect("bin").len();
    // 125 records (frames 0, 2, ..., 248): cut inside record 80 (frame 160, second 6).
    let record = (crate::recording::MASK_HEADER_BYTES + 16 * 12) as u64;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&bin)
        .expect("open")
        .set_len(80 * record + 10)
        .expect("cut");
    assert!(len > 80 * record);
    let t = Timeline::read(dir.path(), 250.0).expect("a cut recording is reported");
    assert!(t.masks.cut);
    assert_eq!(t.masks.records, 80);
    // Frames 161..249 used masks 160..248, unreadable: seconds 6 to 9.
    assert_eq!(t.missing_span(), Some((6, 9)));
    assert_eq!(t.seconds[5].state(), "on");
    assert_eq!(t.seconds[7].missing_masks, 25);
    assert_eq!(t.totals(), (250, 0, 89));
    let csv = t.csv();
    assert!(
        csv.lines().nth(8).expect("row 7").contains(",missing,"),
        "{csv}"
    );
    let summary = t.summary();
    assert!(summary.contains("missing from 6 s to 9 s"), "{summary}");
    let keys = [
        super::KeyFrame {
            class: "bone".into(),
            second: 65,
            share: 0.234,
            file: "keyframes/bone-01-05.png".into(),
        },
        super::KeyFrame {
            class: "disc<".into(),
            second: 3,
            share: 0.05,
            file: "keyframes/disc-00-03.png".into(),
        },
    ];
    let html = t.html("<svg></svg>", &keys);
    assert!(html.contains("seconds 6 to 9") && html.contains("lumbar-synth.onnx"));
    assert!(
        html.contains("lumbar-synth.onnx (2048 bytes, CRC-32 0badf00d)"),
        "{html}"
    );
    assert!(
        html.contains("<h3>bone</h3>")
            && html.contains("src=\"keyframes/bone-01-05.png\"")
            && html.contains("01:05 · bone 23 % of the picture")
            && html.contains("<h3>disc&lt;</h3>"),
        "{html}"
    );
    assert!(t.html("", &[]).contains("no key frames"));
    assert!(html.contains(super::html::NO_PATIENT_DATA));
    assert!(
        !html.contains("somebody") && !html.contains("20260101"),
        "{html}"
    );
}
