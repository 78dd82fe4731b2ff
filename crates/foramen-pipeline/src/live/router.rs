//! Thread `router`: takes each captured frame and fans it out to the display slot, the
//! inference worker and the recorder, keeping the capture counters the HUD shows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use foramen_capture::CaptureEvent;
use foramen_core::{Frame, clock_us, lock};
use foramen_segment::InferenceWorker;

use super::{CaptureStats, FPS_WINDOW_US, Shared};

/// Updates the rate, the arrival time and the timeline for a frame that arrived at `now`
/// (before anyone can see it); `last` is the previous frame's (arrival time, id). The
/// frame is counted only once every consumer has it.
fn count_frame(st: &mut CaptureStats, f: &Frame, now: u64, last: Option<(u64, u64)>) {
    st.last_frame_at_us = now;
    let (start, n) = st.fps_window;
    if last.is_none() || start == 0 {
        st.fps_window = (now, 0);
    } else if now.saturating_sub(start) >= FPS_WINDOW_US {
        // Frames that arrived after the window's first one, over the time they took.
        st.fps = (n + 1) as f64 / (now - start) as f64 * 1e6;
        st.fps_window = (now, 0);
    } else {
        st.fps_window.1 = n + 1;
    }
    // A frame id that goes backwards means a seek or a restarted stream: older masks
    // belong to another timeline.
    if last.is_some_and(|(_, id)| f.id <= id) {
        st.epoch_us = f.captured_at_us.min(now);
    }
}

/// Routes until stopped or the capture ends. Each frame goes to the display slot and the
/// worker's slot (both newest wins, never blocking) and to the recorder (count-and-drop),
/// and only then is the repaint asked for: by the time the UI thread wakes, the frame it
/// is woken for is in the display slot. Nothing here waits on inference or the disk.
pub(super) fn route(
    shared: &Shared,
    worker: &InferenceWorker,
    events: &Receiver<CaptureEvent>,
    repaint: &(dyn Fn() + Send + Sync),
) {
    let mut last: Option<(u64, u64)> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let ev = match events.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match ev {
            CaptureEvent::Frame(f) => {
                let f = Arc::new(f);
                let now = clock_us();
                count_frame(&mut lock(&shared.stats), &f, now, last);
                last = Some((now, f.id));
                shared.display.put(f.clone());
                worker.submit(f.clone());
                if let Some(rec) = lock(&shared.recorder).as_ref() {
                    rec.push(f, worker.latest_mask());
                }
                // Counted last: a session that stops after N frames has handed all N
                // to the recorder.
                lock(&shared.stats).frames += 1;
                repaint();
            }
            CaptureEvent::FrameError(e) => {
                let mut st = lock(&shared.stats);
                st.errors += 1;
                st.last_error = Some(e.to_string());
                drop(st);
                repaint();
            }
            CaptureEvent::End(e) => {
                lock(&shared.stats).ended =
                    Some(e.map_or_else(|| "end of stream".to_string(), |e| e.to_string()));
                repaint();
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(id: u64, captured_at_us: u64) -> Frame {
        let mut f = Frame::new(id, 0, 2, 2, vec![0; 12]).expect("frame");
        f.captured_at_us = captured_at_us;
        f
    }

    #[test]
    fn the_rate_is_over_a_window_and_a_backward_id_starts_a_new_epoch() {
        let mut st = CaptureStats::default();
        count_frame(&mut st, &frame(0, 1_000), 1_000, None);
        count_frame(&mut st, &frame(1, 41_000), 41_000, Some((1_000, 0)));
        count_frame(&mut st, &frame(2, 61_000), 61_000, Some((41_000, 1)));
        assert_eq!(st.fps, 0.0, "no rate before a whole window");
        // 30 frames a second delivered in bursts of three 0.3 ms apart: 1/Δt would
        // read 3333 fps; the window reads 30.
        let mut st = CaptureStats::default();
        let mut last = None;
        for i in 0..61u64 {
            let at = 1_000 + (i / 3) * 100_000 + (i % 3) * 300;
            count_frame(&mut st, &frame(i, at), at, last);
            last = Some((at, i));
        }
        assert!((st.fps - 30.0).abs() < 0.5, "{}", st.fps);
        let mut st = CaptureStats::default();
        count_frame(&mut st, &frame(0, 1_000), 1_000, None);
        count_frame(&mut st, &frame(1, 41_000), 41_000, Some((1_000, 0)));
        count_frame(&mut st, &frame(2, 61_000), 61_000, Some((41_000, 1)));
        assert_eq!(
            (st.frames, st.epoch_us),
            (0, 0),
            "counted by the router, last"
        );
        // A seek back to frame 1.
        count_frame(&mut st, &frame(1, 90_000), 95_000, Some((61_000, 2)));
        assert_eq!(st.epoch_us, 90_000);
        assert_eq!(st.last_frame_at_us, 95_000);
    }
}
