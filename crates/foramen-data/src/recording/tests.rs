//! Tests of the recording format.

use super::*;

fn mask(id: u64) -> Mask {
    Mask {
        source_frame_id: id,
        source_pts_us: id as i64 * 40_000,
        source_captured_at_us: 1_000_000 + id * 40_000,
        width: 8,
        height: 6,
        classes: (0..48).map(|i| ((i + id) % 4) as u8).collect(),
        confidence: vec![200; 48],
        infer_ms: 12.5,
    }
}

#[test]
fn a_cut_mask_file_keeps_every_complete_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("masks.bin");
    let mut bytes = vec![];
    for id in 0..3 {
        write_mask(&mut bytes, &mask(id)).expect("write");
    }
    std::fs::write(&path, &bytes).expect("write");
    let (masks, scan) = read_masks(&path).expect("read");
    assert_eq!(
        scan,
        MaskScan {
            records: 3,
            ..MaskScan::default()
        }
    );
    assert_eq!(masks[2].classes, mask(2).classes);
    assert_eq!((masks[2].frame_id, masks[2].pts_us), (2, 80_000));
    bytes.truncate(bytes.len() - 7);
    std::fs::write(&path, &bytes).expect("write");
    let (masks, scan) = read_masks(&path).expect("read");
    assert!(scan.cut);
    assert_eq!(masks.len(), 2);
}

#[test]
fn damage_is_skipped_to_the_next_good_record_and_counted() {
    // Issue 18, item 17: a zero-filled tail (a power cut) failed the whole file with
    // "bad magic"; one corrupted width hid every later record.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("masks.bin");
    let mut bytes = vec![];
    for id in 0..120 {
        write_mask(&mut bytes, &mask(id)).expect("write");
    }
    let record = MASK_HEADER_BYTES + 48;
    // Record 3's width field corrupted; a 4 KiB zero tail after the last record.
    bytes[3 * record + 28] = 0xFF;
    bytes.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(&path, &bytes).expect("write");
    let (masks, scan) = read_masks(&path).expect("read");
    assert_eq!(scan.records, 119, "{scan:?}");
    assert_eq!(scan.damaged_regions, 2, "{scan:?}");
    assert_eq!(scan.damaged_bytes, record as u64 + 4096, "{scan:?}");
    assert!(!scan.cut);
    assert!(masks.iter().all(|m| m.frame_id != 3));
    assert_eq!(masks.last().map(|m| m.frame_id), Some(119));
    // Streaming: the count without keeping any record.
    let mut n = 0;
    scan_masks(&path, |_| n += 1).expect("scan");
    assert_eq!(n, 119);
}

#[test]
fn frame_rows_give_the_mask_and_its_age_or_empty_fields() {
    let m = mask(25);
    let row = FrameRow {
        frame_id: 26,
        pts_us: 1_040_000,
        captured_at_us: 2_040_000,
        segment: 1,
        mask: Some(&m),
        mask_conf: Some(0.81234),
    };
    assert_eq!(row.to_string(), "26,1040000,2040000,1,25,40.0,12.50,0.8123");
    let bare = FrameRow { mask: None, ..row }.to_string();
    assert_eq!(bare, "26,1040000,2040000,1,,,,");
    // A mask that draws nothing has no confidence; rows of the first format still count.
    let blank = FrameRow {
        mask_conf: None,
        ..row
    }
    .to_string();
    assert_eq!(blank, "26,1040000,2040000,1,25,40.0,12.50,");
    let v1 = "26,1040000,2040000,1,25,40.0,12.50";
    let csv = format!("{FRAMES_CSV_HEADER}\n{row}\n{bare}\n{blank}\n{v1}\n26,1");
    assert_eq!(count_frame_rows(&csv), 4);
}

#[test]
fn utc_stamps_are_well_formed() {
    let s = utc_stamp();
    assert_eq!(s.len(), 15, "{s}");
    assert!(s.starts_with("20") && s.as_bytes()[8] == b'-', "{s}");
}

