//! The recording check: `[recording].dir` exists, is a folder, takes a file (created,
//! written, synced to disk and deleted again), and has room for
//! `[recording].min_free_minutes` minutes at the estimated data rate.
//!
//! A missing folder fails rather than being created: the usual reason is an external
//! disk that is not mounted, and creating the folder would then record onto the system
//! disk. Nothing is left behind: the probe file is deleted whatever happens.
//!
//! The data rate is estimated from what the recorder writes per frame
//! ([`DataRate::bytes_per_frame`]): the video at [`VIDEO_BITS_PER_PIXEL`], one mask record
//! (the model's output size, one byte per pixel, plus its header: at most one mask per
//! frame, so this is an upper bound) and one `frames.csv` row.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use foramen_core::config::RecordingConfig;
use foramen_data::recording::MASK_HEADER_BYTES;

use super::{CheckItem, within};

/// Frame rate the estimate assumes when neither the capture nor `[capture].fps` gives one.
pub const FALLBACK_FPS: f64 = 60.0;

/// Bits per pixel the recorded video is estimated at. Generous on purpose: 0.2 bits per
/// pixel is 12.4 Mbit/s at 1080p and 30 fps, above broadcast H.264 and above what the
/// recorder's encoders (OpenCV's H.264 or MPEG-4 at their default quality) wrote in our
/// runs (synthetic 1280x720: about 0.05 bits per pixel); endoscopic video with smoke
/// and fast motion compresses worse than synthetic scenes.
pub const VIDEO_BITS_PER_PIXEL: f64 = 0.2;

/// Bytes of one `frames.csv` row, rounded up (measured: 38 bytes a row).
pub const CSV_ROW_BYTES: f64 = 64.0;

/// Size of the probe file written to the folder.
const PROBE_BYTES: usize = 4096;

/// What a recording of the session writes per minute depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct DataRate {
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second.
    pub fps: f64,
    /// The model's mask size; `None` (the model did not run): as large as the frame.
    pub mask_size: Option<(u32, u32)>,
}

impl DataRate {
    /// Estimated bytes written per frame: video, one mask record, one CSV row.
    pub fn bytes_per_frame(&self) -> f64 {
        let pixels = |w: u32, h: u32| f64::from(w) * f64::from(h);
        let video = pixels(self.width, self.height) * VIDEO_BITS_PER_PIXEL / 8.0;
        let (mw, mh) = self.mask_size.unwrap_or((self.width, self.height));
        let mask = pixels(mw, mh) + MASK_HEADER_BYTES as f64;
        video + mask + CSV_ROW_BYTES
    }

    /// Estimated bytes written per minute.
    pub fn bytes_per_minute(&self) -> f64 {
        self.bytes_per_frame() * self.fps * 60.0
    }
}

/// Why the recording folder cannot take a recording.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    /// The folder does not exist.
    #[error("recording folder {} does not exist (create it, or mount its disk)", path.display())]
    Missing {
        /// The folder.
        path: PathBuf,
    },
    /// The path is something other than a folder.
    #[error("recording folder {} is not a folder", path.display())]
    NotAFolder {
        /// The path.
        path: PathBuf,
    },
    /// A file could not be created, written, synced or deleted in it.
    #[error("recording folder {} is not writable: {error}", path.display())]
    NotWritable {
        /// The folder.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// The file system's free space could not be read.
    #[error("cannot read the free space of recording folder {}: {error}", path.display())]
    FreeSpace {
        /// The folder.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
}

/// Checks the folder within `limit` and judges its free space against
/// `rec.min_free_minutes` at `rate`.
pub fn check_recording(rec: &RecordingConfig, rate: &DataRate, limit: Duration) -> CheckItem {
    let dir = shown(&rec.dir);
    let owned = dir.clone();
    match within("recording", limit, move || probe(&owned)) {
        Err(e) => CheckItem::fail(
            "recording",
            format!("recording folder {}: {e}", dir.display()),
        ),
        Ok(Err(e)) => CheckItem::fail("recording", e.to_string()),
        Ok(Ok(free)) => judge_space(&dir, free, rate, rec.min_free_minutes),
    }
}

/// The folder as shown: absolute, so that a relative `recordings` says where it is.
fn shown(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The folder's bytes available to this user, after a probe file was written there.
pub fn probe(dir: &Path) -> Result<u64, FolderError> {
    let path = dir.to_path_buf();
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FolderError::Missing { path });
        }
        Err(error) => return Err(FolderError::NotWritable { path, error }),
    };
    if !meta.is_dir() {
        return Err(FolderError::NotAFolder { path });
    }
    if let Err(error) = write_probe(dir) {
        return Err(FolderError::NotWritable { path, error });
    }
    free_bytes(dir).map_err(|error| FolderError::FreeSpace { path, error })
}

/// Creates a new file in `dir`, writes and syncs it, and deletes it (also when the write
/// failed).
fn write_probe(dir: &Path) -> std::io::Result<()> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = dir.join(format!(
        ".foramen-check-{}-{nanos}.probe",
        std::process::id()
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let written = file
        .write_all(&[0u8; PROBE_BYTES])
        .and_then(|()| file.sync_all());
    drop(file);
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// Bytes available to an unprivileged user on `dir`'s file system.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir).map_err(std::io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Passes when `free` bytes last at least `need_minutes` at `rate`.
pub fn judge_space(dir: &Path, free: u64, rate: &DataRate, need_minutes: u32) -> CheckItem {
    let per_minute = rate.bytes_per_minute().max(1.0);
    let minutes = free as f64 / per_minute;
    let detail = format!(
        "recording folder {} writable, {:.1} GB free = {:.0} min at ~{:.0} MB/min \
         (estimated for {}x{} at {:.1} fps; need {need_minutes} min)",
        dir.display(),
        free as f64 / 1e9,
        minutes.floor(),
        per_minute / 1e6,
        rate.width,
        rate.height,
        rate.fps
    );
    if minutes >= f64::from(need_minutes) {
        CheckItem::pass("recording", detail)
    } else {
        CheckItem::fail("recording", format!("not enough room: {detail}"))
    }
}
