//! The Label Studio interchange against hand-made exports and Label Studio's own codec.

use super::*;

fn rng_mask(w: usize, h: usize, seed: u64) -> Vec<u8> {
    let mut r = crate::noise::Rng::new(seed);
    // Blobs with long runs and isolated pixels, as real masks have.
    let mut v = vec![0u8; w * h];
    let mut cur = 0u8;
    for x in &mut v {
        if r.next_u64().is_multiple_of(23) {
            cur = (r.next_u64() % 4) as u8;
        }
        *x = if r.next_u64().is_multiple_of(97) {
            9
        } else {
            cur
        };
    }
    v
}

#[test]
fn rle_round_trips_runs_of_every_length_class() {
    let mut v = vec![7u8];
    for len in [2, 8, 9, 16, 17, 256, 257, 65_536, 65_537, 140_000] {
        v.extend(std::iter::repeat_n((len % 251) as u8, len));
        v.push(1);
    }
    assert_eq!(rle_decode(&rle_encode(&v)).expect("decode"), v);
    for (w, h) in [(1, 1), (3, 5), (37, 11), (101, 67)] {
        let m = rng_mask(w, h, (w * h) as u64);
        assert_eq!(rle_decode(&rle_encode(&m)).expect("decode"), m, "{w}x{h}");
    }
    assert_eq!(
        rle_decode(&rle_encode(&[])).expect("empty"),
        Vec::<u8>::new()
    );
}

#[test]
fn rle_header_and_padding_match_label_studio() {
    // Two values 5, 5: header 32 + 5 + 16 bits, one run (1 + 2 + 3 + 8 bits) = 67
    // bits, padded with 5 zeros to 72.
    let b = rle_encode(&[5, 5]);
    assert_eq!(b.len(), 9);
    assert_eq!(&b[..4], &[0, 0, 0, 2]);
    // One run of 20 fills exactly 72 bits: Label Studio still appends 8 zero bits.
    assert_eq!(rle_encode(&[4; 20]).len(), 10);
}

