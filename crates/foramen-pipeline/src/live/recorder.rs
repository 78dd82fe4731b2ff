//! Crash-safe recording of a procedure: raw video in short segments, every mask and a
//! per-frame telemetry row, all keyed by frame id.
//!
//! Layout of one recording folder:
//! - `session.toml`: source, model, classes, start time, segment length;
//! - `video-00000.mp4`, `video-00001.mp4`, ...: raw (not annotated) video, a new file
//!   every `segment_s` seconds. An MP4 is readable only once closed, so a kill -9 or a
//!   power cut loses the open segment and nothing before it;
//! - `frames.csv`: one row per captured frame (id, timestamps, segment, the mask current
//!   when it was captured), appended and flushed per row;
//! - `masks.bin`: every new mask, appended as a self-delimiting record and flushed; a
//!   cut leaves at most one partial record, which the reader reports and skips.
//!
//! The formats themselves are in `foramen_data::recording`.
//!
//! Segment boundaries also `fsync` the CSV and the mask file, so a power cut loses at
//! most the last segment's worth of rows.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use foramen_capture::{SourceInfo, VideoEncoder};
use foramen_core::config::RecordingConfig;
use foramen_core::{ClassSet, Frame, Mask, fault, lock};
use foramen_data::recording::{FRAMES_CSV_HEADER, FrameRow, SessionHeader, utc_stamp, write_mask};

use crate::{PipelineError, Result};

/// What the recorder has done, for the HUD and the end-of-session summary.
#[derive(Clone, Debug, Default)]
pub struct RecorderState {
    /// Recording folder.
    pub dir: PathBuf,
    /// Frames written to video.
    pub frames: u64,
    /// Masks written.
    pub masks: u64,
    /// Frames not recorded: the recorder was a whole backlog behind (the live video is
    /// never held back for it), or a write had failed. They show as missing ids in
    /// `frames.csv`.
    pub lost: u64,
    /// Segments opened.
    pub segments: u64,
    /// The first write error; recording stops at it, the video on screen does not.
    pub error: Option<String>,
    /// True once the recorder has closed its files.
    pub finished: bool,
}

enum Item {
    Frame(Arc<Frame>, Option<Arc<Mask>>),
    Stop,
}

/// Where the recorder learns the model's classes when the recording starts before the
/// model has loaded: asked at each frame until it answers.
pub type ClassSource = Arc<dyn Fn() -> Option<ClassSet> + Send + Sync>;

/// What `session.toml` says besides the classes.
struct Header {
    stamp: String,
    source: String,
    width: u32,
    height: u32,
    fps: f64,
    model: String,
    segment_s: f64,
    /// The model's classes; none while they are not known.
    classes: ClassSet,
    /// The model file's size and CRC-32, once read.
    fingerprint: Option<String>,
}

impl Header {
    fn toml(&self) -> String {
        SessionHeader {
            started_utc: &self.stamp,
            source: &self.source,
            width: self.width,
            height: self.height,
            fps: self.fps,
            model: &self.model,
            segment_s: self.segment_s,
            classes: &self.classes,
            model_fingerprint: self.fingerprint.as_deref(),
        }
        .to_toml()
    }
}

/// `N bytes, CRC-32 xxxxxxxx` of the file at `path` (read in pieces: a model is MBs).
fn fingerprint(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let mut file = File::open(path)?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(format!("{bytes} bytes, CRC-32 {:08x}", crc.finalize()))
}

/// The running recorder. Dropping it stops it (the thread closes the open segment).
pub struct Recorder {
    tx: Sender<Item>,
    state: Arc<Mutex<RecorderState>>,
    stop: Arc<AtomicBool>,
    /// A stop was asked for: frames pushed after it are counted as lost.
    stopping: AtomicBool,
}

