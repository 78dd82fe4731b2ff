//! Tests of the ONNX Runtime session: the contract, providers and their fallbacks.

use super::*;

fn bundled() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/lumbar-synth.onnx")
}

#[test]
fn probabilities_only_segmentation_leaves_the_classes_to_the_caller() {
    let mut seg = Segmenter::load(&bundled(), &ModelConfig::default()).expect("bundled model");
    let rgb: Vec<u8> = (0..160 * 90 * 3).map(|i| (i * 37 % 251) as u8).collect();
    let frame = Frame::new(3, 0, 160, 90, rgb).expect("frame");
    let full = seg.segment(&frame).expect("segment");
    let want = seg.output_probabilities().to_vec();
    // Another frame between: its probabilities must not be the ones returned below.
    let grey = Frame::new(4, 0, 160, 90, vec![128; 160 * 90 * 3]).expect("frame");
    seg.segment(&grey).expect("segment");
    assert_ne!(seg.output_probabilities(), want.as_slice());
    let only = seg.segment_probabilities(&frame).expect("probabilities");
    // The same frame, stamped the same; the classes are not computed, the probabilities are.
    assert_eq!(only.mask.source_frame_id, 3);
    assert_eq!(only.mask.classes.len(), full.mask.classes.len());
    assert!(
        only.mask
            .classes
            .iter()
            .chain(&only.mask.confidence)
            .all(|&v| v == 0)
    );
    assert_eq!(seg.output_probabilities(), want.as_slice());
}

#[test]
fn bundled_model_loads_from_its_own_contract_and_stamps_masks() {
    let mut seg = Segmenter::load(&bundled(), &ModelConfig::default()).expect("bundled model");
    assert_eq!(
        seg.classes().names(),
        ["background", "bone", "ligament", "disc"]
    );
    assert_eq!(seg.execution_provider(), "cpu");
    let (iw, ih) = (seg.contract().input.width, seg.contract().input.height);
    let mut frame = Frame::new(41, 1_234, 200, 120, vec![128; 200 * 120 * 3]).expect("frame");
    frame.captured_at_us = 77;
    let out = seg.segment(&frame).expect("segment");
    assert_eq!((out.mask.width, out.mask.height), (iw, ih));
    assert_eq!(
        (
            out.mask.source_frame_id,
            out.mask.source_pts_us,
            out.mask.source_captured_at_us
        ),
        (41, 1_234, 77)
    );
    assert!(out.mask.classes.iter().all(|&c| c < 4));
    // Confidence is the winning class's softmax probability: never below 1/C.
    assert!(out.mask.confidence.iter().all(|&p| p >= 255 / 4));
    assert!(out.timings.infer_ms > 0.0 && out.mask.infer_ms >= out.timings.infer_ms);
    let own = seg.output_probabilities().to_vec();
    let n = (iw * ih) as usize;
    assert_eq!(own.len(), 4 * n);
    for i in (0..n).step_by(97) {
        let s: f32 = (0..4).map(|c| own[c * n + i]).sum();
        assert!((s - 1.0).abs() < 1e-4);
        let best = (0..4).fold(0, |b, c| {
            if own[c * n + i] > own[b * n + i] {
                c
            } else {
                b
            }
        });
        assert_eq!(
            out.mask.classes[i] as usize, best,
            "same argmax as the mask"
        );
    }
    let p = seg.last_probabilities(50, 30);
    assert_eq!(p.len(), 4 * 50 * 30);
    for i in 0..50 * 30 {
        let s: f32 = (0..4).map(|c| p[c * 1500 + i]).sum();
        assert!((s - 1.0).abs() < 1e-4);
    }
    // A frame of another size rebuilds the preprocessor instead of failing.
    let other = Frame::new(42, 0, 64, 64, vec![90; 64 * 64 * 3]).expect("frame");
    assert_eq!(
        seg.segment(&other).expect("segment").mask.source_frame_id,
        42
    );
}

