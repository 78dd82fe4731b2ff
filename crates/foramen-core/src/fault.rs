//! Fault injection for the end-to-end tests: `FORAMEN_FAULT_INJECT` names one fault, and
//! the stage it concerns acts it out, so the tests can drive the real binary through a
//! panicking, hanging or slow worker, a slow disk and a stalled capture card.
//!
//! The variable is read only when the `fault-inject` cargo feature is on. The tests turn it
//! on (a dev-dependency feature of the binary crate); `cargo build --release` leaves it out,
//! and [`inject`] is then an empty inline function.
//!
//! | spec | site | effect |
//! | --- | --- | --- |
//! | `slow:MS` | inference | every frame takes MS ms longer |
//! | `panic@N` | inference | panics once, at the first frame with id >= N |
//! | `hang@N:MS` | inference | stalls once for MS ms at the first frame with id >= N |
//! | `record_slow:MS` | recorder | every frame's write takes MS ms longer (a slow disk) |
//! | `capture_stall@N:MS` | capture | the capture thread stops delivering for MS ms once |

use std::time::Duration;

/// The environment variable holding the fault.
pub const ENV: &str = "FORAMEN_FAULT_INJECT";

/// Where a fault acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// The inference worker, per frame it takes.
    Inference,
    /// The recorder, per frame it writes.
    Recorder,
    /// The capture thread, per frame it delivers.
    Capture,
}

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `slow:MS`.
    InferenceSlow {
        /// Added per frame.
        ms: u64,
    },
    /// `panic@N`.
    InferencePanic {
        /// First frame id at which it fires.
        at: u64,
    },
    /// `hang@N:MS`.
    InferenceHang {
        /// First frame id at which it fires.
        at: u64,
        /// How long.
        ms: u64,
    },
    /// `record_slow:MS`.
    RecordSlow {
        /// Added per frame.
        ms: u64,
    },
    /// `capture_stall@N:MS`.
    CaptureStall {
        /// First frame id at which it fires.
        at: u64,
        /// How long.
        ms: u64,
    },
}

/// A fault spec that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{ENV}={spec:?} is not a fault (slow:MS, panic@N, hang@N:MS, record_slow:MS, capture_stall@N:MS)"
)]
pub struct FaultSpecError {
    /// The value given.
    pub spec: String,
}

/// Parses a spec such as `hang@3:2500`.
pub fn parse(spec: &str) -> Result<Fault, FaultSpecError> {
    let num = |s: &str| s.parse::<u64>().ok();
    let at_ms = |s: &str| {
        let (at, ms) = s.split_once(':')?;
        Some((num(at)?, num(ms)?))
    };
    let fault = if let Some(v) = spec.strip_prefix("slow:") {
        num(v).map(|ms| Fault::InferenceSlow { ms })
    } else if let Some(v) = spec.strip_prefix("panic@") {
        num(v).map(|at| Fault::InferencePanic { at })
    } else if let Some(v) = spec.strip_prefix("hang@") {
        at_ms(v).map(|(at, ms)| Fault::InferenceHang { at, ms })
    } else if let Some(v) = spec.strip_prefix("record_slow:") {
        num(v).map(|ms| Fault::RecordSlow { ms })
    } else if let Some(v) = spec.strip_prefix("capture_stall@") {
        at_ms(v).map(|(at, ms)| Fault::CaptureStall { at, ms })
    } else {
        None
    };
    fault.ok_or_else(|| FaultSpecError {
        spec: spec.to_string(),
    })
}

/// What `fault` does at `site` for frame `frame_id`; `fired` says whether its one-shot
/// has already gone off (and is set when it goes off now).
fn act(fault: Fault, site: Site, frame_id: u64, fired: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    let once = |at: u64| frame_id >= at && !fired.swap(true, Ordering::Relaxed);
    let sleep = |ms: u64| std::thread::sleep(Duration::from_millis(ms));
    match (fault, site) {
        (Fault::InferenceSlow { ms }, Site::Inference)
        | (Fault::RecordSlow { ms }, Site::Recorder) => sleep(ms),
        (Fault::InferencePanic { at }, Site::Inference) if once(at) => {
            panic!("injected fault: panic at frame {frame_id}")
        }
        (Fault::InferenceHang { at, ms }, Site::Inference)
        | (Fault::CaptureStall { at, ms }, Site::Capture)
            if once(at) =>
        {
            sleep(ms)
        }
        _ => {}
    }
}

/// Acts out the fault in `FORAMEN_FAULT_INJECT` if it concerns `site` (read once per
/// process; a spec that does not parse is reported on stderr once and ignored).
#[cfg(feature = "fault-inject")]
pub fn inject(site: Site, frame_id: u64) {
    use std::sync::OnceLock;
    use std::sync::atomic::AtomicBool;
    static FAULT: OnceLock<Option<Fault>> = OnceLock::new();
    static FIRED: AtomicBool = AtomicBool::new(false);
    let fault = FAULT.get_or_init(|| {
        let spec = std::env::var(ENV).ok()?;
        parse(&spec)
            .map_err(|e| eprintln!("warning: {e}; no fault injected"))
            .ok()
    });
    if let Some(f) = *fault {
        act(f, site, frame_id, &FIRED);
    }
}

/// Without the `fault-inject` feature nothing is injected and nothing is read.
#[cfg(not(feature = "fault-inject"))]
#[inline(always)]
pub fn inject(_site: Site, _frame_id: u64) {
    let _ = act;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    #[test]
    fn every_documented_spec_parses() {
        assert_eq!(parse("slow:600"), Ok(Fault::InferenceSlow { ms: 600 }));
        assert_eq!(parse("panic@5"), Ok(Fault::InferencePanic { at: 5 }));
        assert_eq!(
            parse("hang@3:2500"),
            Ok(Fault::InferenceHang { at: 3, ms: 2500 })
        );
        assert_eq!(parse("record_slow:150"), Ok(Fault::RecordSlow { ms: 150 }));
        assert_eq!(
            parse("capture_stall@20:2500"),
            Ok(Fault::CaptureStall { at: 20, ms: 2500 })
        );
    }

    #[test]
    fn a_bad_spec_is_named_in_the_error() {
        for bad in ["", "slow", "slow:x", "panic@", "hang@3", "hang@x:1", "boom"] {
            let e = parse(bad).expect_err(bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn a_one_shot_fault_fires_once_at_or_after_its_frame_and_only_at_its_site() {
        let fired = AtomicBool::new(false);
        let hang = Fault::InferenceHang { at: 3, ms: 40 };
        let t = Instant::now();
        act(hang, Site::Inference, 2, &fired);
        act(hang, Site::Capture, 5, &fired);
        assert!(t.elapsed() < Duration::from_millis(40));
        act(hang, Site::Inference, 4, &fired);
        assert!(t.elapsed() >= Duration::from_millis(40));
        let t = Instant::now();
        act(hang, Site::Inference, 9, &fired);
        assert!(t.elapsed() < Duration::from_millis(40));
    }

    #[test]
    fn the_panic_fault_panics() {
        let fired = AtomicBool::new(false);
        let r = std::panic::catch_unwind(|| {
            act(Fault::InferencePanic { at: 1 }, Site::Inference, 1, &fired)
        });
        assert!(r.is_err());
        act(Fault::InferencePanic { at: 1 }, Site::Inference, 2, &fired);
    }
}
