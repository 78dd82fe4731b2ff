use super::*;
use foramen_segment::StageTimings;

const NOW: u64 = 10_000_000;

fn worker(status: WorkerStatus, heartbeat_us: u64) -> WorkerState {
    WorkerState {
        status,
        heartbeat_us,
        masks: 5,
        skipped: 0,
        last_timings: StageTimings::default(),
        over_budget: 0,
        loads: 1,
        classes: None,
        provider: "cpu",
        provider_fallback: None,
        faults: 0,
        last_fault: None,
    }
}

fn live() -> CaptureStats {
    CaptureStats {
        frames: 100,
        last_frame_at_us: NOW - 20_000,
        ..Default::default()
    }
}

fn all() -> Vec<String> {
    ["bone", "ligament", "disc"].map(String::from).to_vec()
}

fn badge_for(
    cap: &CaptureStats,
    w: &WorkerState,
    overlay: OverlayState,
    no_signal: bool,
    drawn: &[String],
) -> Badge {
    badge(&BadgeInputs {
        now_us: NOW,
        capture: cap,
        worker: w,
        overlay: &overlay,
        no_signal,
        drawn_classes: drawn,
    })
}

#[test]
fn drawing_is_the_only_green_and_names_what_is_drawn() {
    let w = worker(WorkerStatus::Running, NOW - 50_000);
    let b = badge_for(
        &live(),
        &w,
        OverlayState::Drawn { age_ms: 41.6 },
        false,
        &all(),
    );
    assert_eq!(
        (b.kind, b.title, b.severity),
        (BadgeKind::Drawing, "AI ON", Severity::Good)
    );
    assert_eq!(b.detail, "bone, ligament, disc  (42 ms behind)");
}

#[test]
fn every_class_hidden_is_overlay_off_not_green() {
    let w = worker(WorkerStatus::Running, NOW);
    let b = badge_for(
        &live(),
        &w,
        OverlayState::Drawn { age_ms: 20.0 },
        false,
        &[],
    );
    assert_eq!((b.kind, b.title), (BadgeKind::OverlayOff, "OVERLAY OFF"));
    assert_eq!(b.detail, "every class hidden");
    assert_ne!(b.severity, Severity::Good);
    let off = badge_for(&live(), &w, OverlayState::Off, false, &all());
    assert_eq!(
        (off.kind, off.severity),
        (BadgeKind::OverlayOff, Severity::Info)
    );
}

#[test]
fn each_fault_has_exactly_one_state_in_order_of_seriousness() {
    let failed = worker(
        WorkerStatus::Failed {
            reason: "model /srv/m.onnx: bad file".into(),
            retry_in_ms: 2000,
        },
        NOW - 3_000_000,
    );
    let mut cap = live();
    cap.last_frame_at_us = NOW - 2_000_000;
    cap.last_error = Some("/dev/video0: NO SIGNAL: device lost".into());
    let stale = OverlayState::Stale {
        age_ms: 612.0,
        limit_ms: 250.0,
    };
    let b = badge_for(&cap, &failed, stale.clone(), true, &all());
    assert_eq!((b.title, b.detail.as_str()), ("NO SIGNAL", "device lost"));
    let b = badge_for(&live(), &failed, stale.clone(), false, &all());
    assert_eq!(b.title, "AI OFF");
    // Plain words on screen: the path is for the log.
    assert!(!b.detail.contains("/srv"), "{}", b.detail);
    assert!(b.detail.contains("retrying in 2 s"), "{}", b.detail);
    let hung = worker(WorkerStatus::Running, NOW - 3_000_000);
    let b = badge_for(&live(), &hung, stale.clone(), false, &all());
    assert_eq!(
        (b.title, b.detail.as_str()),
        ("AI NOT RESPONDING", "no answer for 3 s; video only")
    );
    let ok = worker(WorkerStatus::Running, NOW);
    let b = badge_for(&live(), &ok, stale, false, &all());
    assert_eq!(b.title, "AI PAUSED: STALE");
    assert_eq!(b.detail, "mask 612 ms old (limit 250 ms): overlay hidden");
    for kind in [
        BadgeKind::NoSignal,
        BadgeKind::AiOff,
        BadgeKind::NotResponding,
        BadgeKind::Stale,
    ] {
        assert!(kind.is_fault());
    }
    assert!(!BadgeKind::OverlayOff.is_fault() && !BadgeKind::Drawing.is_fault());
}

#[test]
fn waiting_is_overlay_off_with_the_reason_and_never_twice() {
    let loading = worker(WorkerStatus::Loading, NOW);
    let b = badge_for(&live(), &loading, OverlayState::Waiting, false, &all());
    assert_eq!(
        (b.title, b.detail.as_str()),
        ("OVERLAY OFF", "AI loading the model")
    );
    let running = worker(WorkerStatus::Running, NOW);
    let b = badge_for(&live(), &running, OverlayState::Waiting, false, &all());
    assert_eq!(b.detail, "waiting for the first mask");
    // Not responding wins over waiting: one state, never both.
    let hung = worker(WorkerStatus::Running, NOW - 2_000_000);
    let b = badge_for(&live(), &hung, OverlayState::Waiting, false, &all());
    assert_eq!(b.title, "AI NOT RESPONDING");
}

#[test]
fn notes_say_frozen_ended_and_the_cpu_fallback() {
    let mut w = worker(WorkerStatus::Running, NOW);
    w.provider_fallback = Some("CUDA unavailable: libcublasLt.so.13 not found".into());
    let mut cap = live();
    cap.ended = Some("end of stream".into());
    let i = BadgeInputs {
        now_us: NOW,
        capture: &cap,
        worker: &w,
        overlay: &OverlayState::Drawn { age_ms: 1.0 },
        no_signal: false,
        drawn_classes: &[],
    };
    let titles: Vec<_> = notes(&i, true).iter().map(|n| n.title).collect();
    assert_eq!(titles, ["FROZEN", "VIDEO ENDED", "AI ON CPU"]);
    assert!(
        notes(
            &BadgeInputs {
                capture: &live(),
                ..i
            },
            false
        )[0]
        .detail
        .contains("libcublasLt")
    );
}
