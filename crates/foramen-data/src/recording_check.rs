//! What of a recording survived (after a crash too), file by file: the check behind
//! `foramen recording DIR`, and the integrity summary of `foramen report`.
//!
//! Decoding video needs OpenCV, which this crate does not use: the caller passes a
//! function counting a segment's readable frames.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::recording::{MaskScan, RecordingError, frame_row_fields_ok, scan_masks};

/// One video segment and its readable frames (`Err`: why it cannot be opened).
#[derive(Clone, Debug)]
pub struct SegmentCheck {
    /// The segment file.
    pub path: PathBuf,
    /// Frames decoded, or why the file could not be opened.
    pub frames: Result<u64, String>,
}

/// What a recording folder holds that can still be read.
#[derive(Clone, Debug)]
pub struct RecordingCheck {
    /// The recording folder.
    pub dir: PathBuf,
    /// Video segments, in order.
    pub segments: Vec<SegmentCheck>,
    /// Complete `frames.csv` rows.
    pub rows: u64,
    /// The scan of `masks.bin`.
    pub masks: MaskScan,
}

impl RecordingCheck {
    /// Readable video frames over all segments.
    pub fn video_frames(&self) -> u64 {
        self.segments
            .iter()
            .filter_map(|s| s.frames.as_ref().ok())
            .sum()
    }

    /// Whether anything at all can be read (video or telemetry).
    pub fn readable(&self) -> bool {
        self.video_frames() > 0 || self.rows > 0
    }
}

impl std::fmt::Display for RecordingCheck {
    /// One line per segment, then the summary line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for s in &self.segments {
            match &s.frames {
                Ok(n) => writeln!(f, "{}: {n} frames", s.path.display())?,
                Err(e) => writeln!(f, "{}: unreadable (cut by a crash?): {e}", s.path.display())?,
            }
        }
        let m = &self.masks;
        let cut = if m.cut { " (last mask record cut)" } else { "" };
        let damaged = if m.damaged_regions > 0 {
            format!(
                " ({} damaged region(s), {} bytes, skipped)",
                m.damaged_regions, m.damaged_bytes
            )
        } else {
            String::new()
        };
        write!(
            f,
            "{}: {} segments, {} readable video frames, {} telemetry rows, {} masks{cut}{damaged}",
            self.dir.display(),
            self.segments.len(),
            self.video_frames(),
            self.rows,
            m.records
        )
    }
}

/// Checks the recording folder `dir`: each `video-*.mp4` through `count_video`, the
/// complete rows of `frames.csv` and the records of `masks.bin`, all streamed (memory does
/// not grow with the recording). A missing `frames.csv` or `masks.bin` counts as empty; a
/// folder without `session.toml` is not a recording.
pub fn check_recording(
    dir: &Path,
    count_video: impl Fn(&Path) -> Result<u64, String>,
) -> Result<RecordingCheck, RecordingError> {
    let io = |path: PathBuf| move |error| RecordingError::Io { path, error };
    let session = dir.join("session.toml");
    if !session.is_file() {
        let why = format!("{} is not a recording (no session.toml)", dir.display());
        return Err(io(session)(std::io::Error::other(why)));
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io(dir.to_path_buf()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "mp4"))
        .collect();
    paths.sort();
    let segments = paths
        .into_iter()
        .map(|path| SegmentCheck {
            frames: count_video(&path),
            path,
        })
        .collect();
    let csv = dir.join("frames.csv");
    let rows = match std::fs::File::open(&csv) {
        Ok(f) => count_row_lines(std::io::BufReader::new(f)).map_err(io(csv))?,
        Err(_) => 0,
    };
    let bin = dir.join("masks.bin");
    let masks = if bin.exists() {
        scan_masks(&bin, |_| ())?
    } else {
        MaskScan::default()
    };
    Ok(RecordingCheck {
        dir: dir.to_path_buf(),
        segments,
        rows,
        masks,
    })
}

/// Complete rows of a `frames.csv` stream (after its header; a cut last row not counted).
fn count_row_lines(r: impl BufRead) -> std::io::Result<u64> {
    let mut n = 0;
    for line in r.split(b'\n').skip(1) {
        let line = line?;
        if frame_row_fields_ok(line.iter().filter(|&&b| b == b',').count() + 1) {
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_checked_segment_by_segment_with_its_rows_and_masks() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        std::fs::write(d.join("session.toml"), "format = 1\n").expect("toml");
        std::fs::write(d.join("video-00000.mp4"), b"x").expect("seg");
        std::fs::write(d.join("video-00001.mp4"), b"").expect("seg");
        let csv = format!(
            "{}\n0,0,0,0,,,\n1,0,0,0,,,\n2,0",
            crate::recording::FRAMES_CSV_HEADER
        );
        std::fs::write(d.join("frames.csv"), csv).expect("csv");
        let check = check_recording(d, |p| {
            if std::fs::metadata(p).map(|m| m.len()).unwrap_or(0) > 0 {
                Ok(25)
            } else {
                Err("empty".into())
            }
        })
        .expect("check");
        assert_eq!(
            (check.rows, check.video_frames(), check.masks.records),
            (2, 25, 0)
        );
        let text = check.to_string();
        assert!(text.contains("video-00000.mp4: 25 frames"), "{text}");
        assert!(text.contains("video-00001.mp4: unreadable (cut by a crash?): empty"));
        assert!(text.ends_with("2 segments, 25 readable video frames, 2 telemetry rows, 0 masks"));
        assert!(check_recording(&d.join("nope"), |_| Ok(0)).is_err());
    }
}
