//! Procedural transforaminal endoscopy scenes with exact masks.
//!
//! No public lumbar endoscopy data exists, so Foramen renders its own: what the scope
//! sees under saline irrigation (`shared/docs/endoscopic-appearance.md`). A scene is a
//! pure function of its seed. Tissue lives in *world* coordinates (so camera pan,
//! rotation and zoom move it coherently in a clip); instruments live in *scope*
//! coordinates (they travel with the scope); optics (blur, vignetting, warm cast,
//! sharpening halo, noise, the circular field stop) are applied last, on the picture.
//! The field stop is out of focus, as on real towers: the light falls off toward the
//! rim (vignetting, steeper over the outer 15 % of the radius), and the circle's edge
//! goes from full light to black over 1-2 % of its radius, its pale rim as soft.
//!
//! Masks: 0 background (outside the circle, dura, fat, muscle, blood clots,
//! instruments), 1 bone, 2 ligament (flavum), 3 disc. They follow the nominal circle
//! (where the soft edge passes half the light): the rim lining it and everything
//! beyond, the dim outer half of the soft edge included, are background.

mod optics;
mod scene;
mod texture;

pub use scene::{Camera, Instrument, InstrumentKind, SceneSpec, Trajectory};

use rayon::prelude::*;

use texture::sample_world;

/// A rendered frame: RGB8 picture and its class-index mask, same size.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Packed RGB8.
    pub rgb: Vec<u8>,
    /// One class index per pixel (see the module docs).
    pub mask: Vec<u8>,
}

/// Per-frame state that changes over a clip: camera, instruments, time.
#[derive(Clone, Debug)]
pub struct FrameState {
    /// Camera over the world.
    pub camera: Camera,
    /// Instruments in scope coordinates.
    pub instruments: Vec<Instrument>,
    /// Seconds since the clip started (drives bleeding and floating debris).
    pub time_s: f32,
    /// Camera motion in output pixels since the previous frame (motion blur).
    pub motion_px: (f32, f32),
}

/// Largest internal render height: above it the scene is rendered smaller and scaled
/// up, which costs nothing visible because real towers are soft (Laplacian variance
/// 25-93 at 1080p) and keeps 1080p60 clips practical on two cores.
const MAX_INTERNAL_HEIGHT: u32 = 560;

/// The field of view of `spec` in a `width` x `height` picture, in pixels: centre x,
/// centre y, the nominal radius (the field stop's half-light circle, which the masks
/// follow) and the lit radius (the outer end of the stop's soft edge; black beyond).
pub fn lit_radius(spec: &SceneSpec, width: u32, height: u32) -> (f64, f64, f64, f64) {
    let g = optics::ScopeGeometry::new(spec, width, height);
    let (cx, cy, r) = (g.cx as f64, g.cy as f64, g.radius as f64);
    (cx, cy, r, r + g.edge as f64)
}

/// Renders one still frame of `spec` at its starting state.
pub fn render_still(spec: &SceneSpec, width: u32, height: u32) -> Rendered {
    render(spec, &spec.initial_state(), width, height)
}

/// Renders `spec` in `state` at `width` x `height`.
pub fn render(spec: &SceneSpec, state: &FrameState, width: u32, height: u32) -> Rendered {
    let geometry = optics::ScopeGeometry::new(spec, width, height);
    let scale = (MAX_INTERNAL_HEIGHT as f32 / height as f32).min(1.0);
    let iw = ((width as f32 * scale).round() as u32).max(8);
    let ih = ((height as f32 * scale).round() as u32).max(8);
    let inner = geometry.scaled(ih);

    let mut layer = render_tissue(spec, state, &inner, iw, ih);
    optics::light(&mut layer, spec);
    optics::draw_instruments(&mut layer, spec, state, &inner);
    optics::draw_debris(&mut layer, spec, state, &inner);
    optics::blur(
        &mut layer.rgb,
        iw,
        ih,
        spec.optics.blur_sigma * ih as f32 / 1080.0,
    );
    let motion = (state.motion_px.0 * scale, state.motion_px.1 * scale);
    optics::motion_blur(&mut layer.rgb, iw, ih, motion);

    let (mut rgb, mut mask) = if (iw, ih) == (width, height) {
        (layer.rgb, layer.label)
    } else {
        (
            optics::resize_bilinear(&layer.rgb, iw, ih, width, height),
            optics::resize_nearest(&layer.label, iw, ih, width, height),
        )
    };
    optics::finish(&mut rgb, &mut mask, spec, state, &geometry, width, height);
    let rgb8 = rgb
        .iter()
        .map(|&v| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8)
        .collect();
    Rendered {
        width,
        height,
        rgb: rgb8,
        mask,
    }
}

