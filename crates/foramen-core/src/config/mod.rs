//! Runtime configuration, read from TOML; every value is checked where it is read so
//! that an error names the key and the line.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

/// Errors reading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// TOML syntax, a wrong type, an unknown key or an out-of-range value.
    #[error("config {path}: {message}")]
    Parse {
        /// The config file (or `<string>`).
        path: PathBuf,
        /// toml's message, which names the key, line and column.
        message: String,
    },
}

/// Where inference runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProvider {
    /// ONNX Runtime's CPU provider (always available).
    #[default]
    Cpu,
    /// CUDA, when the loaded ONNX Runtime library has it; falls back to CPU otherwise.
    Cuda,
    /// TensorRT, when available; falls back to CUDA, then CPU.
    Tensorrt,
    /// WebGPU (any vendor's GPU through Vulkan, Metal or D3D12), ONNX Runtime's plugin
    /// provider `libonnxruntime_providers_webgpu.so` (`[model] webgpu_library`, else the
    /// `onnxruntime-ep-webgpu` package in the venv); falls back to CPU, saying why.
    Webgpu,
}

impl ExecutionProvider {
    /// The name in the settings file and on screen: `cpu`, `cuda`, `tensorrt`, `webgpu`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
            Self::Tensorrt => "tensorrt",
            Self::Webgpu => "webgpu",
        }
    }
}

/// `[model]`: which network and how to run it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// ONNX file; `None` means the bundled lumbar model.
    pub path: Option<PathBuf>,
    /// Execution provider.
    pub execution_provider: ExecutionProvider,
    /// ONNX Runtime intra-op threads; 0 lets Foramen choose (all cores).
    pub intra_threads: usize,
    /// Let ONNX Runtime's threads spin while waiting for work. Unset: on for the
    /// one-stage batch commands (`segment`, `eval`), off in pipelines (`replay`,
    /// `bench`) and the live window, where spinning cores would be taken from video
    /// decoding, compositing, encoding and display.
    pub allow_spinning: Option<bool>,
    /// Refuse to run when the execution provider asked for cannot be used, instead of
    /// falling back to the CPU (and saying so): for a site that must not run on the CPU.
    pub require_provider: bool,
    /// The WebGPU plugin provider's library (`execution_provider = "webgpu"`); unset:
    /// beside the ONNX Runtime library in use, else `onnxruntime_ep_webgpu/` beside its
    /// package.
    pub webgpu_library: Option<PathBuf>,
    /// CUDA graphs (`execution_provider = "cuda"`): the model's kernels captured once and
    /// replayed; ONNX Runtime allows it only with inputs and outputs bound to fixed
    /// device memory, so it serves `foramen-probe --cuda-graph`'s bound runs.
    pub cuda_graph: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: None,
            execution_provider: ExecutionProvider::Cpu,
            intra_threads: 0,
            allow_spinning: None,
            require_provider: false,
            webgpu_library: None,
            cuda_graph: false,
        }
    }
}

/// `[inference]`: the overlay's timing contract.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InferenceConfig {
    /// Per-frame inference budget; slower frames are reported.
    #[serde(deserialize_with = "positive_ms")]
    pub latency_budget_ms: f64,
    /// A mask whose source frame is older than this is not drawn.
    #[serde(deserialize_with = "positive_ms")]
    pub max_mask_age_ms: f64,
    /// Temporal filter: weight of the past in the running average of the class
    /// probabilities, per mask (`avg = alpha * avg + (1 - alpha) * new`); 0 turns the
    /// averaging off, below 1.
    #[serde(deserialize_with = "below_one")]
    pub temporal_alpha: f32,
    /// Temporal filter: a pixel changes its shown class only when another class's averaged
    /// probability beats the shown one's by this much (0 to 1; 0 = plain argmax).
    #[serde(deserialize_with = "unit_interval")]
    pub temporal_hysteresis: f32,
    /// Temporal filter, per pixel: the past's weight and the hysteresis margin fall
    /// linearly with how much the pixel's probabilities changed (half their L1 distance to
    /// the average), to 0 at this change, so moving tissue is followed at once and only
    /// the uncertain flicker is smoothed (0 to 1; 0 = no gate).
    #[serde(deserialize_with = "unit_interval")]
    pub temporal_motion: f32,
    /// Pixels whose largest averaged probability is below this are not drawn (0 to 1;
    /// 0 draws every pixel).
    #[serde(deserialize_with = "unit_interval")]
    pub min_confidence: f32,
    /// The running average restarts (scene cut, large motion) when the probabilities
    /// change by more than this against it: half the L1 distance per pixel, averaged
    /// (0 < threshold <= 1; 1 restarts only on seeks, gaps and reloads).
    #[serde(deserialize_with = "scene_cut")]
    pub scene_cut_threshold: f32,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            latency_budget_ms: 80.0,
            max_mask_age_ms: 250.0,
            // Chosen on the vocalfolds training sequences (README, "Temporal filter").
            temporal_alpha: 0.3,
            temporal_hysteresis: 0.2,
            temporal_motion: 1.0,
            min_confidence: 0.3,
            scene_cut_threshold: 0.7,
        }
    }
}

