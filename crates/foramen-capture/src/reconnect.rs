//! A live source that survives unplugging: when the device fails it reports NO SIGNAL
//! as per-frame errors and reopens it with backoff, so the capture thread, the window
//! and the recording keep running.

use std::time::Duration;

use foramen_core::Frame;

use crate::{CaptureError, FrameSource, SourceInfo};

/// Opens (or reopens) the underlying source.
pub type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, CaptureError> + Send>;

/// Wraps a live source: a failed or ended device is reopened after `backoff_ms`,
/// doubling up to `max_backoff_ms`. While it is gone, [`FrameSource::next_frame`]
/// returns [`CaptureError::Frame`] errors that say so, at most one per backoff
/// step, and never ends the stream. Frame ids and timestamps keep increasing across
/// reconnections, so masks and recordings never see an id twice.
pub struct ReconnectingSource {
    open: Opener,
    inner: Option<Box<dyn FrameSource>>,
    info: SourceInfo,
    backoff_ms: u64,
    min_backoff_ms: u64,
    max_backoff_ms: u64,
    /// Added to the inner source's ids and timestamps after each reconnection.
    id_base: u64,
    pts_base_us: i64,
    next_id: u64,
    last_pts_us: i64,
    reconnects: u64,
}

impl ReconnectingSource {
    /// Opens the source once; the first failure is returned so that a wrong device
    /// path is reported at start-up, not retried forever.
    pub fn new(
        mut open: Opener,
        backoff_ms: u64,
        max_backoff_ms: u64,
    ) -> Result<Self, CaptureError> {
        let inner = open()?;
        let mut info = inner.info().clone();
        info.live = true;
        info.frame_count = None;
        Ok(Self {
            open,
            inner: Some(inner),
            info,
            backoff_ms: backoff_ms.max(1),
            min_backoff_ms: backoff_ms.max(1),
            max_backoff_ms: max_backoff_ms.max(backoff_ms.max(1)),
            id_base: 0,
            pts_base_us: 0,
            next_id: 0,
            last_pts_us: 0,
            reconnects: 0,
        })
    }

    /// Successful reopenings so far.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    fn lost(&mut self, why: String) -> CaptureError {
        self.inner = None;
        CaptureError::Frame {
            source_name: self.info.name.clone(),
            frame: self.next_id,
            reason: format!("NO SIGNAL: {why}; reconnecting"),
        }
    }
}

impl FrameSource for ReconnectingSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.inner.is_none() {
            std::thread::sleep(Duration::from_millis(self.backoff_ms));
            match (self.open)() {
                Ok(src) => {
                    let i = src.info();
                    if (i.width, i.height) != (self.info.width, self.info.height) {
                        tracing::warn!(
                            "{}: reconnected at {}x{} (was {}x{})",
                            self.info.name,
                            i.width,
                            i.height,
                            self.info.width,
                            self.info.height
                        );
                        self.info.width = i.width;
                        self.info.height = i.height;
                    }
                    self.inner = Some(src);
                    self.backoff_ms = self.min_backoff_ms;
                    self.reconnects += 1;
                    self.id_base = self.next_id;
                    self.pts_base_us = self.last_pts_us + (1e6 / self.info.fps.max(1.0)) as i64;
                }
                Err(e) => {
                    let waited = self.backoff_ms;
                    self.backoff_ms = (self.backoff_ms * 2).min(self.max_backoff_ms);
                    return Err(self.lost(format!("{e} (retry after {waited} ms)")));
                }
            }
        }
        let Some(inner) = self.inner.as_mut() else {
            return Err(self.lost("device closed".into()));
        };
        match inner.next_frame() {
            Ok(Some(mut f)) => {
                f.id += self.id_base;
                f.pts_us += self.pts_base_us;
                self.next_id = f.id + 1;
                self.last_pts_us = f.pts_us;
                Ok(Some(f))
            }
            // A live device does not end: an end of stream is a lost signal.
            Ok(None) => Err(self.lost("stream ended".into())),
            Err(e @ CaptureError::Frame { .. }) => Err(e),
            Err(e) => Err(self.lost(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyntheticSource;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A device that delivers 3 frames per plug-in, then is "unplugged"; the first
    /// `fail` reopen attempts after each unplug fail.
    fn flaky(fail: u32) -> (Opener, Arc<AtomicU32>) {
        let attempts = Arc::new(AtomicU32::new(0));
        let a = attempts.clone();
        let open: Opener = Box::new(move || {
            let n = a.fetch_add(1, Ordering::SeqCst);
            if n > 0 && !n.is_multiple_of(fail + 1) {
                return Err(CaptureError::Open {
                    source_name: "/dev/video9".into(),
                    reason: "No such device".into(),
                });
            }
            Ok(Box::new(SyntheticSource::new(1, 32, 18, 100.0, Some(3))) as Box<dyn FrameSource>)
        });
        (open, attempts)
    }

    #[test]
    fn unplug_is_reported_and_the_device_comes_back_with_fresh_ids() {
        let (open, attempts) = flaky(2);
        let mut src = ReconnectingSource::new(open, 1, 4).expect("first open");
        let mut ids = vec![];
        let mut no_signal = 0;
        while ids.len() < 9 {
            match src.next_frame() {
                Ok(Some(f)) => ids.push((f.id, f.pts_us)),
                Ok(None) => panic!("a live source never ends"),
                Err(e) => {
                    assert!(e.to_string().contains("NO SIGNAL"), "{e}");
                    no_signal += 1;
                }
            }
        }
        assert_eq!(
            ids.iter().map(|p| p.0).collect::<Vec<_>>(),
            (0..9).collect::<Vec<_>>()
        );
        assert!(
            ids.windows(2).all(|w| w[1].1 > w[0].1),
            "pts increase: {ids:?}"
        );
        assert_eq!(src.reconnects(), 2);
        // Each unplug: one "stream ended" and two failed reopen attempts.
        assert_eq!(no_signal, 6);
        assert_eq!(attempts.load(Ordering::SeqCst), 7);
    }

    #[test]
    fn a_device_missing_at_start_is_an_error_not_a_retry_loop() {
        let open: Opener = Box::new(|| {
            Err(CaptureError::Open {
                source_name: "/dev/video7".into(),
                reason: "No such device".into(),
            })
        });
        let err = ReconnectingSource::new(open, 1, 4).err().expect("fails");
        assert!(err.to_string().contains("/dev/video7"), "{err}");
    }
}
