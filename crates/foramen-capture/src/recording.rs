//! A recording folder (`session.toml`, `video-00000.mp4`, `video-00001.mp4`, ...) played
//! as one stream: the segments in order, frame ids counting across them, so that frame
//! `i` of the stream is row `i` of the recording's `frames.csv` (the recorder writes one
//! row per frame it puts into a segment, in order). `foramen view RECORDING` reviews a
//! procedure through it, seek included, and its timeline strip maps seconds to these ids.

use std::path::{Path, PathBuf};

use foramen_core::{Frame, FramePool};

use crate::{CaptureError, FrameSource, OpenCvSource, SourceInfo};
pub use foramen_data::recording::{SESSION_FILE, is_recording};

/// One video segment and the stream index of its first frame.
struct Segment {
    path: PathBuf,
    first: u64,
    frames: u64,
}

/// The segments of a recording as one seekable stream.
pub struct RecordingSource {
    info: SourceInfo,
    segments: Vec<Segment>,
    /// Index into `segments` of the open one.
    current: usize,
    open: Option<OpenCvSource>,
    /// Stream index of the next frame.
    next: u64,
    pool: Option<FramePool>,
}

impl RecordingSource {
    /// Lists the recording's segments. A segment that does not open (the one a crash or
    /// power cut left without its index) is left out with a warning; it can only be the
    /// last one, so the ids of the others still match `frames.csv`.
    pub fn open(dir: &Path) -> Result<Self, CaptureError> {
        let name = dir.display().to_string();
        let open_err = |reason: String| CaptureError::Open {
            source_name: name.clone(),
            reason,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| open_err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_segment_name(p))
            .collect();
        paths.sort();
        let mut segments = vec![];
        let mut first_info: Option<SourceInfo> = None;
        let mut first = 0;
        for path in paths {
            match OpenCvSource::open_file(&path) {
                Ok(src) => {
                    let frames = src.info().frame_count.unwrap_or(0);
                    first_info.get_or_insert_with(|| src.info().clone());
                    segments.push(Segment {
                        path,
                        first,
                        frames,
                    });
                    first += frames;
                }
                Err(e) => tracing::warn!("{name}: segment left out: {e}"),
            }
        }
        let info =
            first_info.ok_or_else(|| open_err("no readable video-NNNNN.mp4 segment".into()))?;
        Ok(Self {
            info: SourceInfo {
                name,
                frame_count: Some(first),
                live: false,
                ..info
            },
            segments,
            current: 0,
            open: None,
            next: 0,
            pool: None,
        })
    }

    /// The segment files in stream order, with their frame counts.
    pub fn segments(&self) -> Vec<(PathBuf, u64)> {
        self.segments
            .iter()
            .map(|s| (s.path.clone(), s.frames))
            .collect()
    }

    /// Opens segment `i` positioned at its local frame `local`.
    fn open_segment(&mut self, i: usize, local: u64) -> Result<(), CaptureError> {
        let mut src = OpenCvSource::open_file(&self.segments[i].path)?;
        if let Some(pool) = &self.pool {
            src.set_frame_pool(pool.clone());
        }
        if local > 0 {
            src.seek(local)?;
        }
        self.current = i;
        self.open = Some(src);
        Ok(())
    }
}

