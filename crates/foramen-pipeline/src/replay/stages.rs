//! The offline pipeline's stages: the timed source (decode), the segment and blend
//! threads, and the records they pass on.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use foramen_capture::{CaptureError, CaptureEvent, FrameSource, SourceInfo};
use foramen_core::{Frame, FramePool, LatencyStats, Mask, clock_us, lock};
use foramen_overlay::{Compositor, OverlayStyle};
use foramen_segment::{Segmenter, StageTimings};

use crate::{PipelineError, Result};

/// A frame and its mask (none when segmentation failed), segment -> blend.
pub(super) struct Segmented {
    pub frame: Frame,
    pub mask: Option<Mask>,
    pub timings: StageTimings,
}

/// A composited frame and what the telemetry says of it, blend -> encode.
pub(super) struct Blended {
    pub frame_id: u64,
    pub pts_us: i64,
    pub captured_at_us: u64,
    pub rgb: Vec<u8>,
    pub mask_frame: Option<u64>,
    pub mask_age_ms: Option<f64>,
    pub timings: StageTimings,
    pub blend_ms: f32,
}

/// What the segment thread counted: frames lost by the source, frames whose
/// segmentation failed, and the error that ended the input early, if any.
pub(super) struct SegmentCounts {
    pub lost: u64,
    pub failed: u64,
    pub fatal: Option<String>,
}

/// Times each decode and ends the stream after a frame budget.
pub(super) struct TimedSource {
    pub inner: Box<dyn FrameSource>,
    pub decode_ms: Arc<Mutex<LatencyStats>>,
    pub frames_left: Option<u64>,
}

impl FrameSource for TimedSource {
    fn info(&self) -> &SourceInfo {
        self.inner.info()
    }

    fn set_frame_pool(&mut self, pool: FramePool) {
        self.inner.set_frame_pool(pool);
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.frames_left == Some(0) {
            return Ok(None);
        }
        let t = Instant::now();
        let r = self.inner.next_frame();
        if let Ok(Some(_)) = &r {
            lock(&self.decode_ms).push(t.elapsed().as_secs_f64() * 1000.0);
            if let Some(n) = self.frames_left.as_mut() {
                *n -= 1;
            }
        }
        r
    }
}

fn spawn<T: Send + 'static>(
    name: &'static str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|source| PipelineError::Spawn { name, source })
}

/// Thread `segment`: every frame through the model, in order; masks that the blend
/// thread sends back are reused.
pub(super) fn spawn_segment(
    mut seg: Segmenter,
    events: Receiver<CaptureEvent>,
    out: Sender<Segmented>,
    masks_back: Receiver<Mask>,
) -> Result<std::thread::JoinHandle<SegmentCounts>> {
    spawn("segment", move || {
        let (mut lost, mut failed) = (0u64, 0u64);
        for ev in events {
            match ev {
                CaptureEvent::Frame(frame) => {
                    while let Ok(m) = masks_back.try_recv() {
                        seg.recycle(m);
                    }
                    let (mask, timings) = match seg.segment(&frame) {
                        Ok(r) => (Some(r.mask), r.timings),
                        Err(e) => {
                            failed += 1;
                            tracing::warn!("frame {}: {e}", frame.id);
                            (None, StageTimings::default())
                        }
                    };
                    let s = Segmented {
                        frame,
                        mask,
                        timings,
                    };
                    if out.send(s).is_err() {
                        break;
                    }
                }
                CaptureEvent::FrameError(e) => {
                    lost += 1;
                    tracing::warn!("{e}");
                }
                CaptureEvent::End(e) => {
                    let fatal = e.map(|e| e.to_string());
                    return SegmentCounts {
                        lost,
                        failed,
                        fatal,
                    };
                }
            }
        }
        SegmentCounts {
            lost,
            failed,
            fatal: None,
        }
    })
}

/// The buffers the blend thread hands back upstream once a frame is composited.
pub(super) struct Recycling {
    /// Decoded frames' buffers, back to the source's pool.
    pub frame_pool: FramePool,
    /// Masks, back to the segmenter.
    pub masks_back: Sender<Mask>,
    /// Output buffers coming back from the encoder.
    pub output_buffers: Receiver<Vec<u8>>,
}

/// Thread `blend`: composites each mask onto its frame (a frame without a mask is
/// copied as it is).
pub(super) fn spawn_blend(
    style: OverlayStyle,
    input: Receiver<Segmented>,
    out: Sender<Blended>,
    recycling: Recycling,
) -> Result<std::thread::JoinHandle<()>> {
    spawn("blend", move || {
        let mut comp = Compositor::new();
        for s in input {
            let t = Instant::now();
            let f = &s.frame;
            let mut rgb = recycling.output_buffers.try_recv().unwrap_or_default();
            rgb.resize(f.rgb.len(), 0);
            match &s.mask {
                Some(m) => comp.composite(&f.rgb, f.width, f.height, m, &style, &mut rgb),
                None => rgb.copy_from_slice(&f.rgb),
            }
            let b = Blended {
                frame_id: f.id,
                pts_us: f.pts_us,
                captured_at_us: f.captured_at_us,
                rgb,
                mask_frame: s.mask.as_ref().map(|m| m.source_frame_id),
                mask_age_ms: s.mask.as_ref().map(|m| m.age_ms(clock_us())),
                timings: s.timings,
                blend_ms: t.elapsed().as_secs_f32() * 1000.0,
            };
            recycling.frame_pool.give(s.frame.rgb);
            if let Some(m) = s.mask {
                let _ = recycling.masks_back.try_send(m);
            }
            if out.send(b).is_err() {
                break;
            }
        }
    })
}

/// Header of the per-frame telemetry CSV; `provider` is the execution provider the model
/// actually ran on (`cpu` after a GPU that failed to register, never the one asked for).
pub(super) const TELEMETRY_HEADER: &str = "frame,pts_ms,mask_frame,mask_age_ms,infer_ms,pre_ms,model_ms,post_ms,blend_ms,total_ms,provider";

/// The telemetry row of one written frame (without its line end).
pub(super) fn telemetry_row(b: &Blended, total_ms: f64) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    format!(
        "{},{:.3},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
        b.frame_id,
        b.pts_us as f64 / 1000.0,
        opt(b.mask_frame.map(|m| m.to_string())),
        opt(b.mask_age_ms.map(|a| format!("{a:.3}"))),
        b.timings.total_ms(),
        b.timings.pre_ms,
        b.timings.infer_ms,
        b.timings.post_ms,
        b.blend_ms,
        total_ms
    )
}
