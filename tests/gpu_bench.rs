//! The overlay's GPU path offscreen (`foramen-gpu-bench`, a binary of `foramen-app`):
//! Vulkan through Mesa's lavapipe here, a real GPU elsewhere.

use std::process::Command;

mod common;
use common::text;

#[test]
fn the_gpu_bench_times_the_overlay_at_1080p_and_4k() {
    // Offscreen, no display: Vulkan through Mesa's lavapipe here, a real GPU elsewhere.
    let dir = tempfile::tempdir().expect("tmp");
    let json = dir.path().join("gpu.json");
    let out = Command::new(env!("CARGO_BIN_EXE_foramen-gpu-bench"))
        .args(["--frames", "2", "--json", &json.display().to_string()])
        .output()
        .expect("run foramen-gpu-bench");
    assert!(out.status.success(), "{}", text(&out));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    assert!(
        doc["adapter"].as_str().is_some_and(|a| !a.is_empty()),
        "{doc}"
    );
    let rows = doc["results"].as_array().expect("results");
    let sizes: Vec<_> = rows
        .iter()
        .map(|r| (r["width"].clone(), r["height"].clone()))
        .collect();
    assert_eq!(
        sizes,
        [(1920.into(), 1080.into()), (3840.into(), 2160.into())],
        "{doc}"
    );
    for r in rows {
        for key in ["upload_draw", "draw_only"] {
            let p50 = r[format!("{key}_p50_ms")].as_f64().expect("p50");
            let p99 = r[format!("{key}_p99_ms")].as_f64().expect("p99");
            assert!(p50 > 0.0 && p50 <= p99, "{key}: {r}");
        }
    }
    let out = Command::new(env!("CARGO_BIN_EXE_foramen-gpu-bench"))
        .args(["--frames", "0"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(text(&out).contains("--frames"), "{}", text(&out));
}