/// `video-NNNNN.mp4`, as the recorder names its segments.
fn is_segment_name(p: &Path) -> bool {
    let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.strip_prefix("video-")
        .and_then(|r| r.strip_suffix(".mp4"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl FrameSource for RecordingSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, CaptureError> {
        loop {
            if self.open.is_none() {
                if self.current >= self.segments.len() {
                    return Ok(None);
                }
                self.open_segment(self.current, 0)?;
            }
            let Some(src) = self.open.as_mut() else {
                return Ok(None);
            };
            match src.next_frame()? {
                Some(mut f) => {
                    // Ids and times count over the whole recording, not the segment.
                    f.id = self.next;
                    f.pts_us = (self.next as f64 * 1e6 / self.info.fps).round() as i64;
                    self.next += 1;
                    return Ok(Some(f));
                }
                None => {
                    self.open = None;
                    self.current += 1;
                    // A segment shorter than its header said: the next starts where it should.
                    if let Some(s) = self.segments.get(self.current) {
                        self.next = s.first;
                    }
                }
            }
        }
    }

    fn seek(&mut self, index: u64) -> Result<(), CaptureError> {
        let i = self
            .segments
            .iter()
            .rposition(|s| s.first <= index && s.frames > 0)
            .filter(|&i| index < self.segments[i].first + self.segments[i].frames)
            .ok_or_else(|| CaptureError::Frame {
                source_name: self.info.name.clone(),
                frame: index,
                reason: format!(
                    "beyond the recording's {} frames",
                    self.info.frame_count.unwrap_or(0)
                ),
            })?;
        self.open_segment(i, index - self.segments[i].first)?;
        self.next = index;
        Ok(())
    }

    fn set_frame_pool(&mut self, pool: FramePool) {
        if let Some(src) = self.open.as_mut() {
            src.set_frame_pool(pool.clone());
        }
        self.pool = Some(pool);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::VideoEncoder;

    /// Writes `counts[i]` frames into `video-0000i.mp4`, frame `k` of the whole stream
    /// filled with grey level `10 * k` so that the tests can tell frames apart.
    fn recording(counts: &[u64]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(SESSION_FILE), "fps = 10.0\n").expect("session");
        let mut k = 0u64;
        for (i, &n) in counts.iter().enumerate() {
            let path = dir.path().join(format!("video-{i:05}.mp4"));
            let mut enc = VideoEncoder::create(&path, 64, 48, 10.0).expect("encoder");
            for _ in 0..n {
                enc.write_rgb(&vec![(10 * k) as u8; 64 * 48 * 3])
                    .expect("write");
                k += 1;
            }
            enc.finish().expect("finish");
        }
        dir
    }

    fn grey(f: &Frame) -> f64 {
        f.rgb.iter().map(|&v| f64::from(v)).sum::<f64>() / f.rgb.len() as f64
    }

    #[test]
    fn segments_play_as_one_stream_with_continuous_ids() {
        let dir = recording(&[5, 4, 3]);
        assert!(is_recording(dir.path()));
        let mut src = RecordingSource::open(dir.path()).expect("open");
        assert_eq!(src.info().frame_count, Some(12));
        let mut ids = vec![];
        while let Some(f) = src.next_frame().expect("frame") {
            assert!(
                (grey(&f) - 10.0 * f.id as f64).abs() < 4.0,
                "frame {}",
                f.id
            );
            ids.push(f.id);
        }
        assert_eq!(ids, (0..12).collect::<Vec<_>>());
    }

    #[test]
    fn seek_lands_on_the_frame_in_its_segment_and_past_the_end_is_an_error() {
        let dir = recording(&[5, 4, 3]);
        let mut src = RecordingSource::open(dir.path()).expect("open");
        for index in [7, 0, 11, 5, 4] {
            src.seek(index).expect("seek");
            let f = src.next_frame().expect("frame").expect("some");
            assert_eq!(f.id, index);
            assert!(
                (grey(&f) - 10.0 * index as f64).abs() < 4.0,
                "frame {index}"
            );
        }
        let e = src.seek(12).expect_err("past the end");
        assert!(e.to_string().contains("12 frames"), "{e}");
    }

    #[test]
    fn a_segment_left_unreadable_by_a_crash_is_left_out() {
        let dir = recording(&[5, 4]);
        // The open segment of a killed recorder: bytes without an index.
        std::fs::write(dir.path().join("video-00002.mp4"), b"\0\0\0\x18ftypmp42").expect("cut");
        std::fs::write(dir.path().join("notes.txt"), b"not a segment").expect("other");
        let src = RecordingSource::open(dir.path()).expect("open");
        assert_eq!(src.info().frame_count, Some(9));
        assert_eq!(src.segments().len(), 2);
    }

    #[test]
    fn a_folder_without_segments_is_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(SESSION_FILE), "").expect("session");
        let e = RecordingSource::open(dir.path())
            .err()
            .expect("no segments");
        assert!(e.to_string().contains("no readable video-NNNNN.mp4"), "{e}");
    }
}
