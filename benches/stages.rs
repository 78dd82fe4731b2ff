//! Per-frame stages at 1920x1080: synthetic rendering, preprocessing into the model's
//! input tensor, postprocessing, the temporal filter's softmax, compositing, and (when the bundled model and ONNX
//! Runtime are present) one full segmentation.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use foramen_core::config::{ModelConfig, OverlayConfig};
use foramen_core::{ClassSet, Frame, Mask};
use foramen_data::synth::{SceneSpec, render_still};
use foramen_overlay::{Compositor, OverlayStyle};
use foramen_segment::Segmenter;
use foramen_segment::prepost::{Preprocessor, argmax_confidence, softmax_in_place, softmax_planar};

fn stages(c: &mut Criterion) {
    let (w, h) = (1920u32, 1080u32);
    let spec = SceneSpec::from_seed(7);
    let scene = render_still(&spec, w, h);
    let mut g = c.benchmark_group("1080p");
    g.sample_size(20);

    g.bench_function("synth_render", |b| {
        b.iter(|| black_box(render_still(&spec, w, h)))
    });

    let mut pre = Preprocessor::new(
        (w, h),
        (384, 224),
        255.0,
        [0.485, 0.456, 0.406],
        [0.229, 0.224, 0.225],
    );
    let mut tensor = vec![0.0f32; 3 * 384 * 224];
    g.bench_function("preprocess_to_384x224", |b| {
        b.iter(|| pre.run(black_box(&scene.rgb), &mut tensor))
    });

    let logits: Vec<f32> = (0..4 * 384 * 224)
        .map(|i| ((i * 7919) % 97) as f32 / 10.0)
        .collect();
    let (mut cls, mut conf) = (vec![0u8; 384 * 224], vec![0u8; 384 * 224]);
    g.bench_function("postprocess_384x224x4", |b| {
        b.iter(|| argmax_confidence(black_box(&logits), 4, true, &mut cls, &mut conf))
    });

    bench_softmax(&mut g, &logits);

    let mask = Mask {
        source_frame_id: 0,
        source_pts_us: 0,
        source_captured_at_us: 0,
        width: 384,
        height: 224,
        classes: cls.clone(),
        confidence: conf.clone(),
        infer_ms: 0.0,
    };
    let style = OverlayStyle::new(&ClassSet::lumbar(), &OverlayConfig::default());
    let mut comp = Compositor::new();
    let mut out = vec![0u8; scene.rgb.len()];
    g.bench_function("composite_fill_contour", |b| {
        b.iter(|| comp.composite(black_box(&scene.rgb), w, h, &mask, &style, &mut out))
    });

    let frame = Frame::new(0, 0, w, h, scene.rgb.clone()).expect("frame");
    bench_model(&mut g, "segment_full", "lumbar-synth.onnx", &frame);
    g.finish();

    // The real-endoscopy model on a real 512x512 frame, when both are present.
    let real = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/vocalfolds/img/patient2/seq6");
    let first = foramen_data::dataset::list_images(&real)
        .ok()
        .and_then(|f| f.into_iter().next());
    if let Some(img) = first.and_then(|p| image::open(p).ok()) {
        let img = img.into_rgb8();
        let (iw, ih) = img.dimensions();
        let frame = Frame::new(0, 0, iw, ih, img.into_raw()).expect("frame");
        let mut g = c.benchmark_group("vocalfolds_512");
        g.sample_size(30);
        bench_model(&mut g, "segment_full", "vocalfolds.onnx", &frame);
        g.finish();
    }
}

/// The temporal filter's input, class probabilities of four classes at 384x224: one
/// thread against rayon's.
fn bench_softmax(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    logits: &[f32],
) {
    let mut probs = logits.to_vec();
    g.bench_function("softmax_384x224x4_sequential", |b| {
        b.iter(|| {
            probs.copy_from_slice(logits);
            softmax_in_place(black_box(&mut probs), 4)
        })
    });
    let (mut peak, mut total) = (Vec::new(), Vec::new());
    g.bench_function("softmax_384x224x4", |b| {
        b.iter(|| softmax_planar(black_box(logits), 4, &mut probs, &mut peak, &mut total))
    });
}

/// Benchmarks one full segmentation (pre + model + post) with `models/<file>`.
fn bench_model(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    file: &str,
    frame: &Frame,
) {
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../models")
        .join(file);
    match Segmenter::load(&model, &ModelConfig::default()) {
        Ok(mut seg) => {
            g.bench_function(name, |b| {
                b.iter(|| black_box(seg.segment(frame).expect("segment")))
            });
        }
        Err(e) => eprintln!("skipping {file}: {e}"),
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
