//! The recording format: what `foramen live --record` writes and `foramen recording`
//! reads back, beside the other on-disk formats.
//!
//! One recording folder holds:
//! - `session.toml` ([`SessionHeader`]): source, model, classes, start time, segment length;
//! - `video-00000.mp4`, `video-00001.mp4`, ...: raw (not annotated) video segments;
//! - `frames.csv` ([`FRAMES_CSV_HEADER`], [`FrameRow`]): one row per captured frame;
//! - `masks.bin`: every new mask as a self-delimiting record ([`write_mask`],
//!   [`read_masks`]); a cut leaves at most one partial record, which the reader reports.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use foramen_core::{ClassSet, Mask};

/// Magic bytes opening every record of `masks.bin`.
pub const MASK_MAGIC: &[u8; 4] = b"FMSK";

/// Bytes of a record's header: magic, frame id, pts, capture time, width, height,
/// inference time; the class bytes (width x height) follow.
pub const MASK_HEADER_BYTES: usize = 4 + 8 + 8 + 8 + 4 + 4 + 4;

/// Header line of `frames.csv`.
pub const FRAMES_CSV_HEADER: &str =
    "frame,pts_us,captured_at_us,segment,mask_frame,mask_age_ms,infer_ms";

/// Columns of a `frames.csv` row.
pub const FRAMES_CSV_COLUMNS: usize = 7;

/// A recording file that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// A record of `masks.bin` does not start with [`MASK_MAGIC`].
    #[error("{}: byte {at}: not a mask record (bad magic)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Offset of the record.
        at: usize,
    },
}

/// Appends one mask record to `masks.bin`.
pub fn write_mask(w: &mut impl Write, m: &Mask) -> std::io::Result<()> {
    w.write_all(MASK_MAGIC)?;
    w.write_all(&m.source_frame_id.to_le_bytes())?;
    w.write_all(&m.source_pts_us.to_le_bytes())?;
    w.write_all(&m.source_captured_at_us.to_le_bytes())?;
    w.write_all(&m.width.to_le_bytes())?;
    w.write_all(&m.height.to_le_bytes())?;
    w.write_all(&m.infer_ms.to_le_bytes())?;
    w.write_all(&m.classes)
}

/// One record of `masks.bin`.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskRecord {
    /// Source frame id.
    pub frame_id: u64,
    /// Source frame presentation time.
    pub pts_us: i64,
    /// Source frame capture time.
    pub captured_at_us: u64,
    /// Mask width.
    pub width: u32,
    /// Mask height.
    pub height: u32,
    /// Inference time.
    pub infer_ms: f32,
    /// Class index per pixel.
    pub classes: Vec<u8>,
}

/// Reads `masks.bin`: the complete records, and whether a partial (cut) record was
/// skipped at the end. A record that does not start with the magic is an error.
pub fn read_masks(path: &Path) -> Result<(Vec<MaskRecord>, bool), RecordingError> {
    let mut bytes = vec![];
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|error| RecordingError::Io {
            path: path.to_path_buf(),
            error,
        })?;
    let mut out = vec![];
    let mut at = 0usize;
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let u64_at = |b: &[u8], i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    while at < bytes.len() {
        if bytes.len() - at < MASK_HEADER_BYTES {
            return Ok((out, true));
        }
        if &bytes[at..at + 4] != MASK_MAGIC {
            return Err(RecordingError::BadMagic {
                path: path.to_path_buf(),
                at,
            });
        }
        let (w, h) = (u32_at(&bytes, at + 28), u32_at(&bytes, at + 32));
        let n = w as usize * h as usize;
        if bytes.len() - at - MASK_HEADER_BYTES < n {
            return Ok((out, true));
        }
        let start = at + MASK_HEADER_BYTES;
        out.push(MaskRecord {
            frame_id: u64_at(&bytes, at + 4),
            pts_us: u64_at(&bytes, at + 12) as i64,
            captured_at_us: u64_at(&bytes, at + 20),
            width: w,
            height: h,
            infer_ms: f32::from_bits(u32_at(&bytes, at + 36)),
            classes: bytes[start..start + n].to_vec(),
        });
        at = start + n;
    }
    Ok((out, false))
}

/// One row of `frames.csv`: a captured frame and the mask current when it was captured.
#[derive(Clone, Copy, Debug)]
pub struct FrameRow<'a> {
    /// Frame id.
    pub frame_id: u64,
    /// Presentation time.
    pub pts_us: i64,
    /// Capture time.
    pub captured_at_us: u64,
    /// Video segment holding the frame.
    pub segment: u64,
    /// The mask current at capture, if any.
    pub mask: Option<&'a Mask>,
}

