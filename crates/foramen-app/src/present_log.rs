//! What the GPU has shown: filled in by the paint callback (render thread), read by the
//! HUD, written as the display telemetry at exit.

use std::collections::VecDeque;

use foramen_core::LatencyStats;

/// Samples the HUD's percentiles are taken over (10 s at 60 fps).
pub const RECENT: usize = 600;

/// Rows kept for the telemetry file at most (about 4.6 h at 60 fps).
const MAX_ROWS: usize = 1_000_000;

/// One presentation: a new frame, a new mask, or both.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PresentRow {
    /// Id of the frame shown.
    pub frame_id: u64,
    /// Its capture to present, ms; `None` when only the mask was new.
    pub video_latency_ms: Option<f64>,
    /// Source frame of the mask first drawn now.
    pub mask_frame: Option<u64>,
    /// That source frame's capture to this presentation, ms.
    pub annotation_latency_ms: Option<f64>,
}

/// The display statistics.
#[derive(Default)]
pub struct PresentLog {
    /// Distinct frames uploaded (= presented).
    pub frames: u64,
    /// Id of the last frame presented.
    pub last_frame: Option<u64>,
    /// Id of the source frame of the last mask drawn.
    pub last_mask: Option<u64>,
    /// Capture to present, per new frame, milliseconds.
    pub video_latency_ms: LatencyStats,
    /// Capture of the source frame to its mask's first presentation, milliseconds.
    pub annotation_latency_ms: LatencyStats,
    /// Rows for the telemetry file.
    pub rows: Vec<PresentRow>,
    /// The last [`RECENT`] video latencies, for the HUD (cheap to sort every frame).
    pub recent_video_ms: VecDeque<f64>,
    /// The last [`RECENT`] annotation latencies.
    pub recent_annotation_ms: VecDeque<f64>,
}

/// Percentile `q` (0..=100, nearest rank) of `v`; `None` when empty.
pub fn recent_percentile(v: &VecDeque<f64>, q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s: Vec<f64> = v.iter().copied().collect();
    s.sort_by(f64::total_cmp);
    let rank = ((q / 100.0) * s.len() as f64).ceil() as usize;
    Some(s[rank.clamp(1, s.len()) - 1])
}

fn push_recent(v: &mut VecDeque<f64>, ms: f64) {
    if v.len() == RECENT {
        v.pop_front();
    }
    v.push_back(ms);
}

impl PresentLog {
    /// Records one presentation.
    pub fn record(&mut self, row: PresentRow) {
        if let Some(ms) = row.video_latency_ms {
            self.frames += 1;
            self.last_frame = Some(row.frame_id);
            self.video_latency_ms.push(ms);
            push_recent(&mut self.recent_video_ms, ms);
        }
        if let (Some(id), Some(ms)) = (row.mask_frame, row.annotation_latency_ms) {
            self.last_mask = Some(id);
            self.annotation_latency_ms.push(ms);
            push_recent(&mut self.recent_annotation_ms, ms);
        }
        if self.rows.len() < MAX_ROWS {
            self.rows.push(row);
        }
    }

    /// The display telemetry CSV (`--telemetry`).
    pub fn telemetry_csv(&self) -> String {
        let mut s = String::from("frame,video_latency_ms,mask_frame,annotation_latency_ms\n");
        let opt = |x: Option<String>| x.unwrap_or_default();
        for r in &self.rows {
            s.push_str(&format!(
                "{},{},{},{}\n",
                r.frame_id,
                opt(r.video_latency_ms.map(|v| format!("{v:.2}"))),
                opt(r.mask_frame.map(|m| m.to_string())),
                opt(r.annotation_latency_ms.map(|a| format!("{a:.2}")))
            ));
        }
        s
    }

    /// The line printed when the window closes.
    pub fn summary(&self, captured: u64) -> String {
        let pct = |s: &LatencyStats, q| {
            if s.is_empty() {
                "-".to_string()
            } else {
                format!("{:.1}", s.percentile(q))
            }
        };
        format!(
            "{} frames captured, {} presented; video latency p50 {} p99 {} max {} ms; annotation latency p50 {} p99 {} ms ({} masks drawn)",
            captured,
            self.frames,
            pct(&self.video_latency_ms, 50.0),
            pct(&self.video_latency_ms, 99.0),
            pct(&self.video_latency_ms, 100.0),
            pct(&self.annotation_latency_ms, 50.0),
            pct(&self.annotation_latency_ms, 99.0),
            self.annotation_latency_ms.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_count_frames_and_masks_and_write_empty_fields_for_what_was_not_new() {
        let mut log = PresentLog::default();
        log.record(PresentRow {
            frame_id: 7,
            video_latency_ms: Some(12.345),
            mask_frame: None,
            annotation_latency_ms: None,
        });
        log.record(PresentRow {
            frame_id: 7,
            video_latency_ms: None,
            mask_frame: Some(6),
            annotation_latency_ms: Some(80.0),
        });
        assert_eq!(
            (log.frames, log.last_frame, log.last_mask),
            (1, Some(7), Some(6))
        );
        assert_eq!(
            log.telemetry_csv(),
            "frame,video_latency_ms,mask_frame,annotation_latency_ms\n7,12.35,,\n7,,6,80.00\n"
        );
        assert!(log.summary(3).starts_with("3 frames captured, 1 presented"));
        assert!(log.summary(3).ends_with("(1 masks drawn)"));
    }

    #[test]
    fn recent_percentiles_use_the_nearest_rank_over_the_last_window() {
        let mut v = VecDeque::new();
        assert_eq!(recent_percentile(&v, 50.0), None);
        for i in 0..(RECENT + 100) {
            push_recent(&mut v, i as f64);
        }
        assert_eq!(v.len(), RECENT);
        assert_eq!(recent_percentile(&v, 0.0), Some(100.0));
        assert_eq!(recent_percentile(&v, 50.0), Some(399.0));
        assert_eq!(recent_percentile(&v, 100.0), Some((RECENT + 99) as f64));
    }
}
