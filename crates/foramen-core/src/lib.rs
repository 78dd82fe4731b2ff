//! Frames, masks, class palettes, configuration and timing shared by every Foramen crate.

pub mod alloc_count;
pub mod classes;
pub mod color_vision;
pub mod config;
pub mod fault;
pub mod frame;
pub mod limits;
pub mod mask;
pub mod paths;
pub mod resample;
pub mod sync;
pub mod timing;

pub use classes::{ClassInfo, ClassSet, ClassesError};
pub use config::{Config, ConfigError};
pub use frame::{Frame, FrameId, FramePool};
pub use mask::Mask;
pub use sync::{NewestSlot, lock};
pub use timing::{LatencyStats, clock_us};
