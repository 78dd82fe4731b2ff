//! The data set format, lists and class masks against files written here.

use super::*;

fn write_png(
    path: &Path,
    w: u32,
    h: u32,
    color: png::ColorType,
    depth: png::BitDepth,
    data: &[u8],
) {
    let file = std::fs::File::create(path).expect("create");
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    if color == png::ColorType::Indexed {
        enc.set_palette(vec![0u8, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]);
    }
    enc.write_header()
        .expect("header")
        .write_image_data(data)
        .expect("data");
}

#[test]
fn masks_keep_their_indices_in_every_png_kind_and_refuse_what_would_be_wrong() {
    // Issue 18, item 11: 16-bit and palette masks were read as background or luma.
    use png::{BitDepth, ColorType};
    let dir = tempfile::tempdir().expect("tmp");
    let p = |n: &str| dir.path().join(n);
    write_png(
        &p("g16.png"),
        4,
        1,
        ColorType::Grayscale,
        BitDepth::Sixteen,
        &[0, 0, 0, 1, 0, 2, 0, 3],
    );
    assert_eq!(
        load_mask(&p("g16.png")).expect("16-bit").into_raw(),
        vec![0, 1, 2, 3]
    );
    write_png(
        &p("pal.png"),
        4,
        1,
        ColorType::Indexed,
        BitDepth::Eight,
        &[3, 2, 1, 0],
    );
    assert_eq!(
        load_mask(&p("pal.png")).expect("palette").into_raw(),
        vec![3, 2, 1, 0]
    );
    // 2-bit palette, packed: 0b00_01_10_11.
    write_png(
        &p("pal2.png"),
        4,
        1,
        ColorType::Indexed,
        BitDepth::Two,
        &[0b0001_1011],
    );
    assert_eq!(
        load_mask(&p("pal2.png")).expect("2-bit").into_raw(),
        vec![0, 1, 2, 3]
    );
    write_png(
        &p("grey.png"),
        2,
        1,
        ColorType::Rgb,
        BitDepth::Eight,
        &[2, 2, 2, 1, 1, 1],
    );
    assert_eq!(
        load_mask(&p("grey.png")).expect("grey rgb").into_raw(),
        vec![2, 1]
    );
    write_png(
        &p("big16.png"),
        2,
        1,
        ColorType::Grayscale,
        BitDepth::Sixteen,
        &[0, 1, 1, 44],
    );
    let e = load_mask(&p("big16.png")).expect_err("300").to_string();
    assert!(e.contains("big16.png") && e.contains("value 300"), "{e}");
    write_png(
        &p("rgb.png"),
        1,
        1,
        ColorType::Rgb,
        BitDepth::Eight,
        &[200, 10, 10],
    );
    let e = load_mask(&p("rgb.png")).expect_err("colour").to_string();
    assert!(e.contains("rgb.png") && e.contains("colour mask"), "{e}");
}

#[test]
fn a_mask_declaring_a_huge_size_is_refused_before_decoding() {
    // Issue 18, item 8: a 74-byte PNG declaring 60000x60000.
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("huge.png");
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    let ihdr = [
        &60000u32.to_be_bytes()[..],
        &60000u32.to_be_bytes(),
        &[8, 0, 0, 0, 0],
    ]
    .concat();
    let mut crc_in = b"IHDR".to_vec();
    crc_in.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&crc32(&crc_in).to_be_bytes());
    for chunk in [b"IDAT", b"IEND"] {
        bytes.extend_from_slice(&[0, 0, 0, 0]);
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(&crc32(chunk).to_be_bytes());
    }
    std::fs::write(&path, &bytes).expect("write");
    let e = load_mask(&path).expect_err("huge").to_string();
    assert!(
        e.contains("huge.png") && e.contains("over the limit"),
        "{e}"
    );
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn synth_dataset_round_trips_through_lists() {
    let dir = tempfile::tempdir().expect("tmp");
    let opts = SynthDatasetOptions {
        count: 10,
        seed: 100,
        width: 96,
        height: 54,
        split: (0.8, 0.1),
    };
    let counts = write_synth_dataset(dir.path(), &opts, &|| ()).expect("write");
    assert_eq!(
        counts,
        SplitCounts {
            train: 8,
            val: 1,
            test: 1
        }
    );
    let train = read_list(dir.path(), &dir.path().join("train.txt")).expect("list");
    assert_eq!(train.len(), 8);
    let mask = load_mask(&train[0].mask).expect("mask");
    assert_eq!(mask.dimensions(), (96, 54));
    assert!(mask.pixels().all(|p| p.0[0] <= 3));
    let info = DatasetInfo::read(dir.path())
        .expect("read")
        .expect("present");
    assert_eq!(
        info.class_set().expect("valid").names(),
        ["background", "bone", "ligament", "disc"]
    );
}

