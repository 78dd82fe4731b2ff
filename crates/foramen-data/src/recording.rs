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
    "frame,pts_us,captured_at_us,segment,mask_frame,mask_age_ms,infer_ms,mask_conf";

/// Columns of a `frames.csv` row.
pub const FRAMES_CSV_COLUMNS: usize = 8;

/// Columns of a row written before `mask_conf` existed (still read).
pub const FRAMES_CSV_COLUMNS_V1: usize = 7;

/// True for a row of `n` fields: this version's or the first one's.
pub fn frame_row_fields_ok(n: usize) -> bool {
    n == FRAMES_CSV_COLUMNS || n == FRAMES_CSV_COLUMNS_V1
}

/// `mask_conf` as written: four decimals, so a value cut by a crash has another length
/// and is read as absent rather than as a wrong number.
const CONF_CHARS: usize = 6;

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
    /// `session.toml` is not a session header.
    #[error("{}: {reason}", path.display())]
    Session {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
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
pub fn scan_masks(
    path: &Path,
    mut each: impl FnMut(MaskRecord),
) -> Result<MaskScan, RecordingError> {
    let mut stream = open_masks(path)?;
    while let Some(m) = stream.next_record()? {
        each(m);
    }
    Ok(stream.scan())
}

/// [`scan_masks`] over any seekable stream of `len` bytes (a file, or memory when fuzzing).
pub fn scan_mask_stream(
    r: impl Read + std::io::Seek,
    len: u64,
    mut each: impl FnMut(MaskRecord),
) -> std::io::Result<MaskScan> {
    let mut stream = MaskStream::new(r, len);
    while let Some(m) = stream.next_stream_record()? {
        each(m);
    }
    Ok(stream.scan())
}

/// Opens `masks.bin` as a [`MaskStream`] that the caller pulls records from (to walk it
/// beside `frames.csv`, which refers to its records in the same order).
pub fn open_masks(path: &Path) -> Result<MaskStream<std::io::BufReader<File>>, RecordingError> {
    let io = |error| RecordingError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut stream = MaskStream::new(std::io::BufReader::with_capacity(1 << 16, file), len);
    stream.path = path.to_path_buf();
    Ok(stream)
}

/// `masks.bin` read one complete record at a time on the caller's demand, with the
/// damage rules of [`scan_masks`] (which drives it); memory: one record.
pub struct MaskStream<R> {
    r: R,
    len: u64,
    /// Offset of the next record to try.
    at: u64,
    scan: MaskScan,
    /// The file, for errors (empty for memory).
    path: PathBuf,
}

impl<R: Read + std::io::Seek> MaskStream<R> {
    /// A stream over `len` bytes of `r`.
    pub fn new(r: R, len: u64) -> Self {
        Self {
            r,
            len,
            at: 0,
            scan: MaskScan::default(),
            path: PathBuf::new(),
        }
    }

    /// What the stream has found so far besides its records (all of it once
    /// [`Self::next_record`] has returned `None`).
    pub fn scan(&self) -> MaskScan {
        self.scan
    }

    /// The next complete record, `None` at the end of the file (or at a record cut by
    /// it); damaged regions on the way are skipped and counted.
    pub fn next_record(&mut self) -> Result<Option<MaskRecord>, RecordingError> {
        self.next_stream_record()
            .map_err(|error| RecordingError::Io {
                path: self.path.clone(),
                error,
            })
    }

    fn next_stream_record(&mut self) -> std::io::Result<Option<MaskRecord>> {
        use std::io::SeekFrom;
        let (r, len) = (&mut self.r, self.len);
        let mut header = [0u8; MASK_HEADER_BYTES];
        while self.at < len {
            let at = self.at;
            r.seek(SeekFrom::Start(at))?;
            let whole_header = len - at >= MASK_HEADER_BYTES as u64;
            if whole_header {
                r.read_exact(&mut header)?;
            }
            let u32_at = |i: usize| {
                u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]])
            };
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
                    self.scan.cut = true;
                    self.at = len;
                    break;
                }
                let mut classes = vec![0u8; (w * h) as usize];
                r.read_exact(&mut classes)?;
                let mut next = [0u8; 4];
                let followed =
                    end == len || (r.read_exact(&mut next).is_ok() && next == *MASK_MAGIC);
                // Not followed by a record: either its size field is corrupt (a later
                // record exists out of step) or only a damaged tail follows (no record
                // after it).
                let followed = followed || find_magic(r, end, len)?.is_none();
                if followed {
                    self.scan.records += 1;
                    self.at = end;
                    return Ok(Some(MaskRecord {
                        frame_id: u64_at(4),
                        pts_us: u64_at(12) as i64,
                        captured_at_us: u64_at(20),
                        width: w,
                        height: h,
                        infer_ms: f32::from_bits(u32_at(36)),
                        classes,
                    }));
                }
            } else if !whole_header && len - at >= 4 && {
                let mut m = [0u8; 4];
                r.read_exact(&mut m)?;
                m == *MASK_MAGIC
            } {
                // A header cut by the end of the file.
                self.scan.cut = true;
                self.at = len;
                break;
            }
            let resume = find_magic(r, at + 1, len)?.unwrap_or(len);
            self.scan.damaged_regions += 1;
            self.scan.damaged_bytes += resume - at;
            self.at = resume;
        }
        Ok(None)
    }
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
    /// Its [`Mask::drawn_confidence`] (computed once per mask by the writer).
    pub mask_conf: Option<f64>,
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
                "{},{:.1},{:.2},",
                m.source_frame_id,
                self.captured_at_us.saturating_sub(m.source_captured_at_us) as f64 / 1e3,
                m.infer_ms
            )?,
            None => write!(f, ",,,")?,
        }
        match self.mask.and(self.mask_conf) {
            Some(c) => write!(f, "{:.4}", c.clamp(0.0, 1.0)),
            None => Ok(()),
        }
    }
}