#[test]
fn load_errors_name_the_file() {
    let missing = Segmenter::load(Path::new("/nonexistent/x.onnx"), &ModelConfig::default())
        .err()
        .expect("error");
    assert!(
        missing.to_string().contains("/nonexistent/x.onnx"),
        "{missing}"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"\x08\x07garbage").expect("w");
    let e = Segmenter::load(&junk, &ModelConfig::default())
        .err()
        .expect("error")
        .to_string();
    assert!(
        e.contains("junk.onnx") && e.contains("not a loadable ONNX model"),
        "{e}"
    );
}

#[test]
fn unavailable_providers_fall_back_to_cpu() {
    // The CPU wheel has neither CUDA nor TensorRT: asking for them must still run.
    let cfg = ModelConfig {
        execution_provider: ExecutionProvider::Tensorrt,
        ..ModelConfig::default()
    };
    let seg = Segmenter::load(&bundled(), &cfg).expect("loads");
    assert!(["cpu", "cuda", "tensorrt"].contains(&seg.execution_provider()));
}

#[test]
fn webgpu_runs_on_its_device_or_the_cpu_says_why() {
    // Issue 19, item 2. Here Dawn finds no adapter it accepts (Debian 12's lavapipe
    // lacks a Vulkan feature it needs): the CPU, stated; on a GPU, webgpu itself.
    init_runtime().expect("ONNX Runtime");
    let cfg = ModelConfig {
        execution_provider: ExecutionProvider::Webgpu,
        ..ModelConfig::default()
    };
    let seg = Segmenter::load(&bundled(), &cfg).expect("loads");
    match seg.execution_provider() {
        "webgpu" | "webgpu+cpu" => assert_eq!(seg.provider_fallback(), None),
        used => {
            assert_eq!(used, "cpu");
            let why = seg.provider_fallback().expect("the reason");
            assert!(why.starts_with("WebGPU unavailable: "), "{why}");
            let strict = ModelConfig {
                require_provider: true,
                ..cfg.clone()
            };
            let err = Segmenter::load(&bundled(), &strict).err().expect("refused");
            assert!(
                err.to_string()
                    .contains("execution provider webgpu unavailable"),
                "{err}"
            );
        }
    }
    let missing = ModelConfig {
        webgpu_library: Some("/nonexistent/libonnxruntime_providers_webgpu.so".into()),
        ..cfg
    };
    let seg = Segmenter::load(&bundled(), &missing).expect("cpu");
    let why = seg.provider_fallback().expect("the reason");
    assert!(
        why.contains("/nonexistent/libonnxruntime_providers_webgpu.so"),
        "{why}"
    );
}

#[test]
fn a_fallback_to_the_cpu_is_stated_and_can_be_refused() {
    // Issue 19, item 1: `cuda` asked for, the CPU used, and nothing said.
    init_runtime().expect("ONNX Runtime");
    if ep::CUDA::is_available().unwrap_or(false) {
        return; // A GPU build: the fallback is not what runs here.
    }
    let cfg = ModelConfig {
        execution_provider: ExecutionProvider::Cuda,
        ..ModelConfig::default()
    };
    let seg = Segmenter::load(&bundled(), &cfg).expect("loads on the CPU");
    assert_eq!(seg.execution_provider(), "cpu");
    let why = seg.provider_fallback().expect("the reason");
    assert!(why.starts_with("CUDA unavailable: "), "{why}");
    let strict = ModelConfig {
        require_provider: true,
        ..cfg
    };
    let err = Segmenter::load(&bundled(), &strict)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("execution provider cuda unavailable") && err.contains("require_provider"),
        "{err}"
    );
    let plain = Segmenter::load(&bundled(), &ModelConfig::default()).expect("cpu");
    assert_eq!(
        (plain.execution_provider(), plain.provider_fallback()),
        ("cpu", None)
    );
}