/// The linear-light working buffers of one frame before optics.
pub(crate) struct Layer {
    pub width: usize,
    pub rgb: Vec<f32>,
    pub height: Vec<f32>,
    pub gloss: Vec<f32>,
    pub label: Vec<u8>,
}

fn render_tissue(
    spec: &SceneSpec,
    state: &FrameState,
    geo: &optics::ScopeGeometry,
    w: u32,
    h: u32,
) -> Layer {
    let n = (w * h) as usize;
    let mut layer = Layer {
        width: w as usize,
        rgb: vec![0.0; n * 3],
        height: vec![0.0; n],
        gloss: vec![0.0; n],
        label: vec![0; n],
    };
    let cam = &state.camera;
    layer
        .rgb
        .par_chunks_mut(w as usize * 3)
        .zip(layer.height.par_chunks_mut(w as usize))
        .zip(layer.gloss.par_chunks_mut(w as usize))
        .zip(layer.label.par_chunks_mut(w as usize))
        .enumerate()
        .for_each(|(y, (((rgb, hgt), gloss), label))| {
            for x in 0..w as usize {
                let (u, v) = geo.scope_from_pixel(x as f32 + 0.5, y as f32 + 0.5);
                // A margin past the field stop so blur near the rim sees tissue, not black.
                if u * u + v * v > 1.08 {
                    continue;
                }
                let (wx, wy) = cam.world_from_scope(u, v);
                let s = sample_world(spec, wx, wy, state.time_s);
                rgb[x * 3..x * 3 + 3].copy_from_slice(&s.albedo);
                hgt[x] = s.height;
                gloss[x] = s.gloss;
                label[x] = s.tissue.class_index();
            }
        });
    layer
}

/// Renders a contact sheet of `cols` x `rows` stills, each `tile_w` x `tile_h`, with
/// its mask coloured in the lower half of each cell (picture above, mask below).
pub fn contact_sheet(seeds: &[u64], tile_w: u32, tile_h: u32, cols: u32) -> (u32, u32, Vec<u8>) {
    let rows = (seeds.len() as u32).div_ceil(cols);
    let (sw, sh) = (tile_w * cols, tile_h * 2 * rows);
    let mut sheet = vec![0u8; (sw * sh * 3) as usize];
    let lut = foramen_core::ClassSet::lumbar().color_lut();
    let tiles: Vec<Rendered> = seeds
        .par_iter()
        .map(|&s| render_still(&SceneSpec::from_seed(s), tile_w, tile_h))
        .collect();
    for (i, t) in tiles.iter().enumerate() {
        let (cx, cy) = (i as u32 % cols * tile_w, i as u32 / cols * tile_h * 2);
        for y in 0..tile_h {
            for x in 0..tile_w {
                let p = (y * tile_w + x) as usize;
                let top = (((cy + y) * sw + cx + x) * 3) as usize;
                let bottom = (((cy + tile_h + y) * sw + cx + x) * 3) as usize;
                sheet[top..top + 3].copy_from_slice(&t.rgb[p * 3..p * 3 + 3]);
                let c = lut[t.mask[p] as usize];
                for k in 0..3 {
                    // Mask colour over a dimmed copy of the picture, so layout and
                    // texture can be compared at a glance.
                    sheet[bottom + k] =
                        ((t.rgb[p * 3 + k] as u16 / 3) + (c[k] as u16 * 2 / 3)) as u8;
                }
            }
        }
    }
    (sw, sh, sheet)
}

/// Tissue type of the scene model (exposed for statistics and tests).
pub use texture::Tissue as SceneTissue;

#[cfg(test)]
mod tests;