/// How masks are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OverlayMode {
    /// Translucent filled regions.
    Fill,
    /// Region outlines only.
    Contour,
    /// Fill plus a solid outline.
    #[default]
    Both,
}

/// `[overlay]`: blending.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverlayConfig {
    /// Fill opacity, 0 (invisible) to 1 (opaque).
    #[serde(deserialize_with = "unit_interval")]
    pub opacity: f32,
    /// Fill, contour or both.
    pub mode: OverlayMode,
    /// Contour thickness in pixels of a 1080-line display (the window scales it with its
    /// height; snapshots and recordings use it in frame pixels), 1 to 64.
    #[serde(deserialize_with = "contour_width")]
    pub contour_px: u32,
    /// Class names not drawn.
    pub hidden_classes: Vec<String>,
    /// Pixels whose brightest channel is below this are never annotated: the black
    /// surround outside the scope's field stop. 0 annotates everything.
    pub black_level: u8,
    /// Per-class fill opacity (class name to 0..1), overriding `opacity` for that class.
    #[serde(deserialize_with = "unit_interval_map")]
    pub class_opacity: std::collections::BTreeMap<String, f32>,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        Self {
            // A light fill under a clear outline: the tissue's texture stays visible.
            opacity: 0.25,
            mode: OverlayMode::Both,
            contour_px: 3,
            hidden_classes: Vec::new(),
            black_level: 8,
            class_opacity: Default::default(),
        }
    }
}

/// `[capture]`: the capture card (V4L2/UVC device) as `foramen live` opens it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Device path (`/dev/video0`), or any source `foramen replay` accepts
    /// (`synthetic:...`, a video file, an image folder).
    pub device: String,
    /// Requested frame width in pixels (0: the driver's default).
    pub width: u32,
    /// Requested frame height in pixels (0: the driver's default).
    pub height: u32,
    /// Requested frame rate (0: the driver's default; at most 1000).
    #[serde(deserialize_with = "frame_rate")]
    pub fps: f64,
    /// Requested pixel format as a FourCC (`MJPG`, `YUYV`, ...); empty: the driver's default.
    pub fourcc: String,
    /// First reconnection delay after the device disappears; doubles up to `reconnect_max_ms`.
    #[serde(deserialize_with = "positive_ms")]
    pub reconnect_ms: f64,
    /// Longest reconnection delay.
    #[serde(deserialize_with = "positive_ms")]
    pub reconnect_max_ms: f64,
    /// Without a frame for this long the screen says NO SIGNAL.
    #[serde(deserialize_with = "positive_ms")]
    pub no_signal_ms: f64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        Self {
            device: "/dev/video0".into(),
            width: 1920,
            height: 1080,
            fps: 60.0,
            fourcc: "MJPG".into(),
            reconnect_ms: 250.0,
            reconnect_max_ms: 4000.0,
            no_signal_ms: 500.0,
        }
    }
}

/// `[display]`: the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DisplayConfig {
    /// Show the heads-up display (rates, latencies, drops).
    pub hud: bool,
    /// Show the legend (class names and colours).
    pub legend: bool,
    /// Start fullscreen.
    pub fullscreen: bool,
    /// Monitor index for fullscreen (winit's order); none: the current one.
    pub monitor: Option<usize>,
}

impl Default for DisplayConfig {
    fn default() -> Self {
        Self {
            // The engineering HUD is for engineers: off in the theatre unless asked for.
            hud: false,
            legend: true,
            fullscreen: false,
            monitor: None,
        }
    }
}

/// `[recording]`: where and how procedures are recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingConfig {
    /// Folder that receives one sub-folder per recording.
    pub dir: PathBuf,
    /// Length of each video segment; a crash loses at most the open segment.
    #[serde(deserialize_with = "positive_seconds")]
    pub segment_s: f64,
    /// Frames the recorder may fall behind before frames are lost (and counted as a gap);
    /// the live video is never held back for the recorder.
    pub max_backlog_frames: usize,
    /// Minutes of recording the folder must have room for before a case: `foramen check`
    /// fails below it (0: only check that the folder is writable).
    pub min_free_minutes: u32,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("recordings"),
            segment_s: 2.0,
            max_backlog_frames: 120,
            min_free_minutes: 60,
        }
    }
}

