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

/// The file that marks a folder as a recording.
pub const SESSION_FILE: &str = "session.toml";

/// True when `dir` is a recording folder (it has a [`SESSION_FILE`]).
pub fn is_recording(dir: &Path) -> bool {
    dir.join(SESSION_FILE).is_file()
}

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

/// What a scan of `masks.bin` found besides its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MaskScan {
    /// Complete records read.
    pub records: u64,
    /// The file ends inside a record (a crash or power cut while writing it).
    pub cut: bool,
    /// Damaged regions skipped (a torn write, a zero-filled tail, a corrupted header).
    pub damaged_regions: u64,
    /// Bytes in them.
    pub damaged_bytes: u64,
}

/// Largest plausible record payload: a mask within the pixel limit.
fn plausible(w: u32, h: u32) -> bool {
    let n = u64::from(w) * u64::from(h);
    n > 0 && n <= foramen_core::limits::max_pixels()
}

/// Reads `masks.bin` one record at a time (memory: one record, however long the file),
/// handing each complete record to `each`. A damaged region (bad magic, an implausible
/// size, a record whose end is not followed by the next record) is skipped up to the next
/// record that reads back whole and counted, so one torn write does not hide the records
/// after it; a record cut by the end of the file is reported as `cut`.
pub fn scan_masks(path: &Path, each: impl FnMut(MaskRecord)) -> Result<MaskScan, RecordingError> {
    let io = |error| RecordingError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    scan_mask_stream(std::io::BufReader::with_capacity(1 << 16, file), len, each).map_err(io)
}

/// [`scan_masks`] over any seekable stream of `len` bytes (a file, or memory when fuzzing).
pub fn scan_mask_stream(
    mut r: impl Read + std::io::Seek,
    len: u64,
    mut each: impl FnMut(MaskRecord),
) -> std::io::Result<MaskScan> {
    use std::io::SeekFrom;
    let mut scan = MaskScan::default();
    let mut at = 0u64;
    let mut header = [0u8; MASK_HEADER_BYTES];
    while at < len {
        r.seek(SeekFrom::Start(at))?;
        let whole_header = len - at >= MASK_HEADER_BYTES as u64;
        if whole_header {
            r.read_exact(&mut header)?;
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&header[i..i + 8]);
            u64::from_le_bytes(a)
        };
        let (w, h) = (u32_at(28), u32_at(32));
        let sane = whole_header && &header[..4] == MASK_MAGIC && plausible(w, h);
        if sane {
            let end = at + MASK_HEADER_BYTES as u64 + u64::from(w) * u64::from(h);
            if end > len {
                scan.cut = true;
                break;
            }
            let mut classes = vec![0u8; (w * h) as usize];
            r.read_exact(&mut classes)?;
            let mut next = [0u8; 4];
            let followed = end == len || (r.read_exact(&mut next).is_ok() && next == *MASK_MAGIC);
            // Not followed by a record: either its size field is corrupt (a later record
            // exists out of step) or only a damaged tail follows (no record after it).
            let followed = followed || find_magic(&mut r, end, len)?.is_none();
            if followed {
                scan.records += 1;
                each(MaskRecord {
                    frame_id: u64_at(4),
                    pts_us: u64_at(12) as i64,
                    captured_at_us: u64_at(20),
                    width: w,
                    height: h,
                    infer_ms: f32::from_bits(u32_at(36)),
                    classes,
                });
                at = end;
                continue;
            }
        } else if !whole_header && len - at >= 4 && {
            let mut m = [0u8; 4];
            r.read_exact(&mut m)?;
            m == *MASK_MAGIC
        } {
            // A header cut by the end of the file.
            scan.cut = true;
            break;
        }
        let resume = find_magic(&mut r, at + 1, len)?.unwrap_or(len);
        scan.damaged_regions += 1;
        scan.damaged_bytes += resume - at;
        at = resume;
    }
    Ok(scan)
}

/// The offset of the next record magic at or after `from`.
fn find_magic(
    r: &mut (impl Read + std::io::Seek),
    from: u64,
    len: u64,
) -> std::io::Result<Option<u64>> {
    r.seek(std::io::SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut base = from;
    let mut carry = 0usize;
    while base + (carry as u64) < len {
        let n = r.read(&mut buf[carry..])?;
        if n == 0 {
            break;
        }
        let filled = carry + n;
        if let Some(i) = buf[..filled].windows(4).position(|w| w == MASK_MAGIC) {
            return Ok(Some(base + i as u64));
        }
        // Keep the last 3 bytes: a magic may straddle two reads.
        let keep = filled.min(3);
        buf.copy_within(filled - keep..filled, 0);
        base += (filled - keep) as u64;
        carry = keep;
    }
    Ok(None)
}

/// Every complete record of `masks.bin` and what the scan found (for tests and small
/// files; [`scan_masks`] streams).
pub fn read_masks(path: &Path) -> Result<(Vec<MaskRecord>, MaskScan), RecordingError> {
    let mut out = vec![];
    let scan = scan_masks(path, |r| out.push(r))?;
    Ok((out, scan))
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
        let (masks, scan) = read_masks(&path).expect("read");
        assert_eq!(
            scan,
            MaskScan {
                records: 3,
                ..MaskScan::default()
            }
        );
        assert_eq!(masks[2].classes, mask(2).classes);
        assert_eq!((masks[2].frame_id, masks[2].pts_us), (2, 80_000));
        bytes.truncate(bytes.len() - 7);
        std::fs::write(&path, &bytes).expect("write");
        let (masks, scan) = read_masks(&path).expect("read");
        assert!(scan.cut);
        assert_eq!(masks.len(), 2);
    }

    #[test]
    fn damage_is_skipped_to_the_next_good_record_and_counted() {
        // Issue 18, item 17: a zero-filled tail (a power cut) failed the whole file with
        // "bad magic"; one corrupted width hid every later record.
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("masks.bin");
        let mut bytes = vec![];
        for id in 0..120 {
            write_mask(&mut bytes, &mask(id)).expect("write");
        }
        let record = MASK_HEADER_BYTES + 48;
        // Record 3's width field corrupted; a 4 KiB zero tail after the last record.
        bytes[3 * record + 28] = 0xFF;
        bytes.extend(std::iter::repeat_n(0u8, 4096));
        std::fs::write(&path, &bytes).expect("write");
        let (masks, scan) = read_masks(&path).expect("read");
        assert_eq!(scan.records, 119, "{scan:?}");
        assert_eq!(scan.damaged_regions, 2, "{scan:?}");
        assert_eq!(scan.damaged_bytes, record as u64 + 4096, "{scan:?}");
        assert!(!scan.cut);
        assert!(masks.iter().all(|m| m.frame_id != 3));
        assert_eq!(masks.last().map(|m| m.frame_id), Some(119));
        // Streaming: the count without keeping any record.
        let mut n = 0;
        scan_masks(&path, |_| n += 1).expect("scan");
        assert_eq!(n, 119);
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
