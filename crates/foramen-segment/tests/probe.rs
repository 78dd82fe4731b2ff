//! `foramen-probe` end to end: the real binary on the bundled model, on this machine's
//! CPU (issue 19, item 3). ONNX Runtime is found as the binary finds it: ORT_DYLIB_PATH,
//! else the project's `.venv` above the executable.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn bundled() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../models/lumbar-synth.onnx")
        .display()
        .to_string()
}

fn probe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_foramen-probe"))
        .arg("--model")
        .arg(bundled())
        .args(["--size", "96x54", "--warmup", "2", "--runs", "7"])
        .args(args)
        .output()
        .expect("foramen-probe runs")
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn cuda_in_library(doc: &Value) -> bool {
    doc["runtime"]["providers_in_library"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p == "cuda"))
}

/// min <= p50 <= p90 <= p99 <= max, `runs` samples, all positive.
fn check_series(doc: &Value, key: &str, runs: u64) {
    let s = &doc[key];
    assert_eq!(s["count"].as_u64(), Some(runs), "{key}: {s}");
    let v: Vec<f64> = ["min", "p50", "p90", "p99", "max"]
        .iter()
        .map(|k| s[k].as_f64().expect(k))
        .collect();
    assert!(v[0] > 0.0, "{key}: {s}");
    assert!(v.windows(2).all(|w| w[0] <= w[1]), "{key} not ordered: {s}");
}

#[test]
fn cpu_probe_reports_ordered_percentiles_and_a_zero_cpu_difference() {
    let doc = report(&probe(&["--compare-cpu", "--threads", "1"]));
    assert_eq!(doc["provider_requested"], "cpu");
    assert_eq!(doc["provider_used"], "cpu");
    assert!(doc["fallback_reason"].is_null(), "{doc}");
    assert_eq!(
        (doc["warmup"].as_u64(), doc["runs"].as_u64()),
        (Some(2), Some(7))
    );
    assert_eq!(
        (
            doc["input"]["width"].as_u64(),
            doc["input"]["height"].as_u64()
        ),
        (Some(96), Some(54))
    );
    assert_eq!(doc["model_input"]["width"].as_u64(), Some(384));
    assert_eq!(doc["intra_threads"].as_u64(), Some(1));
    check_series(&doc, "model_only_ms", 7);
    check_series(&doc, "model_bound_ms", 7);
    assert_eq!(doc["cuda_graph"], false);
    check_series(&doc, "segment_ms", 7);
    assert!(
        doc["session_load_ms"].as_f64().is_some_and(|v| v > 0.0),
        "{doc}"
    );
    let lib = doc["runtime"]["library"].as_str().expect("library path");
    assert!(lib.contains("libonnxruntime.so"), "{lib}");
    assert!(
        doc["runtime"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{doc}"
    );
    // Two CPU sessions on one frame: the comparison's own code path, difference 0.
    let cmp = &doc["compare_cpu"];
    assert_eq!(cmp["max_abs_prob_diff"].as_f64(), Some(0.0), "{cmp}");
    assert_eq!(cmp["class_agreement"].as_f64(), Some(1.0), "{cmp}");
}

#[test]
fn cuda_without_cuda_falls_back_to_the_cpu_and_says_why() {
    let doc = report(&probe(&["--provider", "cuda"]));
    if doc["provider_used"] == "cuda" {
        return; // A machine with a working CUDA: nothing falls back.
    }
    assert_eq!(doc["provider_requested"], "cuda");
    assert_eq!(doc["provider_used"], "cpu");
    let why = doc["fallback_reason"].as_str().expect("a reason");
    assert!(why.starts_with("CUDA unavailable: "), "{why}");
    // The CPU wheel lacks the provider; the GPU wheel without CUDA's libraries names the
    // library that did not load.
    if cuda_in_library(&doc) {
        assert!(why.contains("Failed to load library"), "{why}");
    } else {
        assert!(why.contains("not in this ONNX Runtime library"), "{why}");
    }
    check_series(&doc, "segment_ms", 7);
}

#[test]
fn require_provider_refuses_the_fallback_naming_cuda_and_the_reason() {
    let out = probe(&["--provider", "cuda", "--require-provider"]);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return; // CUDA works here.
    }
    assert!(out.stdout.is_empty(), "no report when refused");
    assert!(
        err.contains("execution provider cuda unavailable")
            && err.contains("require_provider")
            && err.contains("lumbar-synth.onnx"),
        "{err}"
    );
    assert!(
        err.contains("not in this ONNX Runtime library") || err.contains("Failed to load library"),
        "the reason: {err}"
    );
}

#[test]
fn bad_arguments_name_the_flag() {
    for (args, flag) in [
        (vec!["--provider", "webgl"], "--provider"),
        (vec!["--size", "12by4"], "--size"),
        (vec!["--runs", "0"], "--runs"),
        (vec!["--cuda-graph"], "--cuda-graph needs --provider cuda"),
        (vec!["--bogus"], "--bogus"),
    ] {
        let out = probe(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(flag),
            "{args:?}: {err}"
        );
    }
    let missing = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("nope.onnx");
    let out = Command::new(env!("CARGO_BIN_EXE_foramen-probe"))
        .args(["--model", &missing.display().to_string()])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("nope.onnx"), "{err}");
}

/// Issue 19, item 2: WebGPU against the CPU on a CPU Vulkan driver Dawn accepts (Mesa
/// 25's lavapipe from bookworm-backports, unpacked by `make vulkan-bp` into
/// `.vulkan-bp/`; the system's Mesa 22 lavapipe is refused by Dawn): the provider used
/// is WebGPU and the masks agree with the CPU's on at least 99.5 % of the pixels.
#[test]
fn webgpu_on_a_cpu_vulkan_driver_gives_the_cpus_masks() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.vulkan-bp");
    let icd = root.join("lvp.json");
    if !icd.is_file() {
        eprintln!("skipped: {} not present (make vulkan-bp)", icd.display());
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_foramen-probe"))
        .arg("--model")
        .arg(bundled())
        .args(["--size", "384x224", "--warmup", "2", "--runs", "5"])
        .args([
            "--provider",
            "webgpu",
            "--require-provider",
            "--compare-cpu",
        ])
        .env("VK_DRIVER_FILES", &icd)
        .env("VK_ICD_FILENAMES", &icd)
        .env(
            "LD_LIBRARY_PATH",
            root.join("root/usr/lib/x86_64-linux-gnu"),
        )
        .env("ORT_WEBGPU_EP_ALLOW_SOFTWARE_ADAPTER", "1")
        .output()
        .expect("foramen-probe runs");
    let doc = report(&out);
    let used = doc["provider_used"].as_str().expect("provider");
    assert!(used.starts_with("webgpu"), "{doc}");
    let cmp = &doc["compare_cpu"];
    let agree = cmp["class_agreement"].as_f64().expect("agreement");
    assert!(agree >= 0.995, "masks agree on {agree}: {doc}");
    eprintln!(
        "webgpu ({used}) against cpu: class agreement {agree}, largest probability difference {}",
        cmp["max_abs_prob_diff"]
    );
}

#[test]
fn onnx_runtime_threads_sleep_as_in_the_pipelines_unless_spin_is_asked() {
    let sleeping = report(&probe(&["--threads", "1"]));
    assert_eq!(sleeping["intra_spinning"], false, "{sleeping}");
    let spinning = report(&probe(&["--threads", "1", "--spin"]));
    assert_eq!(spinning["intra_spinning"], true, "{spinning}");
    check_series(&spinning, "segment_ms", 7);
}