/// The whole configuration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[model]`
    pub model: ModelConfig,
    /// `[inference]`
    pub inference: InferenceConfig,
    /// `[overlay]`
    pub overlay: OverlayConfig,
    /// `[capture]`
    pub capture: CaptureConfig,
    /// `[display]`
    pub display: DisplayConfig,
    /// `[recording]`
    pub recording: RecordingConfig,
    /// `[keys]`: extra keys per window action, e.g. a foot pedal's
    /// `toggle_overlay = ["F13"]` (names as egui spells them: `A`, `F13`, `Space`,
    /// `PageDown`, ...). They add to the built-in keys; the window checks the names.
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses config text; `path` only labels errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }

    /// Writes the config to `path` atomically (a temporary file beside it, then a
    /// rename), so a crash while saving leaves the old settings, never half a file.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, self.to_toml()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Writes only `keys` (`(section, key)`) of this config into the file at `path` and
    /// keeps everything else in it as it was: comments, order, formatting, other keys. A
    /// missing file is created with just those keys. Atomic, as [`save`](Self::save). The
    /// window saves the settings the staff changed this way, and nothing given only for
    /// one run on the command line.
    pub fn save_keys(&self, path: &Path, keys: &[(&str, &str)]) -> Result<(), ConfigError> {
        let io = |source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        };
        let parse = |message: String| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| parse(format!("{e}")))?;
        let full = toml::Table::try_from(self).map_err(|e| parse(e.to_string()))?;
        for &(section, key) in keys {
            let table = doc
                .entry(section)
                .or_insert_with(toml_edit::table)
                .as_table_like_mut()
                .ok_or_else(|| parse(format!("[{section}] is not a table")))?;
            match full.get(section).and_then(|t| t.get(key)) {
                Some(v) => {
                    let value: toml_edit::Value = match v {
                        // An f32 setting widened to f64 would be written 0.6000000238418579.
                        toml::Value::Float(f) if f64::from(*f as f32) == *f => {
                            let shortest: f64 = (*f as f32).to_string().parse().unwrap_or(*f);
                            shortest.into()
                        }
                        v => v
                            .to_string()
                            .parse()
                            .map_err(|e| parse(format!("{section}.{key}: {e}")))?,
                    };
                    // Keep the comment and spacing around an existing value.
                    match table.get_mut(key).and_then(toml_edit::Item::as_value_mut) {
                        Some(old) => {
                            let decor = old.decor().clone();
                            *old = value;
                            *old.decor_mut() = decor;
                        }
                        None => {
                            table.insert(key, toml_edit::Item::Value(value));
                        }
                    }
                }
                None => {
                    table.remove(key);
                }
            }
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        std::fs::write(&tmp, doc.to_string()).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> String {
        // Serialising plain structs of numbers, strings and enums cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

fn positive_ms<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && v > 0.0 && v <= 60_000.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} ms is out of range (0 < ms <= 60000)"
        )))
    }
}

fn positive_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    // Below 0.5 s a segment is a handful of frames: one MP4 per frame, not a recording.
    if v.is_finite() && (0.5..=3600.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} s is out of range (0.5 <= s <= 3600)"
        )))
    }
}

fn contour_width<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if (1..=64).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} px is out of range (1 to 64)"
        )))
    }
}

fn frame_rate<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if v.is_finite() && (0.0..=1000.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} frames/s is out of range (0 for the driver's default, up to 1000)"
        )))
    }
}

fn unit_interval_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, f32>, D::Error> {
    let m = std::collections::BTreeMap::<String, f32>::deserialize(d)?;
    if let Some((k, v)) = m.iter().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
        return Err(serde::de::Error::custom(format!(
            "{k} = {v} is out of range (0 to 1)"
        )));
    }
    Ok(m)
}

fn below_one<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = f32::deserialize(d)?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is out of range (0 <= alpha < 1)"
        )))
    }
}

fn scene_cut<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = f32::deserialize(d)?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is out of range (0 < threshold <= 1)"
        )))
    }
}

fn unit_interval<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let v = f32::deserialize(d)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "{v} is out of range (0 to 1)"
        )))
    }
}

#[cfg(test)]
mod tests;
