//! `foramen compare`: where the report's class names come from.

use crate::common;
use crate::common::foramen;

/// `foramen compare --classes` (issue 21): the report names the classes from
/// `--classes`, else from the `dataset.toml` beside the reference, else by index; a class
/// in the masks without a name is an error.
#[test]
fn compare_names_classes_from_the_option_the_data_set_or_indices() {
    let dir = tempfile::tempdir().expect("tmp");
    let (data, reader) = (dir.path().join("data"), dir.path().join("reader"));
    let reference = data.join("masks");
    for d in [&reference, &reader] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    for i in 0..4u8 {
        // Reference: bone left, disc right; the reader misses a column of disc.
        let truth =
            image::GrayImage::from_fn(16, 8, |x, _| image::Luma([1 + 2 * u8::from(x >= 8)]));
        let pred = image::GrayImage::from_fn(16, 8, |x, _| {
            image::Luma([if x >= 15 - i as u32 {
                0
            } else {
                truth.get_pixel(x, 0).0[0]
            }])
        });
        truth
            .save(reference.join(format!("f{i}.png")))
            .expect("png");
        pred.save(reader.join(format!("f{i}.png"))).expect("png");
    }
    let (ref_s, reader_s) = (
        reference.display().to_string(),
        format!("r={}", reader.display()),
    );
    let compare = |name: &str, classes: Option<&str>| {
        let out = dir.path().join(name);
        let mut args = vec!["compare", "--reference", &ref_s, "--reader", &reader_s];
        let out_s = out.display().to_string();
        args.extend(["--out", &out_s]);
        args.extend(classes.iter().flat_map(|c| ["--classes", c]));
        let run = foramen(&args);
        let report = std::fs::read_to_string(out.join("report.md")).unwrap_or_default();
        let doc: serde_json::Value = std::fs::read_to_string(out.join("compare.json"))
            .map_or(serde_json::Value::Null, |t| {
                serde_json::from_str(&t).expect("json")
            });
        (run, report, doc)
    };
    std::fs::write(
        data.join("dataset.toml"),
        "name = \"d\"\n[[classes]]\nindex = 0\nname = \"background\"\ncolor = [0, 0, 0]\n\
         [[classes]]\nindex = 1\nname = \"bone\"\ncolor = [9, 9, 9]\n\
         [[classes]]\nindex = 2\nname = \"ligament\"\ncolor = [8, 8, 8]\n\
         [[classes]]\nindex = 3\nname = \"disc\"\ncolor = [7, 7, 7]\n",
    )
    .expect("dataset.toml");
    // --classes wins over dataset.toml.
    let (run, report, doc) = compare("given", Some("bg,hueso,ligamento,disco"));
    assert!(run.status.success(), "{}", common::text(&run));
    assert!(report.contains("| reader | hueso | disco |"), "{report}");
    assert!(report.contains("names from `--classes`"), "{report}");
    assert_eq!(doc["classes"]["names_from"], "--classes");
    assert_eq!(doc["readers"]["r"]["per_class"]["hueso"]["mean_iou"], 1.0);
    assert_eq!(doc["readers"]["r"]["per_class"]["disco"]["images"], 4);
    // Else the dataset.toml beside the reference folder.
    let (run, report, doc) = compare("toml", None);
    assert!(run.status.success(), "{}", common::text(&run));
    assert!(report.contains("| reader | bone | disc |"), "{report}");
    let from = doc["classes"]["names_from"].as_str().unwrap_or("");
    assert!(from.ends_with("dataset.toml"), "{doc}");
    // Else the classes' indices.
    std::fs::remove_file(data.join("dataset.toml")).expect("rm");
    let (run, report, doc) = compare("indices", None);
    assert!(run.status.success(), "{}", common::text(&run));
    assert!(
        report.contains("| reader | 1 | 3 |") && report.contains("by index"),
        "{report}"
    );
    assert!(doc["readers"]["r"]["per_class"]["3"]["mean_iou"].as_f64() < Some(1.0));
    // Too few names for the masks' classes.
    let (run, _, _) = compare("short", Some("background,bone"));
    let said = common::text(&run);
    assert!(
        !run.status.success() && said.contains("class 3 is in the masks"),
        "{said}"
    );
}