impl std::fmt::Display for FrameRow<'_> {
    /// The row, without its line end: the mask's age is capture time minus the mask's
    /// source capture time, in ms.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{},{},{},{},",
            self.frame_id, self.pts_us, self.captured_at_us, self.segment
        )?;
        match self.mask {
            Some(m) => write!(
                f,
                "{},{:.1},{:.2}",
                m.source_frame_id,
                self.captured_at_us.saturating_sub(m.source_captured_at_us) as f64 / 1e3,
                m.infer_ms
            ),
            None => write!(f, ",,"),
        }
    }
}

/// Counts the complete rows of a `frames.csv` text (a cut last row is not counted).
pub fn count_frame_rows(csv: &str) -> usize {
    csv.lines()
        .skip(1)
        .filter(|l| l.split(',').count() == FRAMES_CSV_COLUMNS)
        .count()
}

/// What `session.toml` records about a recording.
#[derive(Clone, Copy, Debug)]
pub struct SessionHeader<'a> {
    /// `YYYYmmdd-HHMMSS` UTC ([`utc_stamp`]).
    pub started_utc: &'a str,
    /// The source's name.
    pub source: &'a str,
    /// Frame width.
    pub width: u32,
    /// Frame height.
    pub height: u32,
    /// Frame rate.
    pub fps: f64,
    /// The model file.
    pub model: &'a str,
    /// Segment length, seconds.
    pub segment_s: f64,
    /// The model's classes.
    pub classes: &'a ClassSet,
}

impl SessionHeader<'_> {
    /// The `session.toml` text (format 1).
    pub fn to_toml(&self) -> String {
        let q = |s: &str| format!("{s:?}");
        let names: Vec<String> = self.classes.classes.iter().map(|c| q(&c.name)).collect();
        let colors: Vec<String> = self
            .classes
            .classes
            .iter()
            .map(|c| format!("[{}, {}, {}]", c.color[0], c.color[1], c.color[2]))
            .collect();
        format!(
            "# Foramen recording: raw video segments, masks.bin, frames.csv (see the README).\n\
             format = 1\nstarted_utc = {}\nsource = {}\nwidth = {}\nheight = {}\nfps = {}\n\
             model = {}\nsegment_s = {}\nclasses = [{}]\ncolors = [{}]\n",
            q(self.started_utc),
            q(self.source),
            self.width,
            self.height,
            self.fps,
            q(self.model),
            self.segment_s,
            names.join(", "),
            colors.join(", ")
        )
    }
}

/// `YYYYmmdd-HHMMSS` in UTC, from the system clock (no time-zone database needed).
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(id: u64) -> Mask {
        Mask {
            source_frame_id: id,
            source_pts_us: id as i64 * 40_000,
            source_captured_at_us: 1_000_000 + id * 40_000,
            width: 8,
            height: 6,
            classes: (0..48).map(|i| ((i + id) % 4) as u8).collect(),
            confidence: vec![200; 48],
            infer_ms: 12.5,
        }
    }

    #[test]
    fn a_cut_mask_file_keeps_every_complete_record() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("masks.bin");
        let mut bytes = vec![];
        for id in 0..3 {
            write_mask(&mut bytes, &mask(id)).expect("write");
        }
        std::fs::write(&path, &bytes).expect("write");
        let (masks, cut) = read_masks(&path).expect("read");
        assert!(!cut);
        assert_eq!(masks[2].classes, mask(2).classes);
        assert_eq!((masks[2].frame_id, masks[2].pts_us), (2, 80_000));
        bytes.truncate(bytes.len() - 7);
        std::fs::write(&path, &bytes).expect("write");
        let (masks, cut) = read_masks(&path).expect("read");
        assert!(cut);
        assert_eq!(masks.len(), 2);
        bytes[MASK_HEADER_BYTES + 48] = b'X';
        std::fs::write(&path, &bytes).expect("write");
        let err = read_masks(&path).expect_err("bad magic").to_string();
        assert!(
            err.contains("masks.bin") && err.contains("byte 88"),
            "{err}"
        );
    }

    #[test]
    fn frame_rows_give_the_mask_and_its_age_or_empty_fields() {
        let m = mask(25);
        let row = FrameRow {
            frame_id: 26,
            pts_us: 1_040_000,
            captured_at_us: 2_040_000,
            segment: 1,
            mask: Some(&m),
        };
        assert_eq!(row.to_string(), "26,1040000,2040000,1,25,40.0,12.50");
        let bare = FrameRow { mask: None, ..row }.to_string();
        assert_eq!(bare, "26,1040000,2040000,1,,,");
        let csv = format!("{FRAMES_CSV_HEADER}\n{row}\n{bare}\n26,1");
        assert_eq!(count_frame_rows(&csv), 2);
    }

    #[test]
    fn utc_stamps_are_well_formed() {
        let s = utc_stamp();
        assert_eq!(s.len(), 15, "{s}");
        assert!(s.starts_with("20") && s.as_bytes()[8] == b'-', "{s}");
    }
}