#[test]
fn frame_records_read_back_what_frame_rows_wrote() {
    let m = mask(25);
    let row = FrameRow {
        frame_id: 26,
        pts_us: 1_040_000,
        captured_at_us: 2_040_000,
        segment: 1,
        mask: Some(&m),
        mask_conf: Some(0.5),
    };
    let r = FrameRecord::parse(&row.to_string()).expect("row");
    assert_eq!(r.mask_conf, Some(0.5));
    // The first format (no mask_conf), and a confidence cut by a crash: read as absent.
    let v1 = FrameRecord::parse("26,1040000,2040000,1,25,40.0,12.50").expect("v1");
    assert_eq!((v1.mask_frame, v1.mask_conf), (Some(25), None));
    let cut = FrameRecord::parse("26,1040000,2040000,1,25,40.0,12.50,0.5").expect("cut");
    assert_eq!(cut.mask_conf, None);
    assert_eq!(
        (r.frame_id, r.pts_us, r.captured_at_us, r.segment),
        (26, 1_040_000, 2_040_000, 1)
    );
    assert_eq!(
        (r.mask_frame, r.mask_age_ms, r.infer_ms),
        (Some(25), Some(40.0), Some(12.5))
    );
    let bare = FrameRecord::parse(&FrameRow { mask: None, ..row }.to_string()).expect("bare");
    assert_eq!((bare.mask_frame, bare.mask_age_ms), (None, None));
    assert!(FrameRecord::parse(FRAMES_CSV_HEADER).is_none());
    assert!(FrameRecord::parse("26,1040000,2040000,1,2x,40.0,1").is_none());
    // A file: header, two rows, a damaged row, a row cut by a crash.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("frames.csv");
    let text = format!("{FRAMES_CSV_HEADER}\n{row}\nbad,row\n{row}\n27,1");
    std::fs::write(&path, text).expect("write");
    let rows: Vec<FrameRecord> = FrameRows::open(&path)
        .expect("open")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(rows, vec![r, r]);
    let err = FrameRows::open(&dir.path().join("none.csv"))
        .err()
        .expect("absent");
    assert!(err.to_string().contains("none.csv"), "{err}");
}

#[test]
fn a_mask_stream_is_pulled_record_by_record_with_the_scans_rules() {
    let mut bytes = vec![];
    for id in [0, 5, 10] {
        write_mask(&mut bytes, &mask(id)).expect("write");
    }
    bytes.truncate(bytes.len() - 3);
    let len = bytes.len() as u64;
    let mut s = MaskStream::new(std::io::Cursor::new(bytes), len);
    let ids: Vec<u64> = std::iter::from_fn(|| s.next_record().expect("read"))
        .map(|m| m.frame_id)
        .collect();
    assert_eq!(ids, vec![0, 5]);
    assert!(s.scan().cut && s.scan().records == 2, "{:?}", s.scan());
    assert!(s.next_record().expect("end").is_none());
}

#[test]
fn session_info_leaves_the_source_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let classes = ClassSet::lumbar();
    let header = SessionHeader {
        started_utc: "20261127-101500",
        source: "/dev/video0",
        width: 64,
        height: 48,
        fps: 30.0,
        model: "m.onnx",
        segment_s: 2.0,
        classes: &classes,
        model_fingerprint: None,
    };
    std::fs::write(dir.path().join("session.toml"), header.to_toml()).expect("write");
    let info = read_session_info(dir.path()).expect("info");
    assert_eq!((info.fps, info.model.as_str()), (30.0, "m.onnx"));
    assert_eq!(info.classes.len(), 4);
    assert_eq!(info.colors[1], classes.classes[1].color);
    assert!(!format!("{info:?}").contains("video0"));
    std::fs::write(dir.path().join("session.toml"), "fps = \"fast\"").expect("write");
    let err = read_session_info(dir.path()).expect_err("bad");
    assert!(err.to_string().contains("session.toml"), "{err}");
}
