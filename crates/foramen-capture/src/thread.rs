//! The capture thread: owns a source and pushes its frames into a bounded channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TrySendError, bounded};
use foramen_core::{Frame, NewestSlot, fault};

use crate::{CaptureError, FrameSource, SourceInfo};

/// What happens when the consumer falls behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropPolicy {
    /// Live display and inference: the oldest queued frame is dropped so the newest
    /// always gets in (counted in [`CaptureHandle::dropped`]).
    NewestWins,
    /// Offline replay and recording: the source waits; nothing is dropped.
    Block,
}

/// One message from the capture thread.
#[derive(Debug)]
pub enum CaptureEvent {
    /// A frame.
    Frame(Frame),
    /// A frame was lost (corrupt or undecodable); the stream goes on.
    FrameError(CaptureError),
    /// The stream ended (finite sources) or failed for good; no more events follow.
    End(Option<CaptureError>),
}

/// Review controls shared with the capture thread (offline `view`: pause, step, seek).
#[derive(Default)]
struct Control {
    paused: AtomicBool,
    steps: AtomicU64,
    /// A pending seek (newest wins: only the last requested position matters).
    seek: NewestSlot<u64>,
}

/// The running capture thread. Dropping it asks the thread to stop without waiting.
pub struct CaptureHandle {
    rx: Receiver<CaptureEvent>,
    stop: Arc<AtomicBool>,
    control: Arc<Control>,
    dropped: Arc<AtomicU64>,
    info: SourceInfo,
    join: Option<JoinHandle<()>>,
}

impl CaptureHandle {
    /// Events in stream order.
    pub fn events(&self) -> &Receiver<CaptureEvent> {
        &self.rx
    }

    /// The source's description.
    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// Frames dropped so far under [`DropPolicy::NewestWins`].
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Pauses or resumes reading (a paced source resumes without catching up).
    pub fn set_paused(&self, paused: bool) {
        self.control.paused.store(paused, Ordering::Relaxed);
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.control.paused.load(Ordering::Relaxed)
    }

    /// While paused: deliver exactly one more frame.
    pub fn step(&self) {
        self.control.steps.fetch_add(1, Ordering::Relaxed);
    }

    /// Continue from frame `index` (a seek error arrives as a `FrameError` event).
    pub fn seek(&self, index: u64) {
        self.control.seek.put(index);
    }

