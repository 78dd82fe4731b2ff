use super::*;
use crate::prepost::argmax_confidence;

fn settings(alpha: f32, hysteresis: f32, min_confidence: f32) -> TemporalSettings {
    TemporalSettings::new(alpha, hysteresis, 0.0, min_confidence, 1.0).expect("valid")
}

fn at(id: u64) -> FrameStamp {
    FrameStamp {
        id,
        at_us: id * 33_333,
    }
}

/// Two classes, one pixel per (class 0, class 1) pair: planar probabilities.
fn planes(pixels: &[(f32, f32)]) -> Vec<f32> {
    let mut p: Vec<f32> = pixels.iter().map(|x| x.0).collect();
    p.extend(pixels.iter().map(|x| x.1));
    p
}

/// Runs one frame of 2 classes and returns the classes shown and the step.
fn step(f: &mut TemporalFilter, id: u64, pixels: &[(f32, f32)]) -> (Vec<u8>, StepInfo) {
    step_at(f, at(id), pixels)
}

fn step_at(f: &mut TemporalFilter, s: FrameStamp, px: &[(f32, f32)]) -> (Vec<u8>, StepInfo) {
    let (mut c, mut p) = (vec![9; px.len()], vec![0; px.len()]);
    let info = f
        .apply(s, &planes(px), 2, (px.len(), 1), &mut c, &mut p)
        .expect("apply");
    (c, info)
}

#[test]
fn off_is_the_plain_argmax_and_steady_input_is_unchanged() {
    let (w, h, classes) = (13, 7, 4);
    let n = w * h;
    // Deterministic pseudo-random probabilities, normalised per pixel.
    let mut raw: Vec<f32> = (0..classes * n)
        .map(|i| ((i * 7919 + 13) % 101) as f32 + 1.0)
        .collect();
    for i in 0..n {
        let s: f32 = (0..classes).map(|c| raw[c * n + i]).sum();
        (0..classes).for_each(|c| raw[c * n + i] /= s);
    }
    let (mut want_c, mut want_p) = (vec![0; n], vec![0; n]);
    argmax_confidence(&raw, classes, false, &mut want_c, &mut want_p);
    for s in [TemporalSettings::OFF, settings(0.7, 0.1, 0.0)] {
        let mut f = TemporalFilter::new(s);
        for id in 0..20 {
            let (mut c, mut p) = (vec![0; n], vec![0; n]);
            f.apply(at(id), &raw, classes, (w, h), &mut c, &mut p)
                .expect("apply");
            assert_eq!((&c, &p), (&want_c, &want_p), "{s:?} frame {id}");
        }
    }
}

#[test]
fn a_single_frame_flicker_is_suppressed_and_shown_without_the_filter() {
    let steady = [(0.2, 0.8), (0.9, 0.1)];
    let flicker = [(0.7, 0.3), (0.9, 0.1)];
    let mut plain = TemporalFilter::new(TemporalSettings::OFF);
    let mut smooth = TemporalFilter::new(settings(0.6, 0.1, 0.0));
    for id in 0..5 {
        assert_eq!(step(&mut plain, id, &steady).0, [1, 0]);
        assert_eq!(step(&mut smooth, id, &steady).0, [1, 0]);
    }
    assert_eq!(
        step(&mut plain, 5, &flicker).0,
        [0, 0],
        "the raw argmax flips"
    );
    assert_eq!(step(&mut smooth, 5, &flicker).0, [1, 0], "the filter holds");
    assert_eq!(step(&mut smooth, 6, &steady).0, [1, 0]);
}

#[test]
fn a_real_change_is_adopted_after_a_few_frames_and_kept() {
    // alpha 0.6, margin 0.1: after k frames of (0.9, 0.1) the average is
    // (0.9 - 0.7 * 0.6^k, 0.1 + 0.7 * 0.6^k): class 0 leads by more than 0.1 from k = 2.
    let mut f = TemporalFilter::new(settings(0.6, 0.1, 0.0));
    for id in 0..5 {
        assert_eq!(step(&mut f, id, &[(0.2, 0.8)]).0, [1]);
    }
    assert_eq!(
        step(&mut f, 5, &[(0.9, 0.1)]).0,
        [1],
        "one frame is not enough"
    );
    for id in 6..12 {
        assert_eq!(step(&mut f, id, &[(0.9, 0.1)]).0, [0], "frame {id}");
    }
}

