//! Paces any source at its own frame rate, so replay behaves exactly like live.

use std::time::{Duration, Instant};

use foramen_core::Frame;

use crate::{CaptureError, FrameSource, SourceInfo};

/// Wraps a source and releases each frame no earlier than its presentation time,
/// measured from the first frame. Late frames are released at once (never skipped:
/// dropping is the consumer's policy, not the clock's).
pub struct Paced<S> {
    inner: S,
    info: SourceInfo,
    start: Option<(Instant, i64)>,
}

impl<S: FrameSource> Paced<S> {
    /// Paces `inner` at its presentation timestamps.
    pub fn new(inner: S) -> Self {
        let mut info = inner.info().clone();
        info.live = true;
        Self {
            inner,
            info,
            start: None,
        }
    }
}

impl<S: FrameSource> FrameSource for Paced<S> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        let Some(mut frame) = self.inner.next_frame()? else {
            return Ok(None);
        };
        let (t0, pts0) = *self.start.get_or_insert((Instant::now(), frame.pts_us));
        let due = t0 + Duration::from_micros((frame.pts_us - pts0).max(0) as u64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        // The frame "arrives" now, as it would from a capture card.
        frame.captured_at_us = foramen_core::clock_us();
        Ok(Some(frame))
    }

    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        self.start = None;
        self.inner.seek(index)
    }

    fn restart_clock(&mut self) {
        self.start = None;
    }

    fn set_frame_pool(&mut self, pool: foramen_core::FramePool) {
        self.inner.set_frame_pool(pool)
    }
}

impl FrameSource for Box<dyn FrameSource> {
    fn info(&self) -> &SourceInfo {
        (**self).info()
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        (**self).next_frame()
    }

    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        (**self).seek(index)
    }

    fn restart_clock(&mut self) {
        (**self).restart_clock()
    }

    fn set_frame_pool(&mut self, pool: foramen_core::FramePool) {
        (**self).set_frame_pool(pool)
    }
}

/// Replays a source at another frame rate: timestamps become `index / fps` (e.g. to
/// drive the live path with a 30 fps recording at a capture card's 60 fps).
pub struct Retimed<S> {
    inner: S,
    info: SourceInfo,
}

impl<S: FrameSource> Retimed<S> {
    /// `inner` with its timestamps rewritten for `fps` frames per second.
    pub fn new(inner: S, fps: f64) -> Self {
        let mut info = inner.info().clone();
        info.fps = fps;
        Self { inner, info }
    }
}

impl<S: FrameSource> FrameSource for Retimed<S> {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        let Some(mut frame) = self.inner.next_frame()? else {
            return Ok(None);
        };
        frame.pts_us = (frame.id as f64 * 1e6 / self.info.fps).round() as i64;
        Ok(Some(frame))
    }

    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        self.inner.seek(index)
    }

    fn restart_clock(&mut self) {
        self.inner.restart_clock()
    }

    fn set_frame_pool(&mut self, pool: foramen_core::FramePool) {
        self.inner.set_frame_pool(pool)
    }
}
