//! The one limit on picture size. Every reader checks a picture's declared size against
//! it before allocating, so a small hostile file (a PNG header declaring 60000x60000, a
//! `synthetic:1:100000x100000` source) is a clear error, not gigabytes of memory.

use std::sync::OnceLock;

/// Pixels per picture allowed by default: 8192 x 8192 (above 8K UHD, 7680 x 4320).
pub const DEFAULT_MAX_PIXELS: u64 = 8192 * 8192;

/// The environment variable that changes the limit (a pixel count).
pub const ENV: &str = "FORAMEN_MAX_PIXELS";

/// A picture over the limit.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{what} is {width}x{height} ({} pixels), over the limit of {limit} pixels (set {ENV} to change it)", u64::from(*width) * u64::from(*height))]
pub struct TooManyPixels {
    /// The file or source.
    pub what: String,
    /// Declared width.
    pub width: u32,
    /// Declared height.
    pub height: u32,
    /// The limit in force.
    pub limit: u64,
}

/// The limit in force: `FORAMEN_MAX_PIXELS` when it is a positive number, else
/// [`DEFAULT_MAX_PIXELS`].
pub fn max_pixels() -> u64 {
    static LIMIT: OnceLock<u64> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var(ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(DEFAULT_MAX_PIXELS)
    })
}

/// Refuses a `width` x `height` picture over `limit`, or with a zero side.
pub fn check_pixels_within(
    what: &str,
    width: u32,
    height: u32,
    limit: u64,
) -> Result<(), TooManyPixels> {
    let n = u64::from(width) * u64::from(height);
    if n > limit || n == 0 {
        return Err(TooManyPixels {
            what: what.to_string(),
            width,
            height,
            limit,
        });
    }
    Ok(())
}

/// Refuses a picture over [`max_pixels`].
pub fn check_pixels(what: &str, width: u32, height: u32) -> Result<(), TooManyPixels> {
    check_pixels_within(what, width, height, max_pixels())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_over_the_limit_or_empty_are_refused_by_name() {
        assert!(check_pixels_within("a.png", 7680, 4320, DEFAULT_MAX_PIXELS).is_ok());
        let e = check_pixels_within("a.png", 60000, 60000, DEFAULT_MAX_PIXELS).expect_err("huge");
        let msg = e.to_string();
        assert!(
            msg.contains("a.png is 60000x60000 (3600000000 pixels)") && msg.contains(ENV),
            "{msg}"
        );
        assert!(check_pixels_within("b.png", 0, 10, DEFAULT_MAX_PIXELS).is_err());
        // u32 x u32 does not overflow.
        assert!(check_pixels_within("c", u32::MAX, u32::MAX, DEFAULT_MAX_PIXELS).is_err());
    }
}