/// Counts the complete rows of a `frames.csv` text (a cut last row is not counted).
pub fn count_frame_rows(csv: &str) -> usize {
    csv.lines()
        .skip(1)
        .filter(|l| frame_row_fields_ok(l.split(',').count()))
        .count()
}

/// One `frames.csv` row as read back (the writing side is [`FrameRow`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameRecord {
    /// Frame id.
    pub frame_id: u64,
    /// Presentation time.
    pub pts_us: i64,
    /// Capture time.
    pub captured_at_us: u64,
    /// Video segment holding the frame (`video-<segment>.mp4`).
    pub segment: u64,
    /// Source frame id of the mask current at capture (its record in `masks.bin`).
    pub mask_frame: Option<u64>,
    /// That mask's age at capture, ms.
    pub mask_age_ms: Option<f64>,
    /// Its inference time, ms.
    pub infer_ms: Option<f64>,
    /// Its mean confidence over the pixels drawn, 0 to 1 (absent in recordings made
    /// before the column existed, for masks that draw nothing, or cut by a crash).
    pub mask_conf: Option<f64>,
}

impl FrameRecord {
    /// Parses one line; `None` for the header or a row cut by a crash or damaged.
    pub fn parse(line: &str) -> Option<Self> {
        fn opt<T: std::str::FromStr>(s: &str) -> Option<Option<T>> {
            if s.is_empty() {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        }
        let f: Vec<&str> = line.trim_end().split(',').collect();
        if !frame_row_fields_ok(f.len()) {
            return None;
        }
        Some(Self {
            frame_id: f[0].parse().ok()?,
            pts_us: f[1].parse().ok()?,
            captured_at_us: f[2].parse().ok()?,
            segment: f[3].parse().ok()?,
            mask_frame: opt(f[4])?,
            mask_age_ms: opt(f[5])?,
            infer_ms: opt(f[6])?,
            mask_conf: parse_conf(f.get(7).copied()),
        })
    }
}

/// A `mask_conf` field: a number in 0..=1 written with four decimals, else absent.
pub fn parse_conf(field: Option<&str>) -> Option<f64> {
    field
        .filter(|s| s.len() == CONF_CHARS)
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|c| (0.0..=1.0).contains(c))
}

/// The complete rows of `frames.csv`, streamed in file order (memory: one line); the
/// header and cut or damaged rows are skipped, so row `i` is the `i`-th complete row.
pub struct FrameRows {
    path: PathBuf,
    lines: std::io::Split<std::io::BufReader<File>>,
}

impl FrameRows {
    /// Opens `frames.csv`.
    pub fn open(path: &Path) -> Result<Self, RecordingError> {
        let file = File::open(path).map_err(|error| RecordingError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            lines: std::io::BufRead::split(std::io::BufReader::new(file), b'\n'),
        })
    }
}

impl Iterator for FrameRows {
    type Item = Result<FrameRecord, RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        for line in self.lines.by_ref() {
            match line {
                Ok(bytes) => {
                    if let Some(row) = FrameRecord::parse(&String::from_utf8_lossy(&bytes)) {
                        return Some(Ok(row));
                    }
                }
                Err(error) => {
                    return Some(Err(RecordingError::Io {
                        path: self.path.clone(),
                        error,
                    }));
                }
            }
        }
        None
    }
}

/// Reads what reports and clips use of `DIR/session.toml` ([`SessionInfo`]: model, rate,
/// classes, colours; never the source or the start time).
///
/// [`SessionInfo`]: crate::timeline::SessionInfo
pub fn read_session_info(dir: &Path) -> Result<crate::timeline::SessionInfo, RecordingError> {
    let path = dir.join("session.toml");
    let text = std::fs::read_to_string(&path).map_err(|error| RecordingError::Io {
        path: path.clone(),
        error,
    })?;
    toml::from_str(&text).map_err(|e| RecordingError::Session {
        path,
        reason: e.to_string(),
    })
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
    /// The model file's size and CRC-32, once the recorder has read it.
    pub model_fingerprint: Option<&'a str>,
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
        ) + &self
            .model_fingerprint
            .map_or_else(String::new, |f| format!("model_fingerprint = {}\n", q(f)))
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
mod tests;
