//! A live-like source that renders synthetic lumbar endoscopy in real time.

use foramen_core::Frame;
use foramen_data::synth::{SceneSpec, Trajectory, render};

use crate::{CaptureError, FrameSource, SourceInfo};

/// Renders a moving synthetic scene; frame `i` has pts `i / fps`.
pub struct SyntheticSource {
    info: SourceInfo,
    trajectory: Trajectory,
    next: u64,
}

impl SyntheticSource {
    /// A clip of `frames` frames (`None`: endless) of scene `seed`.
    pub fn new(seed: u64, width: u32, height: u32, fps: f64, frames: Option<u64>) -> Self {
        Self {
            info: SourceInfo {
                name: format!("synthetic:{seed}:{width}x{height}@{fps}"),
                width,
                height,
                fps,
                frame_count: frames,
                live: false,
            },
            trajectory: Trajectory::new(SceneSpec::from_seed(seed)),
            next: 0,
        }
    }

    /// Parses the part after `synthetic`: `[:SEED[:WxH[@FPS[:FRAMES]]]]`.
    pub fn parse(spec: &str) -> Result<Self, CaptureError> {
        let bad = |why: &str| CaptureError::Open {
            source_name: format!("synthetic{spec}"),
            reason: format!("{why}; expected synthetic[:SEED[:WxH[@FPS[:FRAMES]]]]"),
        };
        let mut parts = spec
            .strip_prefix(':')
            .unwrap_or(spec)
            .split(':')
            .filter(|s| !s.is_empty());
        let seed = parts
            .next()
            .map_or(Ok(1), |s| s.parse().map_err(|_| bad("bad seed")))?;
        let (mut w, mut h, mut fps) = (1280u32, 720u32, 30.0f64);
        if let Some(size) = parts.next() {
            let (dims, rate) = size
                .split_once('@')
                .map_or((size, None), |(d, r)| (d, Some(r)));
            let (ws, hs) = dims.split_once('x').ok_or_else(|| bad("bad size"))?;
            w = ws.parse().map_err(|_| bad("bad width"))?;
            h = hs.parse().map_err(|_| bad("bad height"))?;
            if let Some(r) = rate {
                fps = r.parse().map_err(|_| bad("bad fps"))?;
            }
        }
        let frames = parts
            .next()
            .map(|f| f.parse().map_err(|_| bad("bad frame count")))
            .transpose()?;
        if w < 16 || h < 16 || !fps.is_finite() || fps <= 0.0 || fps > 1000.0 {
            return Err(bad("size must be at least 16x16 and fps in (0, 1000]"));
        }
        foramen_core::limits::check_pixels(&format!("synthetic{spec}"), w, h).map_err(|e| {
            CaptureError::Open {
                source_name: format!("synthetic{spec}"),
                reason: e.to_string(),
            }
        })?;
        Ok(Self::new(seed, w, h, fps, frames))
    }
}

impl FrameSource for SyntheticSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        if self.info.frame_count.is_some_and(|n| self.next >= n) {
            return Ok(None);
        }
        let dt = 1.0 / self.info.fps;
        let t = self.next as f64 * dt;
        let state = self
            .trajectory
            .state_at(t as f32, dt as f32, self.info.height);
        let r = render(
            self.trajectory.spec(),
            &state,
            self.info.width,
            self.info.height,
        );
        let frame =
            Frame::new(self.next, (t * 1e6) as i64, r.width, r.height, r.rgb).ok_or_else(|| {
                CaptureError::Frame {
                    source_name: self.info.name.clone(),
                    frame: self.next,
                    reason: "renderer returned a wrong-sized buffer".into(),
                }
            })?;
        self.next += 1;
        Ok(Some(frame))
    }

    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        // Every frame is a pure function of its index, so any index can be shown.
        self.next = index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let s = SyntheticSource::parse(":7:320x180@50:12").expect("valid");
        assert_eq!(
            (s.info.width, s.info.height, s.info.fps, s.info.frame_count),
            (320, 180, 50.0, Some(12))
        );
        assert!(SyntheticSource::parse(":x").is_err());
        // Issue 18, item 6: a huge size is an error, not a 120 GB allocation.
        let huge = SyntheticSource::parse(":1:100000x100000@30")
            .err()
            .expect("too big");
        assert!(huge.to_string().contains("over the limit"), "{huge}");
        assert!(SyntheticSource::parse(":1:320x180@0").is_err());
        assert!(SyntheticSource::parse(":1:320x180@inf").is_err());
        assert!(
            SyntheticSource::parse(":1:320by180")
                .err()
                .expect("error")
                .to_string()
                .contains("expected synthetic")
        );
    }

    #[test]
    fn yields_the_requested_frames() {
        let mut s = SyntheticSource::parse(":3:64x36@10:3").expect("valid");
        let mut pts = vec![];
        while let Some(f) = s.next_frame().expect("frame") {
            assert_eq!((f.width, f.height), (64, 36));
            pts.push(f.pts_us);
        }
        assert_eq!(pts, vec![0, 100_000, 200_000]);
    }
}
