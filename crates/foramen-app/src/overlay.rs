//! Whether the overlay is drawn on the shown frame, and with which mask: the one place
//! where safety rule 2 (a mask older than the limit is not drawn) is decided.

use std::sync::Arc;

use foramen_core::{Frame, Mask};

/// Why the overlay is or is not drawn on the current frame.
#[derive(Clone, Debug, PartialEq)]
pub enum OverlayState {
    /// Drawn; the mask lags the shown frame by this much.
    Drawn {
        /// Mask age relative to the shown frame, ms.
        age_ms: f64,
    },
    /// Switched off by the user.
    Off,
    /// No mask yet (model loading, or the AI has never produced one).
    Waiting,
    /// The newest mask is older than the limit: hidden.
    Stale {
        /// Its age, ms.
        age_ms: f64,
        /// The limit, ms.
        limit_ms: f64,
    },
    /// No live signal: the last frame is frozen, nothing is drawn over it.
    NoSignal,
}

/// Decides whether `mask` may be drawn on `frame` (safety rule 2). The mask's age is
/// measured from its source frame's capture to the shown frame's capture; masks from
/// before `epoch_us` (a seek or a reconnection) belong to another timeline.
pub fn overlay_state(
    frame: &Frame,
    mask: Option<&Mask>,
    epoch_us: u64,
    overlay_on: bool,
    max_age_ms: f64,
) -> OverlayState {
    if !overlay_on {
        return OverlayState::Off;
    }
    let Some(m) = mask.filter(|m| m.source_captured_at_us >= epoch_us) else {
        return OverlayState::Waiting;
    };
    if m.source_captured_at_us > frame.captured_at_us {
        // A mask of a later frame (possible after stepping back): never draw the future.
        return OverlayState::Waiting;
    }
    let age_ms = (frame.captured_at_us - m.source_captured_at_us) as f64 / 1e3;
    if age_ms > max_age_ms {
        OverlayState::Stale {
            age_ms,
            limit_ms: max_age_ms,
        }
    } else {
        OverlayState::Drawn { age_ms }
    }
}

/// What the view knows when it decides.
pub struct OverlayInputs<'a> {
    /// The frame on screen (none before the first).
    pub shown: Option<&'a Frame>,
    /// The picture is frozen (F): it keeps the mask it was frozen with.
    pub frozen: bool,
    /// A live source has gone silent: the last frame is dimmed, nothing drawn over it.
    pub no_signal: bool,
    /// The worker's newest mask.
    pub latest_mask: Option<Arc<Mask>>,
    /// The worker is running and its heartbeat is recent: its masks may be drawn.
    pub ai_healthy: bool,
    /// Start of the current timeline (seek, reconnection).
    pub epoch_us: u64,
    /// The user's overlay switch.
    pub overlay_on: bool,
    /// `[inference].max_mask_age_ms`.
    pub max_age_ms: f64,
}

