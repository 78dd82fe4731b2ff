//! The GPU compositor's shader and the exact bytes it reads, kept beside the CPU
//! reference so the two stay the same algorithm. The binary owns the wgpu plumbing;
//! this module has no GPU dependency and is tested on the CPU.

use std::borrow::Cow;

use foramen_core::config::OverlayMode;

use crate::OverlayStyle;

/// WGSL source of the compositor (vertex `vs_main`, fragment `fs_main`).
///
/// Bindings, group 0: `0` video as `Rgba8Uint` packed RGB rows (see [`video_texture_width`]),
/// `1` class indices as `R8Uint`, `2` the uniform block [`OverlayParams::to_bytes`].
pub const OVERLAY_WGSL: &str = include_str!("overlay.wgsl");

/// Classes the shader can colour; higher indices are drawn as plain video.
pub const GPU_MAX_CLASSES: usize = 32;

/// Size in bytes of the uniform block.
pub const PARAMS_BYTES: usize = 64 + GPU_MAX_CLASSES * 16 + GPU_MAX_CLASSES / 4 * 16;

/// Everything the shader needs for one frame besides the two textures.
#[derive(Clone, Debug, PartialEq)]
pub struct OverlayParams {
    /// Video frame size in pixels.
    pub frame_size: [u32; 2],
    /// Mask size in pixels; `[0, 0]` draws the video alone (no mask, or a stale one).
    pub mask_size: [u32; 2],
    /// Top-left of the viewport in framebuffer pixels.
    pub view_origin_px: [f32; 2],
    /// Size of the viewport in framebuffer pixels.
    pub view_size_px: [f32; 2],
    /// Contour half-width in display pixels (the CPU rule: `contour_px / 2`, rounded up).
    pub contour_radius_px: f32,
    /// Brightest-channel level (0..255) below which nothing is annotated.
    pub black_level: f32,
    /// Fill and/or contour.
    pub mode: OverlayMode,
    /// True when the framebuffer is an sRGB format (the shader then writes linear values).
    pub srgb_target: bool,
    /// RGB 0..1 and visibility (1 or 0) per class.
    pub color: [[f32; 4]; GPU_MAX_CLASSES],
    /// Fill opacity per class.
    pub fill_alpha: [f32; GPU_MAX_CLASSES],
}

impl OverlayParams {
    /// Parameters drawing `style` for a `frame_size` frame and a `mask_size` mask
    /// (`None`: video only) into a viewport.
    pub fn new(
        style: &OverlayStyle,
        frame_size: [u32; 2],
        mask_size: Option<[u32; 2]>,
        view_origin_px: [f32; 2],
        view_size_px: [f32; 2],
        srgb_target: bool,
    ) -> Self {
        let mut color = [[0.0; 4]; GPU_MAX_CLASSES];
        let mut fill_alpha = [0.0; GPU_MAX_CLASSES];
        for c in 0..GPU_MAX_CLASSES {
            let [r, g, b] = style.lut[c];
            let visible = if style.visible[c] { 1.0 } else { 0.0 };
            color[c] = [
                r as f32 / 255.0,
                g as f32 / 255.0,
                b as f32 / 255.0,
                visible,
            ];
            fill_alpha[c] = style.alpha[c];
        }
        let px = style.contour_px.max(1);
        Self {
            frame_size,
            mask_size: mask_size.unwrap_or([0, 0]),
            view_origin_px,
            view_size_px,
            contour_radius_px: (px / 2 + px % 2) as f32,
            black_level: style.black_level as f32,
            mode: style.mode,
            srgb_target,
            color,
            fill_alpha,
        }
    }

    /// The uniform block in the layout `overlay.wgsl` declares (std140-like: 16-byte
    /// aligned arrays of `vec4`), little-endian.
    pub fn to_bytes(&self) -> [u8; PARAMS_BYTES] {
        let mut b = [0u8; PARAMS_BYTES];
        let mut at = 0;
        let mut put = |bytes: [u8; 4]| {
            b[at..at + 4].copy_from_slice(&bytes);
            at += 4;
        };
        put(self.frame_size[0].to_le_bytes());
        put(self.frame_size[1].to_le_bytes());
        put(self.mask_size[0].to_le_bytes());
        put(self.mask_size[1].to_le_bytes());
        put(self.view_origin_px[0].to_le_bytes());
        put(self.view_origin_px[1].to_le_bytes());
        put(self.view_size_px[0].to_le_bytes());
        put(self.view_size_px[1].to_le_bytes());
        put(self.contour_radius_px.to_le_bytes());
        put(self.black_level.to_le_bytes());
        let mode: u32 = match self.mode {
            OverlayMode::Fill => 1,
            OverlayMode::Contour => 2,
            OverlayMode::Both => 3,
        };
        put(mode.to_le_bytes());
        put(u32::from(self.srgb_target).to_le_bytes());
        put(video_texture_width(self.frame_size[0]).to_le_bytes());
        for _ in 0..3 {
            put(0u32.to_le_bytes());
        }
        for c in &self.color {
            for v in c {
                put(v.to_le_bytes());
            }
        }
        for a in &self.fill_alpha {
            put(a.to_le_bytes());
        }
        debug_assert_eq!(at, PARAMS_BYTES);
        b
    }
}

