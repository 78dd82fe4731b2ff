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
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: None,
            execution_provider: ExecutionProvider::Cpu,
            intra_threads: 0,
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
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            latency_budget_ms: 80.0,
            max_mask_age_ms: 250.0,
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
    /// Contour thickness in output pixels.
    pub contour_px: u32,
    /// Class names not drawn.
    pub hidden_classes: Vec<String>,
    /// Pixels whose brightest channel is below this are never annotated: the black
    /// surround outside the scope's field stop. 0 annotates everything.
    pub black_level: u8,
}

impl Default for OverlayConfig {
    fn default() -> Self {
        Self {
            opacity: 0.45,
            mode: OverlayMode::Both,
            contour_px: 2,
            hidden_classes: Vec::new(),
            black_level: 8,
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
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_gives_defaults_and_round_trips() {
        let c = parse("").expect("defaults");
        assert_eq!(c, Config::default());
        assert_eq!(parse(&c.to_toml()).expect("round trip"), c);
    }

    #[test]
    fn reads_values() {
        let c = parse(
            "[inference]\nmax_mask_age_ms = 120\nlatency_budget_ms = 40.5\n[overlay]\nmode = \"contour\"\nopacity = 0.3\n[model]\nexecution_provider = \"cuda\"\n",
        )
        .expect("valid");
        assert_eq!(c.inference.max_mask_age_ms, 120.0);
        assert_eq!(c.overlay.mode, OverlayMode::Contour);
        assert_eq!(c.model.execution_provider, ExecutionProvider::Cuda);
    }

    #[test]
    fn errors_name_key_and_line() {
        let msg = parse("[inference]\n\nmax_mask_age_ms = -5\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("test.toml") && msg.contains("line 3") && msg.contains("out of range"),
            "{msg}"
        );

        let msg = parse("[overlay]\nopacity = \"half\"\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("line 2") && msg.contains("opacity"), "{msg}");

        let msg = parse("[overlay]\nopacty = 0.5\n").unwrap_err().to_string();
        assert!(
            msg.contains("unknown field") && msg.contains("opacty"),
            "{msg}"
        );
    }
}
