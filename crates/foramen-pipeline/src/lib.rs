//! Foramen's pipelines, between the per-frame crates and the binary:
//! - [`live`]: the operating-room session (capture, the router that fans each frame out
//!   to the display slot, the inference worker and the recorder), wired in one place,
//!   [`live::compose`];
//! - [`replay`]: the offline pipeline (decode, segment, blend, encode) that `foramen
//!   replay` and `foramen bench` run;
//! - [`model`]: finding the bundled model and the model settings a pipeline uses;
//! - [`check`]: the readiness check before a case (`foramen check`, the window's panel);
//! - [`clip`]: a span of a recording as a video with its recorded masks drawn and a
//!   caption (`foramen clip`, the window's export), and its stills;
//! - [`report`]: a recording's timeline, key frames and `report.html` (`foramen report`).

pub mod check;
pub mod clip;
pub mod error;
pub mod live;
pub mod model;
pub mod replay;
pub mod report;

pub use error::PipelineError;

/// Result of the pipeline's fallible calls.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;