impl Recorder {
    /// Creates `root/<UTC time>/`, writes `session.toml` and starts thread `recorder`.
    /// Errors here name the file; later write errors go to [`RecorderState::error`].
    /// `classes` are the model's; when the model has not loaded yet, `None` and `later`,
    /// which the thread asks at each frame: `session.toml` names no classes until it
    /// answers, then is rewritten with them (never a class set the model does not have).
    pub fn start(
        root: &Path,
        info: &SourceInfo,
        classes: Option<&ClassSet>,
        later: Option<ClassSource>,
        model: &str,
        cfg: &RecordingConfig,
    ) -> Result<Self> {
        let stamp = utc_stamp();
        let mut dir = root.join(&stamp);
        let mut n = 1;
        while dir.exists() {
            dir = root.join(format!("{stamp}-{n}"));
            n += 1;
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| PipelineError::Record { path, error }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let header = Header {
            stamp,
            source: info.name.clone(),
            width: info.width,
            height: info.height,
            fps: info.fps,
            model: model.to_string(),
            segment_s: cfg.segment_s,
            classes: classes.cloned().unwrap_or(ClassSet {
                classes: vec![],
                ignore_index: 255,
            }),
            fingerprint: None,
        };
        let session_path = dir.join("session.toml");
        std::fs::write(&session_path, header.toml()).map_err(io(&session_path))?;
        let csv_path = dir.join("frames.csv");
        let mut csv = BufWriter::new(File::create(&csv_path).map_err(io(&csv_path))?);
        writeln!(csv, "{FRAMES_CSV_HEADER}")
            .and_then(|_| csv.flush())
            .map_err(io(&csv_path))?;
        let masks_path = dir.join("masks.bin");
        let masks = BufWriter::new(File::create(&masks_path).map_err(io(&masks_path))?);

        let (tx, rx) = bounded(cfg.max_backlog_frames.max(1));
        let state = Arc::new(Mutex::new(RecorderState {
            dir: dir.clone(),
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            dir,
            fps: info.fps,
            segment_us: (cfg.segment_s * 1e6) as i64,
            csv,
            masks,
            encoder: None,
            segment: 0,
            segment_start_pts: 0,
            size: (0, 0),
            last_mask: None,
            last_conf: None,
            header,
            later: if classes.is_none() { later } else { None },
        };
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || writer.run(&rx, &st, &sp))
            .map_err(io(root))?;
        Ok(Self {
            tx,
            state,
            stop,
            stopping: AtomicBool::new(false),
        })
    }

    /// Queues a frame and the mask current at its capture. Never blocks: when the
    /// recorder is a full backlog behind, the frame is counted as lost instead.
    pub fn push(&self, frame: Arc<Frame>, mask: Option<Arc<Mask>>) {
        // After a stop the writer takes nothing more: say so instead of queueing it.
        if self.stopping.load(Ordering::Relaxed) {
            lock(&self.state).lost += 1;
            return;
        }
        match self.tx.try_send(Item::Frame(frame, mask)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                lock(&self.state).lost += 1;
            }
        }
    }

    /// The recorder's counters.
    pub fn state(&self) -> RecorderState {
        lock(&self.state).clone()
    }

    /// Asks the thread to finish what is queued and close its files; does not wait.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        if self.tx.try_send(Item::Stop).is_err() {
            self.stop.store(true, Ordering::Relaxed);
        }
    }

    /// Stops and waits up to `timeout` for the files to be closed (for shutdown paths
    /// that are not the UI thread).
    pub fn stop_and_wait(&self, timeout: std::time::Duration) -> RecorderState {
        self.stop();
        let t = std::time::Instant::now();
        while !lock(&self.state).finished && t.elapsed() < timeout {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.state()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Writer {
    dir: PathBuf,
    fps: f64,
    segment_us: i64,
    csv: BufWriter<File>,
    masks: BufWriter<File>,
    encoder: Option<VideoEncoder>,
    segment: u64,
    segment_start_pts: i64,
    size: (u32, u32),
    last_mask: Option<u64>,
    /// The last mask's mean confidence over the pixels it draws.
    last_conf: Option<f64>,
    header: Header,
    /// Asked at each frame until it gives the model's classes (see [`Recorder::start`]).
    later: Option<ClassSource>,
}

impl Writer {
    fn run(mut self, rx: &Receiver<Item>, state: &Mutex<RecorderState>, stop: &AtomicBool) {
        let mut failed = false;
        while let Ok(item) = rx.recv() {
            let Item::Frame(frame, mask) = item else {
                break;
            };
            if failed {
                lock(state).lost += 1;
                continue;
            }
            match self.write(&frame, mask.as_deref(), state) {
                Ok(()) => lock(state).frames += 1,
                Err(e) => {
                    tracing::error!("recording {}: {e}", self.dir.display());
                    let mut st = lock(state);
                    st.error = Some(e);
                    st.lost += 1;
                    failed = true;
                }
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        if let Err(e) = self.close_segment() {
            lock(state).error.get_or_insert(e);
        }
        lock(state).finished = true;
    }

    /// Completes `session.toml` off the capture path: the model file's fingerprint at
    /// the first frame (which version of the model ran), the model's classes once they
    /// are known. Rewritten beside it and renamed over it, so a crash leaves the old or
    /// the new file whole; a failure is logged and the recording goes on.
    fn complete_header(&mut self) {
        let mut changed = false;
        if self.header.fingerprint.is_none() {
            let fp = fingerprint(Path::new(&self.header.model))
                .unwrap_or_else(|e| format!("not readable when the recording started: {e}"));
            self.header.fingerprint = Some(fp);
            changed = true;
        }
        if let Some(classes) = self.later.as_ref().and_then(|f| f()) {
            self.later = None;
            self.header.classes = classes;
            changed = true;
        }
        if !changed {
            return;
        }
        let path = self.dir.join("session.toml");
        let tmp = self.dir.join("session.toml.new");
        let written = std::fs::write(&tmp, self.header.toml())
            .and_then(|()| File::open(&tmp)?.sync_all())
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::error!("{}: header not completed: {e}", path.display());
        }
    }

    fn write(
        &mut self,
        frame: &Frame,
        mask: Option<&Mask>,
        state: &Mutex<RecorderState>,
    ) -> Result<(), String> {
        fault::inject(fault::Site::Recorder, frame.id);
        if self.later.is_some() || self.header.fingerprint.is_none() {
            self.complete_header();
        }
        let size = (frame.width, frame.height);
        let due = frame.pts_us - self.segment_start_pts >= self.segment_us;
        if self.encoder.is_none() || due || size != self.size {
            if self.encoder.is_some() {
                self.close_segment()?;
                self.segment += 1;
            }
            let path = self.dir.join(format!("video-{:05}.mp4", self.segment));
            self.encoder = Some(
                VideoEncoder::create(&path, frame.width, frame.height, self.fps)
                    .map_err(|e| e.to_string())?,
            );
            self.segment_start_pts = frame.pts_us;
            self.size = size;
            lock(state).segments += 1;
        }
        if let Some(enc) = self.encoder.as_mut() {
            enc.write_rgb(&frame.rgb).map_err(|e| e.to_string())?;
        }
        let masks_err =
            |e: std::io::Error| format!("{}: {e}", self.dir.join("masks.bin").display());
        if let Some(m) = mask
            && self.last_mask != Some(m.source_frame_id)
        {
            write_mask(&mut self.masks, m)
                .and_then(|_| self.masks.flush())
                .map_err(masks_err)?;
            self.last_mask = Some(m.source_frame_id);
            // Once per mask, not per row: a pass over its pixels.
            self.last_conf = m.drawn_confidence();
            lock(state).masks += 1;
        }
        let row = FrameRow {
            frame_id: frame.id,
            pts_us: frame.pts_us,
            captured_at_us: frame.captured_at_us,
            segment: self.segment,
            mask,
            mask_conf: self.last_conf,
        };
        writeln!(self.csv, "{row}")
            .and_then(|_| self.csv.flush())
            .map_err(|e| format!("{}: {e}", self.dir.join("frames.csv").display()))
    }

    fn close_segment(&mut self) -> Result<(), String> {
        let result = match self.encoder.take() {
            Some(enc) => enc.finish().map_err(|e| e.to_string()),
            None => Ok(()),
        };
        // The rows of a closed segment must survive a power cut, not only a crash.
        let _ = self.csv.get_ref().sync_data();
        let _ = self.masks.get_ref().sync_data();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(id: u64, fps: f64) -> Arc<Frame> {
        let mut f = Frame::new(
            id,
            (id as f64 * 1e6 / fps) as i64,
            64,
            48,
            vec![(id * 3 % 255) as u8; 64 * 48 * 3],
        )
        .expect("frame");
        f.captured_at_us = 1_000_000 + id * 40_000;
        Arc::new(f)
    }

    fn mask(of: &Frame) -> Arc<Mask> {
        Arc::new(Mask {
            source_frame_id: of.id,
            source_pts_us: of.pts_us,
            source_captured_at_us: of.captured_at_us,
            width: 8,
            height: 6,
            classes: (0..48).map(|i| (i % 4) as u8).collect(),
            confidence: vec![200; 48],
            infer_ms: 12.5,
        })
    }

    fn info() -> SourceInfo {
        SourceInfo {
            name: "synthetic:1".into(),
            width: 64,
            height: 48,
            fps: 25.0,
            frame_count: None,
            live: true,
        }
    }

    #[test]
    fn segments_masks_and_rows_stay_in_sync() {
        let root = tempfile::tempdir().expect("tmp");
        let cfg = RecordingConfig {
            dir: root.path().into(),
            segment_s: 1.0,
            max_backlog_frames: 1000,
            ..Default::default()
        };
        let rec = Recorder::start(
            root.path(),
            &info(),
            Some(&ClassSet::lumbar()),
            None,
            "m.onnx",
            &cfg,
        )
        .expect("start");
        let mut current = None;
        for id in 0..60 {
            let f = frame(id, 25.0);
            if id % 5 == 0 {
                current = Some(mask(&f));
            }
            rec.push(f, current.clone());
        }
        let st = rec.stop_and_wait(Duration::from_secs(60));
        assert!(st.finished && st.error.is_none(), "{st:?}");
        assert_eq!((st.frames, st.masks, st.lost), (60, 12, 0));
        // 60 frames at 25 fps in 1 s segments: 3 segments (25 + 25 + 10).
        assert_eq!(st.segments, 3);
        let dir = st.dir;
        for s in 0..3 {
            let p = dir.join(format!("video-{s:05}.mp4"));
            assert!(
                std::fs::metadata(&p).map(|m| m.len() > 0).unwrap_or(false),
                "{p:?}"
            );
        }
        let csv = std::fs::read_to_string(dir.join("frames.csv")).expect("csv");
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        assert_eq!(rows.len(), 60);
        assert!(
            rows[26].starts_with("26,1040000,2040000,1,25,40.0,12.50"),
            "{}",
            rows[26]
        );
        assert!(
            rows[27].starts_with("27,1080000,2080000,1,25,80.0,"),
            "{}",
            rows[27]
        );
        let (masks, scan) =
            foramen_data::recording::read_masks(&dir.join("masks.bin")).expect("masks");
        assert!(!scan.cut && scan.damaged_regions == 0, "{scan:?}");
        assert_eq!(
            masks.iter().map(|m| m.frame_id).collect::<Vec<_>>(),
            (0..60).step_by(5).collect::<Vec<_>>()
        );
        assert_eq!(masks[3].classes, mask(&frame(15, 25.0)).classes);
        let session = std::fs::read_to_string(dir.join("session.toml")).expect("toml");
        let parsed: toml::Table = session.parse().expect("valid TOML");
        assert_eq!(parsed["classes"].as_array().map(|a| a.len()), Some(4));
    }

    #[test]
    fn a_recording_started_before_the_model_loaded_names_its_classes_once_known() {
        let root = tempfile::tempdir().expect("tmp");
        let cfg = RecordingConfig {
            dir: root.path().into(),
            max_backlog_frames: 1000,
            ..Default::default()
        };
        let session = |later: ClassSource| {
            let rec = Recorder::start(root.path(), &info(), None, Some(later), "v.onnx", &cfg)
                .expect("start");
            let dir = rec.state().dir;
            let before = std::fs::read_to_string(dir.join("session.toml")).expect("toml");
            for id in 0..10 {
                rec.push(frame(id, 25.0), None);
            }
            assert!(rec.stop_and_wait(Duration::from_secs(30)).finished);
            let after = std::fs::read_to_string(dir.join("session.toml")).expect("toml");
            (before, after, dir)
        };
        // The model loads at the fourth frame: its classes, not the lumbar set.
        let asked = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let n = asked.clone();
        let vocal = ClassSet::new(
            ["void", "vocal folds"]
                .iter()
                .enumerate()
                .map(|(i, name)| foramen_core::ClassInfo {
                    index: i as u8,
                    name: (*name).into(),
                    color: [9, 9, 9],
                })
                .collect(),
            255,
        )
        .expect("classes");
        let later: ClassSource =
            Arc::new(move || (n.fetch_add(1, Ordering::Relaxed) >= 3).then(|| vocal.clone()));
        let (before, after, dir) = session(later);
        assert!(before.contains("classes = []"), "{before}");
        assert!(
            after.contains("classes = [\"void\", \"vocal folds\"]"),
            "{after}"
        );
        assert!(!after.contains("bone"), "{after}");
        // The model file (here none) is fingerprinted at the first frame.
        assert!(
            after.contains("model_fingerprint = \"not readable when the recording started"),
            "{after}"
        );
        assert_eq!(asked.load(Ordering::Relaxed), 4, "asked until it answered");
        assert!(!dir.join("session.toml.new").exists());
        // A model that never loads: no classes named, ever.
        let (_, after, _) = session(Arc::new(|| None));
        assert!(after.contains("classes = []"), "{after}");
    }
}