#[test]
fn the_motion_gate_follows_confident_changes_at_once_and_smooths_the_uncertain() {
    // Pixel 0 moves with certainty (change 0.8), pixel 1 flickers (change 0.2).
    let before = [(0.1, 0.9), (0.4, 0.6)];
    let after = [(0.9, 0.1), (0.6, 0.4)];
    for (motion, want) in [(0.0, [1u8, 1]), (0.5, [0, 1])] {
        let s = TemporalSettings::new(0.8, 0.1, motion, 0.0, 1.0).expect("valid");
        let mut f = TemporalFilter::new(s);
        for id in 0..5 {
            assert_eq!(step(&mut f, id, &before).0, [1, 1]);
        }
        assert_eq!(step(&mut f, 5, &after).0, want, "motion {motion}");
        // Gate 0 for pixel 0 with 0.5: its average is the new frame exactly.
        if motion > 0.0 {
            assert!((f.averaged()[0] - 0.9).abs() < 1e-6);
        }
    }
}

#[test]
fn hysteresis_keeps_the_shown_class_until_another_leads_by_the_margin() {
    for (margin, want) in [(0.0, 1u8), (0.2, 0)] {
        let mut f = TemporalFilter::new(settings(0.0, margin, 0.0));
        assert_eq!(step(&mut f, 0, &[(0.6, 0.4)]).0, [0]);
        for id in 1..10 {
            assert_eq!(
                step(&mut f, id, &[(0.45, 0.55)]).0,
                [want],
                "margin {margin}"
            );
        }
        assert_eq!(step(&mut f, 10, &[(0.35, 0.65)]).0, [1], "margin {margin}");
        // And back only past the margin again.
        assert_eq!(step(&mut f, 11, &[(0.55, 0.45)]).0, [1 - want]);
    }
}

#[test]
fn seeks_gaps_pauses_scene_cuts_and_requests_start_afresh() {
    let old = [(0.1, 0.9); 4];
    let new = [(0.9, 0.1), (0.9, 0.1), (0.1, 0.9), (0.1, 0.9)];
    let fresh = vec![0, 0, 1, 1];
    type Jump = fn(&mut TemporalFilter) -> FrameStamp;
    let cases: [(Jump, ResetReason); 5] = [
        (|_| at(3), ResetReason::Backwards),
        (
            |_| at(9 + TemporalFilter::MAX_FRAME_GAP + 1),
            ResetReason::Gap,
        ),
        (
            |_| FrameStamp {
                id: 10,
                at_us: 9 * 33_333 + TemporalFilter::MAX_PAUSE_US + 1,
            },
            ResetReason::Pause,
        ),
        (
            |f| {
                f.reset();
                at(10)
            },
            ResetReason::Requested,
        ),
        (|_| at(10), ResetReason::SceneCut),
    ];
    for (jump, why) in cases {
        let s = TemporalSettings::new(0.9, 0.3, 0.0, 0.0, 0.3).expect("valid");
        let mut f = TemporalFilter::new(s);
        assert_eq!(step(&mut f, 0, &old).1.reset, Some(ResetReason::First));
        for id in 1..10 {
            let (c, info) = step(&mut f, id, &old);
            assert_eq!((c, info.reset), (vec![1; 4], None));
        }
        let s = jump(&mut f);
        let (c, info) = step_at(&mut f, s, &new);
        assert_eq!((c, info.reset), (fresh.clone(), Some(why)));
        if why == ResetReason::SceneCut {
            assert!((info.change - 0.4).abs() < 1e-5, "{info:?}");
        }
    }
    // Below the threshold the same change is filtered, not a cut.
    let mut f = TemporalFilter::new(TemporalSettings::new(0.9, 0.3, 0.0, 0.0, 0.45).expect("ok"));
    step(&mut f, 0, &old);
    let (c, info) = step(&mut f, 1, &new);
    assert_eq!((c, info.reset), (vec![1; 4], None));
    // Another size starts afresh too.
    let (c, info) = step(&mut f, 2, &[(0.9, 0.1)]);
    assert_eq!((c, info.reset), (vec![0], Some(ResetReason::SizeChanged)));
}