/// Width in texels of the `Rgba8Uint` texture that holds `width` RGB pixels per row.
pub fn video_texture_width(width: u32) -> u32 {
    (width * 3).div_ceil(4)
}

/// The bytes to upload for a packed RGB8 frame: the frame itself when its rows are a
/// whole number of texels (every common video width: `3 * width % 4 == 0`), else a
/// copy with each row padded to the texel boundary.
pub fn video_upload_bytes(rgb: &[u8], width: u32, height: u32) -> Cow<'_, [u8]> {
    let row = width as usize * 3;
    let padded = video_texture_width(width) as usize * 4;
    if row == padded {
        return Cow::Borrowed(rgb);
    }
    let mut out = vec![0u8; padded * height as usize];
    for (dst, src) in out.chunks_exact_mut(padded).zip(rgb.chunks_exact(row)) {
        dst[..row].copy_from_slice(src);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use foramen_core::ClassSet;
    use foramen_core::config::OverlayConfig;

    #[test]
    fn the_shader_declares_the_block_these_bytes_fill() {
        // Field order in the WGSL struct must match `to_bytes`.
        let order = [
            "frame_size: vec2<u32>",
            "mask_size: vec2<u32>",
            "view_origin: vec2<f32>",
            "view_size: vec2<f32>",
            "contour_radius: f32",
            "black_level: f32",
            "mode: u32",
            "srgb_target: u32",
            "texel_width: u32",
            "color: array<vec4<f32>, 32>",
            "fill_alpha: array<vec4<f32>, 8>",
        ];
        let pos: Vec<usize> = order
            .iter()
            .map(|f| {
                OVERLAY_WGSL
                    .find(f)
                    .unwrap_or_else(|| panic!("{f} missing"))
            })
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
        assert_eq!(PARAMS_BYTES, 704);
    }

    #[test]
    fn params_carry_the_style() {
        let mut cfg = OverlayConfig {
            opacity: 0.25,
            contour_px: 3,
            hidden_classes: vec!["disc".into()],
            ..OverlayConfig::default()
        };
        cfg.class_opacity.insert("bone".into(), 0.75);
        let style = OverlayStyle::new(&ClassSet::lumbar(), &cfg);
        let p = OverlayParams::new(
            &style,
            [1920, 1080],
            Some([384, 224]),
            [10.0, 20.0],
            [960.0, 540.0],
            false,
        );
        assert_eq!(p.contour_radius_px, 2.0);
        assert_eq!(p.color[0][3], 0.0, "background is never drawn");
        assert_eq!((p.color[1][3], p.color[3][3]), (1.0, 0.0));
        assert_eq!((p.fill_alpha[1], p.fill_alpha[2]), (0.75, 0.25));
        let b = p.to_bytes();
        assert_eq!(u32::from_le_bytes([b[0], b[1], b[2], b[3]]), 1920);
        assert_eq!(u32::from_le_bytes([b[12], b[13], b[14], b[15]]), 224);
        assert_eq!(f32::from_le_bytes([b[16], b[17], b[18], b[19]]), 10.0);
        assert_eq!(u32::from_le_bytes([b[40], b[41], b[42], b[43]]), 3, "both");
        // fill_alpha[1] sits after the 32 colours.
        let at = 64 + 32 * 16 + 4;
        assert_eq!(
            f32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]),
            0.75
        );
    }

    #[test]
    fn rows_are_padded_only_when_they_must_be() {
        let rgb: Vec<u8> = (0..4 * 2 * 3).map(|i| i as u8).collect();
        assert!(matches!(video_upload_bytes(&rgb, 4, 2), Cow::Borrowed(_)));
        let odd: Vec<u8> = (0..3 * 2 * 3).map(|i| i as u8).collect();
        let up = video_upload_bytes(&odd, 3, 2);
        assert_eq!(video_texture_width(3), 3);
        assert_eq!(up.len(), 12 * 2);
        assert_eq!(&up[..9], &odd[..9]);
        assert_eq!(&up[12..21], &odd[9..18]);
    }
}