/// The overlay's state for this paint and the mask that goes with the shown frame
/// (`kept`: the one it had; drawn only when the state is `Drawn`).
pub fn decide(i: OverlayInputs, kept: Option<Arc<Mask>>) -> (OverlayState, Option<Arc<Mask>>) {
    let Some(frame) = i.shown else {
        return (OverlayState::Waiting, kept);
    };
    if i.no_signal {
        return (OverlayState::NoSignal, kept);
    }
    if i.frozen {
        // A frozen picture keeps the mask it was frozen with, whatever its age now.
        let st = overlay_state(frame, kept.as_deref(), 0, i.overlay_on, f64::INFINITY);
        return (st, kept);
    }
    let mask = i.latest_mask.filter(|_| i.ai_healthy);
    let st = overlay_state(
        frame,
        mask.as_deref(),
        i.epoch_us,
        i.overlay_on,
        i.max_age_ms,
    );
    let kept = match st {
        OverlayState::Drawn { .. } => mask,
        _ => None,
    };
    (st, kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u64, at_us: u64) -> Frame {
        let mut f = Frame::new(id, 0, 2, 2, vec![0; 12]).expect("frame");
        f.captured_at_us = at_us;
        f
    }

    fn mask(at_us: u64) -> Mask {
        Mask {
            source_frame_id: 0,
            source_pts_us: 0,
            source_captured_at_us: at_us,
            width: 1,
            height: 1,
            classes: vec![1],
            confidence: vec![255],
            infer_ms: 1.0,
        }
    }

    #[test]
    fn masks_older_than_the_limit_are_not_drawn() {
        let f = frame(10, 1_000_000);
        assert_eq!(
            overlay_state(&f, Some(&mask(900_000)), 0, true, 250.0),
            OverlayState::Drawn { age_ms: 100.0 }
        );
        assert_eq!(
            overlay_state(&f, Some(&mask(600_000)), 0, true, 250.0),
            OverlayState::Stale {
                age_ms: 400.0,
                limit_ms: 250.0
            }
        );
        assert_eq!(
            overlay_state(&f, Some(&mask(900_000)), 0, false, 250.0),
            OverlayState::Off
        );
        assert_eq!(
            overlay_state(&f, None, 0, true, 250.0),
            OverlayState::Waiting
        );
    }

    #[test]
    fn masks_from_another_timeline_or_the_future_are_not_drawn() {
        let f = frame(10, 1_000_000);
        // Computed before a seek or reconnection.
        assert_eq!(
            overlay_state(&f, Some(&mask(950_000)), 960_000, true, 250.0),
            OverlayState::Waiting
        );
        // From a frame captured after the shown one.
        assert_eq!(
            overlay_state(&f, Some(&mask(1_000_001)), 0, true, 250.0),
            OverlayState::Waiting
        );
    }

    /// The same mask (or both none).
    fn same(a: &Option<Arc<Mask>>, b: &Option<Arc<Mask>>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    fn inputs(f: &Frame, latest: Option<Arc<Mask>>) -> OverlayInputs<'_> {
        OverlayInputs {
            shown: Some(f),
            frozen: false,
            no_signal: false,
            latest_mask: latest,
            ai_healthy: true,
            epoch_us: 0,
            overlay_on: true,
            max_age_ms: 250.0,
        }
    }

    #[test]
    fn a_fresh_mask_is_kept_with_its_frame_and_a_stale_or_unhealthy_one_is_dropped() {
        let f = frame(10, 1_000_000);
        let fresh = Some(Arc::new(mask(900_000)));
        let (st, kept) = decide(inputs(&f, fresh.clone()), None);
        assert_eq!(st, OverlayState::Drawn { age_ms: 100.0 });
        assert!(same(&kept, &fresh));
        let (st, kept) = decide(inputs(&f, Some(Arc::new(mask(600_000)))), fresh.clone());
        assert!(matches!(st, OverlayState::Stale { .. }));
        assert!(kept.is_none());
        let sick = OverlayInputs {
            ai_healthy: false,
            ..inputs(&f, fresh.clone())
        };
        let (st, kept) = decide(sick, fresh.clone());
        assert_eq!(st, OverlayState::Waiting);
        assert!(kept.is_none());
    }

    #[test]
    fn a_frozen_picture_keeps_its_mask_and_no_signal_draws_nothing() {
        let f = frame(10, 1_000_000);
        let old = Some(Arc::new(mask(100_000)));
        let frozen = OverlayInputs {
            frozen: true,
            ..inputs(&f, None)
        };
        // Frozen with its mask: drawn whatever the age, the same mask kept.
        let (st, kept) = decide(frozen, old.clone());
        assert_eq!(st, OverlayState::Drawn { age_ms: 900.0 });
        assert!(same(&kept, &old));
        let off = OverlayInputs {
            frozen: true,
            overlay_on: false,
            ..inputs(&f, None)
        };
        assert_eq!(decide(off, old.clone()).0, OverlayState::Off);
        let silent = OverlayInputs {
            no_signal: true,
            ..inputs(&f, old.clone())
        };
        assert_eq!(decide(silent, old.clone()).0, OverlayState::NoSignal);
        let none = OverlayInputs {
            shown: None,
            ..inputs(&f, old.clone())
        };
        let (st, kept) = decide(none, None);
        assert_eq!(st, OverlayState::Waiting);
        assert!(kept.is_none());
    }
}