#[test]
fn unsure_pixels_show_class_zero_with_their_probability() {
    let mut f = TemporalFilter::new(settings(0.5, 0.0, 0.4));
    let p = [0.3, 0.1, 0.35, 0.2, 0.35, 0.7];
    let (mut c, mut conf) = ([9u8; 2], [0u8; 2]);
    f.apply(at(0), &p, 3, (2, 1), &mut c, &mut conf)
        .expect("apply");
    assert_eq!(c, [0, 2], "max 0.35 is under 0.4: not drawn");
    assert_eq!(
        conf,
        [(0.35f32 * 255.0 + 0.5) as u8, (0.7f32 * 255.0 + 0.5) as u8]
    );
    // Once sure again, the pixel shows its class.
    let p = [0.1, 0.1, 0.8, 0.2, 0.1, 0.7];
    f.apply(at(1), &p, 3, (2, 1), &mut c, &mut conf)
        .expect("apply");
    assert_eq!(
        c,
        [1, 2],
        "pixel 0 averages (0.2, 0.575, 0.225): class 1, drawn"
    );
}

#[test]
fn a_list_restarts_at_each_new_sequence_and_counts_scene_cuts() {
    let s = TemporalSettings::new(0.9, 0.0, 0.0, 0.0, 0.5).expect("valid");
    let mut f = ListFilter::new(s);
    let (a, b) = (planes(&[(0.1, 0.9)]), planes(&[(0.9, 0.1)]));
    let (mut c, mut p) = ([0u8], [0u8]);
    let mut run = |f: &mut ListFilter, sequence: &str, probs: &[f32]| {
        let info = f.apply(sequence, probs, 2, (1, 1), &mut c, &mut p);
        (c[0], info.expect("apply").reset)
    };
    assert_eq!(run(&mut f, "s1", &a), (1, Some(ResetReason::First)));
    assert_eq!(run(&mut f, "s1", &a), (1, None));
    assert_eq!(run(&mut f, "s2", &a), (1, Some(ResetReason::Requested)));
    assert_eq!(run(&mut f, "s2", &b), (0, Some(ResetReason::SceneCut)));
    let json = f.to_json();
    assert_eq!(
        (json["sequences"].as_u64(), json["scene_cuts"].as_u64()),
        (Some(2), Some(1))
    );
    assert!((json["temporal_alpha"].as_f64().expect("alpha") - 0.9).abs() < 1e-6);
    assert!(
        f.describe().contains("temporal_alpha 0.9"),
        "{}",
        f.describe()
    );
    let (c, avg) = f.entry("s3", &b, (1, 1), vec![1]).expect("entry");
    assert_eq!(
        (c, avg),
        (vec![0], Some(b.clone())),
        "a new sequence starts afresh"
    );
    assert_eq!(f.to_json()["sequences"].as_u64(), Some(3));
}

#[test]
fn bad_settings_name_their_key_and_bad_shapes_are_errors() {
    let e = TemporalSettings::new(1.0, 0.1, 0.0, 0.3, 0.3).unwrap_err();
    assert!(e.to_string().contains("temporal_alpha = 1"), "{e}");
    let e = TemporalSettings::new(0.5, -0.1, 0.0, 0.3, 0.3).unwrap_err();
    assert!(e.to_string().contains("temporal_hysteresis"), "{e}");
    let e = TemporalSettings::new(0.5, 0.1, 0.0, f32::NAN, 0.3).unwrap_err();
    assert!(e.to_string().contains("min_confidence"), "{e}");
    let e = TemporalSettings::new(0.5, 0.1, 1.5, 0.3, 0.3).unwrap_err();
    assert!(e.to_string().contains("temporal_motion"), "{e}");
    let e = TemporalSettings::new(0.5, 0.1, 0.0, 0.3, 0.0).unwrap_err();
    assert!(e.to_string().contains("scene_cut_threshold"), "{e}");
    let mut f = TemporalFilter::new(TemporalSettings::OFF);
    let (mut c, mut p) = ([0u8; 3], [0u8; 3]);
    let e = f.apply(at(0), &[0.5; 5], 2, (3, 1), &mut c, &mut p);
    assert!(
        matches!(e, Err(TemporalError::Shape { got: 5, .. })),
        "{e:?}"
    );
}
