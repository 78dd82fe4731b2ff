//! The engineering HUD as plain text (off by default; `H`): rates over a window of
//! frames, stage timings, latencies, drops and the recording's counters. Pure, so every
//! line is tested without a window.

use foramen_segment::StageTimings;

use crate::overlay::OverlayState;

/// The facts the HUD shows.
pub struct HudInputs<'a> {
    /// Source name and size.
    pub source: (&'a str, u32, u32),
    /// The execution provider the model runs on (`cpu`, `cuda`, ...; empty before it loads).
    pub provider: &'a str,
    /// Capture rate.
    pub capture_fps: f64,
    /// Mask rate.
    pub ai_fps: f64,
    /// Timings of the last mask.
    pub timings: StageTimings,
    /// The overlay decision.
    pub overlay: &'a OverlayState,
    /// Video latency p50 and p99 over the recent window, ms.
    pub video_ms: (Option<f64>, Option<f64>),
    /// Annotation latency p50 and p99, ms.
    pub annotation_ms: (Option<f64>, Option<f64>),
    /// Frames the capture thread dropped, frames the AI skipped, capture errors.
    pub dropped: (u64, u64, u64),
    /// While recording: frames, masks, lost.
    pub recording: Option<(u64, u64, u64)>,
}

/// The HUD's text (monospace, one fact per line).
pub fn hud_text(h: &HudInputs) -> String {
    let p = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let age = match h.overlay {
        OverlayState::Drawn { age_ms } | OverlayState::Stale { age_ms, .. } => {
            format!("{age_ms:.0} ms")
        }
        _ => "-".into(),
    };
    let t = &h.timings;
    let mut s = format!(
        "{}  {}x{}\ncapture {:.1} fps   AI {:.1} fps on {}\ninference {:.1} ms (pre {:.1} model {:.1} post {:.1})\nmask age {}\nvideo latency p50/p99 {} / {} ms\nannotation latency p50/p99 {} / {} ms\ncapture dropped {}  errors {}\nAI passed over {} frames (it takes the newest: normal)",
        h.source.0,
        h.source.1,
        h.source.2,
        h.capture_fps,
        h.ai_fps,
        if h.provider.is_empty() {
            "-"
        } else {
            h.provider
        },
        t.total_ms(),
        t.pre_ms,
        t.infer_ms,
        t.post_ms,
        age,
        p(h.video_ms.0),
        p(h.video_ms.1),
        p(h.annotation_ms.0),
        p(h.annotation_ms.1),
        h.dropped.0,
        h.dropped.2,
        h.dropped.1,
    );
    if let Some((frames, masks, lost)) = h.recording {
        s.push_str(&format!(
            "\nREC {frames} frames, {masks} masks, {lost} lost"
        ));
    }
    s
}

/// The AI's mask rate, smoothed over about a second.
#[derive(Clone, Copy, Debug)]
pub struct AiRate {
    masks: u64,
    since_us: u64,
    /// Masks per second.
    pub fps: f64,
}

impl AiRate {
    /// Starts counting at `now_us`.
    pub fn new(now_us: u64) -> Self {
        Self {
            masks: 0,
            since_us: now_us,
            fps: 0.0,
        }
    }

    /// Updates from the worker's mask count, at most once a second.
    pub fn update(&mut self, masks: u64, now_us: u64) {
        let dt = now_us.saturating_sub(self.since_us) as f64 / 1e6;
        if dt >= 1.0 {
            let inst = masks.saturating_sub(self.masks) as f64 / dt;
            self.fps = if self.fps == 0.0 {
                inst
            } else {
                0.5 * self.fps + 0.5 * inst
            };
            self.masks = masks;
            self.since_us = now_us;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hud_gives_rates_timings_latencies_and_the_recording() {
        let h = HudInputs {
            source: ("synthetic:3", 640, 360),
            provider: "cpu",
            capture_fps: 29.97,
            ai_fps: 12.0,
            timings: StageTimings {
                pre_ms: 1.0,
                infer_ms: 8.0,
                post_ms: 0.5,
            },
            overlay: &OverlayState::Drawn { age_ms: 33.3 },
            video_ms: (Some(8.26), None),
            annotation_ms: (None, None),
            dropped: (1, 2, 3),
            recording: Some((10, 4, 0)),
        };
        let s = hud_text(&h);
        assert!(
            s.starts_with("synthetic:3  640x360\ncapture 30.0 fps   AI 12.0 fps on cpu\n"),
            "{s}"
        );
        assert!(
            s.contains("inference 9.5 ms (pre 1.0 model 8.0 post 0.5)"),
            "{s}"
        );
        assert!(
            s.contains("mask age 33 ms\nvideo latency p50/p99 8.3 / - ms"),
            "{s}"
        );
        assert!(
            s.contains(
                "capture dropped 1  errors 3\nAI passed over 2 frames (it takes the newest: normal)"
            ),
            "{s}"
        );
        assert!(s.ends_with("\nREC 10 frames, 4 masks, 0 lost"), "{s}");
    }

    #[test]
    fn the_ai_rate_updates_once_a_second_and_smooths() {
        let mut r = AiRate::new(0);
        r.update(5, 500_000);
        assert_eq!(r.fps, 0.0);
        r.update(10, 1_000_000);
        assert_eq!(r.fps, 10.0);
        r.update(30, 2_000_000);
        assert_eq!(r.fps, 15.0);
    }
}