    /// Stops the thread and waits for it (use at shutdown, not from a UI thread).
    pub fn stop_and_join(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Drain so a thread blocked on a full channel can notice the flag.
        while self.rx.try_recv().is_ok() {}
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

impl Drop for CaptureHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts thread `capture` reading `source` into a channel of `capacity` events.
pub fn spawn_capture(
    mut source: Box<dyn FrameSource>,
    capacity: usize,
    policy: DropPolicy,
) -> CaptureHandle {
    let (tx, rx) = bounded(capacity.max(1));
    let stop = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(AtomicU64::new(0));
    let control = Arc::new(Control::default());
    let info = source.info().clone();
    let join = {
        let (stop, dropped, drain) = (stop.clone(), dropped.clone(), rx.clone());
        let control = control.clone();
        std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || {
                let end = loop {
                    if stop.load(Ordering::Relaxed) {
                        break None;
                    }
                    let seek = control.seek.take();
                    if let Some(index) = seek {
                        if let Err(e) = source.seek(index) {
                            let ev = CaptureEvent::FrameError(e);
                            if !deliver(&tx, &drain, ev, policy, &stop, &dropped) {
                                return;
                            }
                        }
                        source.restart_clock();
                        if control.paused.load(Ordering::Relaxed) {
                            // Show the frame sought to, even while paused.
                            control.steps.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if control.paused.load(Ordering::Relaxed) {
                        let stepped = control
                            .steps
                            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                                n.checked_sub(1)
                            })
                            .is_ok();
                        if !stepped {
                            std::thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        source.restart_clock();
                    }
                    let event = match source.next_frame() {
                        Ok(Some(f)) => {
                            fault::inject(fault::Site::Capture, f.id);
                            CaptureEvent::Frame(f)
                        }
                        Ok(None) => break None,
                        Err(e @ CaptureError::Frame { .. }) => CaptureEvent::FrameError(e),
                        Err(e) => break Some(e),
                    };
                    if !deliver(&tx, &drain, event, policy, &stop, &dropped) {
                        return; // Receiver gone or stop requested.
                    }
                };
                let _ = deliver(
                    &tx,
                    &drain,
                    CaptureEvent::End(end),
                    DropPolicy::Block,
                    &stop,
                    &dropped,
                );
            })
            .ok()
    };
    CaptureHandle {
        rx,
        stop,
        control,
        dropped,
        info,
        join,
    }
}

/// Sends under `policy`; false when the consumer is gone or a stop was requested.
fn deliver(
    tx: &Sender<CaptureEvent>,
    drain: &Receiver<CaptureEvent>,
    mut event: CaptureEvent,
    policy: DropPolicy,
    stop: &AtomicBool,
    dropped: &AtomicU64,
) -> bool {
    loop {
        match policy {
            DropPolicy::NewestWins => match tx.try_send(event) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(e)) => {
                    if let Ok(CaptureEvent::Frame(_)) = drain.try_recv() {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    event = e;
                }
            },
            DropPolicy::Block => match tx.send_timeout(event, Duration::from_millis(50)) {
                Ok(()) => return true,
                Err(SendTimeoutError::Disconnected(_)) => return false,
                Err(SendTimeoutError::Timeout(e)) => {
                    if stop.load(Ordering::Relaxed) {
                        return false;
                    }
                    event = e;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SyntheticSource;

    fn frames_of(handle: &CaptureHandle) -> Vec<u64> {
        let mut ids = vec![];
        while let Ok(ev) = handle.events().recv_timeout(Duration::from_secs(20)) {
            match ev {
                CaptureEvent::Frame(f) => ids.push(f.id),
                CaptureEvent::FrameError(e) => panic!("{e}"),
                CaptureEvent::End(e) => {
                    assert!(e.is_none());
                    break;
                }
            }
        }
        ids
    }

    #[test]
    fn block_policy_delivers_every_frame_in_order() {
        let src = SyntheticSource::parse(":1:32x18@100:20").expect("src");
        let h = spawn_capture(Box::new(src), 2, DropPolicy::Block);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(frames_of(&h), (0..20).collect::<Vec<_>>());
        assert_eq!(h.dropped(), 0);
        h.stop_and_join();
    }

    #[test]
    fn pause_step_and_seek_drive_review() {
        let src = SyntheticSource::parse(":1:32x18@1000:50").expect("src");
        let h = spawn_capture(Box::new(src), 64, DropPolicy::Block);
        h.set_paused(true);
        std::thread::sleep(Duration::from_millis(50));
        // Whatever arrived before the pause took effect, nothing more comes.
        while h.events().try_recv().is_ok() {}
        assert!(
            h.events().recv_timeout(Duration::from_millis(100)).is_err(),
            "paused"
        );
        h.seek(40);
        let next = |h: &CaptureHandle| match h.events().recv_timeout(Duration::from_secs(10)) {
            Ok(CaptureEvent::Frame(f)) => f.id,
            other => panic!("{other:?}"),
        };
        assert_eq!(next(&h), 40, "a seek shows its frame while paused");
        h.step();
        assert_eq!(next(&h), 41);
        assert!(h.events().recv_timeout(Duration::from_millis(100)).is_err());
        h.set_paused(false);
        assert_eq!(next(&h), 42);
        h.stop_and_join();
    }

    #[test]
    fn newest_wins_drops_old_frames_when_the_consumer_is_slow() {
        let src = SyntheticSource::parse(":1:32x18@100:30").expect("src");
        let h = spawn_capture(Box::new(src), 1, DropPolicy::NewestWins);
        // Consume nothing until the source has finished.
        std::thread::sleep(Duration::from_millis(800));
        let ids = frames_of(&h);
        assert!(ids.len() < 30, "slow consumer must miss frames: {ids:?}");
        assert_eq!(
            ids.last(),
            Some(&29),
            "the newest frame is never the one dropped"
        );
        assert_eq!(h.dropped() as usize + ids.len(), 30);
        h.stop_and_join();
    }
}