#[test]
fn list_errors_name_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let list = dir.path().join("l.txt");
    std::fs::write(dir.path().join("a.png"), b"x").expect("w");
    // Issue 18, item 19: a byte-order mark is not part of the first path.
    std::fs::write(&list, "\u{feff}a.png a.png\n").expect("w");
    assert_eq!(read_list(dir.path(), &list).expect("BOM").len(), 1);
    std::fs::write(&list, "# comment\na.png a.png\n\nonly_one_field\n").expect("w");
    let msg = read_list(dir.path(), &list).unwrap_err().to_string();
    assert!(
        msg.contains("l.txt, line 4") && msg.contains("1 field"),
        "{msg}"
    );

    std::fs::write(&list, "a.png missing.png\n").expect("w");
    let msg = read_list(dir.path(), &list).unwrap_err().to_string();
    assert!(
        msg.contains("line 1") && msg.contains("missing.png"),
        "{msg}"
    );
}

#[test]
fn manifest_errors_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(
        dir.path().join("dataset.toml"),
        "name = \"x\"\n[[classes]]\nindex = 1\nname = \"a\"\ncolor = [0, 0, 0]\n",
    )
    .expect("w");
    let msg = DatasetInfo::read(dir.path()).unwrap_err().to_string();
    assert!(
        msg.contains("dataset.toml") && msg.contains("expected 0"),
        "{msg}"
    );
}

#[test]
fn reads_vocalfolds_lists_when_present() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/vocalfolds");
    if !root.exists() {
        eprintln!("skipping: {} not present", root.display());
        return;
    }
    let val = read_list(&root, &root.join("val.txt")).expect("val list");
    assert_eq!(val.len(), 70);
    assert!(DatasetInfo::read(&root).expect("read").is_none());
    let m = load_mask(&val[0].mask).expect("mask");
    assert!(m.pixels().all(|p| p.0[0] <= 6));
}

#[test]
fn class_names_for_masks_come_from_the_option_then_dataset_toml_then_nowhere() {
    let dir = tempfile::tempdir().expect("tmp");
    let masks = dir.path().join("masks");
    std::fs::create_dir_all(&masks).expect("mkdir");
    let none = DatasetInfo::names_for(&masks, None).expect("none");
    assert_eq!(none, (vec![], "indices".to_string()));
    std::fs::write(
        dir.path().join("dataset.toml"),
        "name = \"x\"\n[[classes]]\nindex = 0\nname = \"bg\"\ncolor = [0, 0, 0]\n\
         [[classes]]\nindex = 1\nname = \"bone\"\ncolor = [9, 9, 9]\n",
    )
    .expect("w");
    let (names, from) = DatasetInfo::names_for(&masks, None).expect("beside");
    assert_eq!(names, ["bg", "bone"]);
    assert!(from.ends_with("dataset.toml"), "{from}");
    let given = Some(vec!["a".to_string(), "b".to_string()]);
    let (names, from) = DatasetInfo::names_for(&masks, given).expect("given");
    assert_eq!(
        (names, from.as_str()),
        (vec!["a".into(), "b".into()], "--classes")
    );
}

#[test]
fn sequences_are_folders_and_the_videos_of_extracted_frames() {
    let root = Path::new("/data/vf");
    let seq = |p: &str| sequence_of(root, &root.join(p));
    assert_eq!(seq("img/patient1/seq3/0182.png"), "img/patient1/seq3");
    assert_eq!(seq("img/patient1/seq3/0023_l.png"), "img/patient1/seq3");
    assert_eq!(seq("frames/caseA_000012.png"), "frames/caseA");
    assert_eq!(seq("frames/case_7_000013.png"), "frames/case_7");
    assert_eq!(seq("images/synth_000123.png"), "images/synth");
    assert_eq!(seq("caseB_000001.png"), "caseB");
    assert_eq!(seq("a.png"), ".");
    // An image outside the root keeps its own folder.
    assert_eq!(
        sequence_of(root, Path::new("/elsewhere/x/1.png")),
        "/elsewhere/x"
    );
}