#[test]
fn bad_rle_is_an_error_not_a_panic() {
    let b = rle_encode(&[1, 2, 3, 4]);
    assert_eq!(rle_decode(&b[..5]), Err(RleError::Truncated(37)));
    let err = rle_to_mask(&rle_encode(&[0; 12]), 2, 2).expect_err("length");
    assert!(err.to_string().contains("2x2x4"), "{err}");
    // A header claiming a huge count with no data behind it.
    assert!(matches!(
        rle_decode(&[255, 255, 255, 255, 0x38, 0, 0]),
        Err(RleError::Truncated(_))
    ));
    // Issue 18, item 7: a header declaring 4 billion values in front of runs that
    // would decode to gigabytes is refused before decoding, by its count.
    let mut huge = rle_encode(&[0; 64]);
    huge[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    let t = std::time::Instant::now();
    let err = rle_to_mask(&huge, 4, 4).expect_err("count");
    assert!(
        matches!(err, RleError::Length { got, want: 64, .. } if got == u32::MAX as usize),
        "{err}"
    );
    assert!(t.elapsed() < std::time::Duration::from_millis(50));
}

#[test]
fn class_lists_that_would_write_a_broken_data_set_are_refused() {
    // Issue 18, item 14: more than 254 names wrapped into 255/0; duplicates and a
    // class named background wrote a dataset.toml that eval rejects.
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(LabelMap::fixed(names(&["bone", "ligament", "disc"])).is_ok());
    let many: Vec<String> = (0..255).map(|i| format!("c{i}")).collect();
    assert!(
        LabelMap::fixed(many)
            .expect_err("255")
            .contains("255 class names")
    );
    assert!(
        LabelMap::fixed(names(&["bone", "bone"]))
            .expect_err("dup")
            .contains("twice")
    );
    let bg = LabelMap::fixed(names(&["Background", "bone"])).expect_err("bg");
    assert!(bg.contains("background"), "{bg}");
    let mut first_seen = LabelMap::FirstSeen(Vec::new());
    assert!(first_seen.index("background").is_err());
    for i in 0..254 {
        first_seen.index(&format!("c{i}")).expect("room");
    }
    assert!(
        first_seen
            .index("one more")
            .expect_err("full")
            .contains("too many")
    );
}

#[test]
fn sizes_beyond_32_bits_or_the_pixel_limit_are_refused_per_task() {
    // Issue 18, item 15: original_width 2^32 + 160 was read as 160.
    let task = |w: u64, h: u64| {
        format!(
            r#"[{{"id": 9, "data": {{"image": "/data/local-files/?d=images/a.png"}},
            "annotations": [{{"result": [{{"type": "polygonlabels", "original_width": {w}, "original_height": {h},
            "value": {{"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["bone"]}}}}]}}]}}]"#
        )
    };
    let mut labels = LabelMap::FirstSeen(Vec::new());
    let mut size = |_: &str| Some((160u32, 90u32));
    let (ok, issues) = import_export(&task(160, 90), &mut labels, &mut size).expect("json");
    assert_eq!((ok.len(), issues.len()), (1, 0));
    let (ok, issues) =
        import_export(&task((1u64 << 32) + 160, 90), &mut labels, &mut size).expect("json");
    assert!(ok.is_empty());
    assert!(
        issues[0].message.contains("is not a picture size"),
        "{}",
        issues[0].message
    );
    let mut huge = |_: &str| Some((60_000u32, 60_000u32));
    let (_, issues) = import_export(&task(60_000, 60_000), &mut labels, &mut huge).expect("json");
    assert!(
        issues[0].message.contains("over the limit"),
        "{}",
        issues[0].message
    );
}

#[test]
fn polygons_cover_pixel_centres_inside() {
    // A square from 25% to 75% of a 8x4 image: x 2..6, y 1..3.
    let m = rasterize_polygon(
        &[[25.0, 25.0], [75.0, 25.0], [75.0, 75.0], [25.0, 75.0]],
        8,
        4,
    );
    let on: Vec<(usize, usize)> = (0..32).filter(|&i| m[i]).map(|i| (i % 8, i / 8)).collect();
    let want: Vec<(usize, usize)> = (1..3).flat_map(|y| (2..6).map(move |x| (x, y))).collect();
    assert_eq!(on, want);
}

#[test]
fn file_names_lose_the_upload_prefix_only() {
    assert_eq!(
        image_file_name("/data/upload/3/1a2b3c4d-case7_000120.png"),
        "case7_000120.png"
    );
    assert_eq!(
        image_file_name("s3://b/x/case-7_000120.png"),
        "case-7_000120.png"
    );
    assert_eq!(image_file_name("http://h/img/abc.png?x=1"), "abc.png");
    // Issue 18, item 19: a date prefix is not an upload prefix; local files are
    // named by their `d` parameter.
    assert_eq!(
        image_file_name("/data/local-files/?d=images/20240131-case7.png"),
        "20240131-case7.png"
    );
    assert_eq!(
        image_file_name("s3://b/20240131-case7.png"),
        "20240131-case7.png"
    );
    assert_eq!(source_video("case7_000120.png"), "case7");
    assert_eq!(source_video("still.png"), "still");
}

#[test]
fn splits_keep_videos_whole_and_follow_the_ratios() {
    let names: Vec<String> = (0..10)
        .flat_map(|v| (0..10).map(move |f| format!("vid{v}_{f:04}.png")))
        .collect();
    let split = split_by_video(&names, [0.8, 0.1, 0.1], 3);
    assert_eq!(split.len(), 10);
    let count = |s| split.values().filter(|&&x| x == s).count();
    assert_eq!((count(0), count(1), count(2)), (8, 1, 1));
    assert_eq!(
        split,
        split_by_video(&names, [0.8, 0.1, 0.1], 3),
        "deterministic"
    );
}

#[test]
fn exports_import_with_overlaps_resolved_by_order_and_errors_per_task() {
    let (w, h) = (6u32, 4u32);
    let left: Vec<bool> = (0..24).map(|i| i % 6 < 3).collect();
    let export = json!([
        { "id": 1, "data": { "image": "/data/upload/1/deadbeef-v1_0001.png" },
          "annotations": [{ "result": [
            { "type": "brushlabels", "original_width": w, "original_height": h,
              "value": { "format": "rle", "rle": mask_to_rle(&left), "brushlabels": ["bone"] } },
            { "type": "polygonlabels", "original_width": w, "original_height": h,
              "value": { "points": [[0, 0], [100, 0], [100, 50], [0, 50]], "polygonlabels": ["disc"] } }
          ]}]},
        { "id": 2, "data": { "image": "v1_0002.png" }, "annotations": [] },
        { "id": 3, "data": { "image": "v1_0003.png" },
          "annotations": [{ "result": [{ "type": "polygonlabels", "original_width": w, "original_height": h,
              "value": { "points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["tumour"] } }]}]},
        { "id": 4, "data": { "image": "v1_0004.png" },
          "annotations": [{ "result": [{ "type": "brushlabels", "original_width": w, "original_height": h,
              "value": { "rle": mask_to_rle(&[true; 5]), "brushlabels": ["bone"] } }]}]},
        { "id": 5, "data": { "image": "missing.png" },
          "annotations": [{ "result": [{ "type": "brushlabels", "original_width": w, "original_height": h,
              "value": { "rle": mask_to_rle(&left), "brushlabels": ["bone"] } }]}]}
    ]);
    let mut labels = LabelMap::Fixed(vec!["bone".into(), "ligament".into(), "disc".into()]);
    let mut size = |n: &str| (n != "missing.png").then_some((w, h));
    let (done, issues) = import_export(&export.to_string(), &mut labels, &mut size).expect("parse");
    assert_eq!(done.len(), 1);
    let t = &done[0];
    assert_eq!(
        (t.task.as_str(), t.image_name.as_str()),
        ("1", "v1_0001.png")
    );
    // Top half: disc (painted last) over bone; bottom-left: bone; bottom-right: background.
    assert_eq!(
        t.mask,
        vec![
            3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0
        ]
    );
    let msgs: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    assert_eq!(msgs.len(), 4, "{msgs:?}");
    assert!(msgs[0].starts_with("task 2: no annotation"), "{msgs:?}");
    assert!(msgs[1].contains("task 3") && msgs[1].contains("unknown label \"tumour\""));
    assert!(
        msgs[2].contains("task 4") && msgs[2].contains("6x4x4"),
        "{msgs:?}"
    );
    assert!(msgs[3].contains("task 5") && msgs[3].contains("missing.png not found"));
}

#[test]
fn labels_are_numbered_by_first_appearance_without_a_class_list() {
    let mut l = LabelMap::FirstSeen(vec![]);
    assert_eq!(l.index("disc"), Ok(1));
    assert_eq!(l.index("bone"), Ok(2));
    assert_eq!(l.index("disc"), Ok(1));
    assert_eq!(l.names(), vec!["background", "disc", "bone"]);
}

#[test]
fn predictions_carry_one_brush_layer_per_class_present() {
    let classes = foramen_core::ClassSet::lumbar();
    let mask = vec![0, 1, 1, 3, 0, 3];
    let t = task_json("/img/a.png", Some((&mask, 3, 2, &classes, "m")));
    let res = t
        .pointer("/predictions/0/result")
        .and_then(Value::as_array)
        .expect("results");
    assert_eq!(res.len(), 2);
    let rle: Vec<u8> = res[1]["value"]["rle"]
        .as_array()
        .expect("rle")
        .iter()
        .map(|v| v.as_u64().expect("byte") as u8)
        .collect();
    assert_eq!(res[1]["value"]["brushlabels"][0], "disc");
    assert_eq!(
        rle_to_mask(&rle, 3, 2).expect("decode"),
        vec![false, false, false, true, false, true]
    );
    let xml = labeling_config_xml(&classes);
    assert!(
        xml.contains("<Label value=\"bone\" background=\"#"),
        "{xml}"
    );
    assert!(
        !xml.contains("background\" background"),
        "index 0 is not a label"
    );
}

#[test]
fn local_files_urls_are_decoded_and_written_as_label_studio_decodes_them() {
    // Issue 21: the URL `foramen export label-studio --image-root /data/local-files/?d=...`
    // writes, as a Label Studio server exports it, must find its image again.
    assert_eq!(
        local_files_path("/data/local-files/?d=images%2Fcase%207%2Bb_000023.png"),
        Some("images/case 7+b_000023.png".to_string())
    );
    assert_eq!(
        local_files_path("http://127.0.0.1:8080/data/local-files/?x=1&d=a/b+c.png#top"),
        Some("a/b c.png".to_string())
    );
    assert_eq!(local_files_path("/data/upload/3/1a2b3c4d-a.png"), None);
    assert_eq!(
        image_file_name("/data/local-files/?d=images/synth_000023.png"),
        "synth_000023.png"
    );
    assert_eq!(
        image_file_name("/data/local-files/?d=images%2Fcase%207_000023.png"),
        "case 7_000023.png"
    );
    assert_eq!(
        image_file_name("/data/upload/3/1a2b3c4d-a%20b.png"),
        "a b.png"
    );
    assert_eq!(image_file_name("/data/local-files/?d=%zz.png"), "%zz.png");
    // Export writes names Label Studio decodes back to the file's own name.
    let url = image_url("/data/local-files/?d=images/", "case 7+b&c_000023.png");
    assert_eq!(
        url,
        "/data/local-files/?d=images/case%207%2Bb%26c_000023.png"
    );
    assert_eq!(
        local_files_path(&url).as_deref(),
        Some("images/case 7+b&c_000023.png")
    );
    assert_eq!(image_url("", "a.png"), "a.png");
}

#[test]
fn local_files_urls_find_their_image_relative_to_the_folder_or_by_name_never_outside() {
    // Issue 21: `--images` may be Label Studio's document root or any folder below it.
    let dir = std::env::temp_dir().join(format!("foramen-ls-files-{}", std::process::id()));
    let images = dir.join("frames").join("case7");
    std::fs::create_dir_all(&images).expect("mkdir");
    for name in ["synth_000023.png", "a b.png"] {
        std::fs::write(images.join(name), b"x").expect("write");
    }
    std::fs::write(dir.join("secret.png"), b"x").expect("write");
    let url = "/data/local-files/?d=frames%2Fcase7%2Fsynth_000023.png";
    // --images at the document root, at frames/, at frames/case7/: the same file.
    for root in [dir.clone(), dir.join("frames"), images.clone()] {
        let files = ImageFiles::new(&root).expect("list");
        assert_eq!(
            files.find(url),
            Some(
                root.join(images.strip_prefix(&root).expect("below"))
                    .join("synth_000023.png")
            ),
            "{}",
            root.display()
        );
        assert!(
            files
                .find("/data/local-files/?d=frames/case7/missing.png")
                .is_none()
        );
    }
    let files = ImageFiles::new(&images).expect("list");
    // By name (uploads, other folders) and decoded.
    assert_eq!(
        files.find("/data/upload/1/deadbeef-a%20b.png"),
        Some(images.join("a b.png"))
    );
    assert_eq!(
        files.find("/data/local-files/?d=elsewhere/a+b.png"),
        Some(images.join("a b.png"))
    );
    // Never outside the folder.
    assert!(
        files
            .find("/data/local-files/?d=../../secret.png")
            .is_none()
    );
    assert!(
        files
            .find("/data/local-files/?d=%2F..%2Fsecret.png")
            .is_none()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_url_naming_no_file_is_reported_with_the_url() {
    let export = r#"[{"id": 4, "data": {"image": "/data/local-files/?d=images/"},
        "annotations": [{"result": []}]}]"#;
    let mut labels = LabelMap::FirstSeen(Vec::new());
    let mut size = |_: &str| Some((4u32, 4u32));
    let (ok, issues) = import_export(export, &mut labels, &mut size).expect("json");
    assert!(ok.is_empty());
    assert!(
        issues[0].to_string().contains("names no file"),
        "{}",
        issues[0]
    );
    // The size callback receives the URL itself, which ImageFiles::find resolves.
    let export = r#"[{"id": 5, "data": {"image": "/data/local-files/?d=images/a%2Bb.png"},
        "annotations": [{"result": []}]}]"#;
    let mut seen = Vec::new();
    let mut size = |url: &str| {
        seen.push(url.to_string());
        Some((2u32, 1u32))
    };
    let (ok, _) = import_export(export, &mut labels, &mut size).expect("json");
    assert_eq!(ok[0].image_name, "a+b.png");
    assert_eq!(ok[0].image_url, "/data/local-files/?d=images/a%2Bb.png");
    assert_eq!(ok[0].mask, vec![0, 0]);
    assert!(
        seen.iter()
            .all(|u| u == "/data/local-files/?d=images/a%2Bb.png")
    );
}
