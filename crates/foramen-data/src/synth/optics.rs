//! Light, instruments, debris and the optical/video chain, in picture coordinates.

use foramen_core::resample::linear_taps;
use rayon::prelude::*;

use crate::noise::{perlin, smoothstep};

use super::scene::{Instrument, InstrumentKind, SceneSpec};
use super::{FrameState, Layer};

/// Where the circular field of view sits in a picture.
#[derive(Clone, Copy, Debug)]
pub struct ScopeGeometry {
    /// Circle centre, pixels.
    pub cx: f32,
    /// Circle centre, pixels.
    pub cy: f32,
    /// Circle radius, pixels: where the field stop passes half the light.
    pub radius: f32,
    /// Half the width of the stop's soft edge, pixels: the light falls smoothly from
    /// full at `radius - edge` to none at `radius + edge` (the lit radius).
    pub edge: f32,
}

impl ScopeGeometry {
    /// The field stop for `spec` in a `width` x `height` picture.
    pub fn new(spec: &SceneSpec, width: u32, height: u32) -> Self {
        let h = height as f32;
        let radius = spec.optics.circle_frac * h / 2.0;
        Self {
            cx: width as f32 / 2.0 + spec.optics.circle_dx * h,
            cy: h / 2.0,
            radius,
            // At least half a pixel either side: antialiased in small pictures.
            edge: (spec.optics.edge_frac * radius / 2.0).max(0.5),
        }
    }

    /// The same field stop in the picture scaled to `height` lines.
    pub fn scaled(&self, height: u32) -> Self {
        let s = height as f32 / (self.cy * 2.0);
        Self {
            cx: self.cx * s,
            cy: self.cy * s,
            radius: self.radius * s,
            edge: (self.edge * s).max(0.5),
        }
    }

    /// Scope coordinates (unit circle = field of view) of pixel centre (px, py).
    #[inline]
    pub fn scope_from_pixel(&self, px: f32, py: f32) -> (f32, f32) {
        ((px - self.cx) / self.radius, (py - self.cy) / self.radius)
    }
}

#[inline]
fn mix3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Shades albedo by the relief: light comes down the scope, a little off axis.
pub(crate) fn light(layer: &mut Layer, spec: &SceneSpec) {
    let w = layer.width;
    let h = layer.label.len() / w;
    // Height is in world units; slopes are scaled to pixels per view radius so that
    // relief looks the same at every resolution and zoom.
    let k = 0.012 * h as f32 / 2.0 * spec.camera.zoom.max(0.5);
    let l = norm3([0.22, -0.28, 1.0]);
    let half = norm3([l[0], l[1], l[2] + 1.0]);
    let height = &layer.height;
    let gloss = &layer.gloss;
    layer
        .rgb
        .par_chunks_mut(w * 3)
        .enumerate()
        .for_each(|(y, row)| {
            let ym = y.saturating_sub(1);
            let yp = (y + 1).min(h - 1);
            for x in 0..w {
                let xm = x.saturating_sub(1);
                let xp = (x + 1).min(w - 1);
                let gx = (height[y * w + xp] - height[y * w + xm]) * 0.5 * k;
                let gy = (height[yp * w + x] - height[ym * w + x]) * 0.5 * k;
                let n = norm3([-gx.clamp(-3.0, 3.0), -gy.clamp(-3.0, 3.0), 1.0]);
                let diffuse = dot3(n, l).max(0.0);
                let spec_term = dot3(n, half).max(0.0).powi(36) * gloss[y * w + x] * 0.55;
                let shade = 0.3 + 0.72 * diffuse;
                let px = &mut row[x * 3..x * 3 + 3];
                px[0] = px[0] * shade + spec_term;
                px[1] = px[1] * shade + spec_term * 0.95;
                px[2] = px[2] * shade + spec_term * 0.85;
            }
        });
}

#[inline]
fn dot3(a: [f32; 3], b: [f32; 3]) -> f32 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

#[inline]
fn norm3(a: [f32; 3]) -> [f32; 3] {
    let l = dot3(a, a).sqrt();
    [a[0] / l, a[1] / l, a[2] / l]
}

/// Colour and coverage of the instruments at scope point (u, v); `None` outside
/// them. Also returns a shadow factor for tissue next to a shaft.
fn instrument_at(
    state: &FrameState,
    seed: u32,
    u: f32,
    v: f32,
    px: f32,
) -> (Option<([f32; 3], f32)>, f32) {
    let mut hit: Option<([f32; 3], f32)> = None;
    let mut shadow: f32 = 1.0;
    // Tools first, the cannula last: it sits at the lens and hides everything.
    for ins in state
        .instruments
        .iter()
        .filter(|i| i.kind != InstrumentKind::Cannula)
    {
        let (cover, col, shade) = tool_at(ins, seed, u, v, px);
        if cover > 0.0 {
            hit = Some(match hit {
                Some((c0, a0)) if a0 > cover => (c0, a0),
                _ => (col, cover),
            });
        }
        shadow = shadow.min(shade);
    }
    for ins in state
        .instruments
        .iter()
        .filter(|i| i.kind == InstrumentKind::Cannula)
    {
        cannula_at(ins, seed, u, v, px, &mut hit, &mut shadow);
    }
    (hit, shadow)
}

/// Polished metal seen across a cylinder: `tn` across it (-1..1), `s` along it.
#[inline]
fn metal(seed: u32, tn: f32, s: f32) -> [f32; 3] {
    let cyl = (1.0 - tn * tn).max(0.0).sqrt();
    let scratch = 0.06 * perlin(seed ^ 0x5C, s * 40.0, tn * 3.0);
    let c = mix3(
        [0.3, 0.33, 0.27],
        [0.86, 0.73, 0.46],
        cyl.powf(1.2) + scratch,
    );
    let glint = (-((tn - 0.32) / 0.14).powi(2)).exp() * 0.75;
    mix3(c, [1.0, 0.97, 0.88], glint)
}

/// The shaft's colour at `s` along it (shaver teeth, the RF probe's insulated tip).
#[inline]
fn shaft_colour(ins: &Instrument, seed: u32, s: f32, tn: f32, len: f32, half_w: f32) -> [f32; 3] {
    let col = metal(seed, tn, s);
    match ins.kind {
        InstrumentKind::Shaver
            if s > len - 3.2 * half_w && s < len - 1.3 * half_w && tn.abs() < 0.55 =>
        {
            let teeth = 0.5 + 0.5 * (s * 180.0).sin();
            mix3([0.12, 0.1, 0.08], col, 0.25 * teeth)
        }
        InstrumentKind::RfProbe if s > len - 4.0 * half_w => {
            let ring = s > len - 2.2 * half_w && s < len - 1.5 * half_w;
            if ring {
                col
            } else {
                let cyl = (1.0 - tn * tn).max(0.0).sqrt();
                mix3([0.62, 0.6, 0.55], [0.95, 0.93, 0.88], cyl)
            }
        }
        _ => col,
    }
}

/// Forceps jaws at (qx, qy) from the hinge: two tapering blades along (dx, dy), opened
/// by the instrument's `opening`; coverage and colour.
#[inline]
fn jaws_at(
    ins: &Instrument,
    seed: u32,
    (qx, qy): (f32, f32),
    (dx, dy): (f32, f32),
    half_w: f32,
    px: f32,
) -> (f32, [f32; 3]) {
    let jaw_len = half_w * 3.0;
    let (mut cover, mut col) = (0.0, [0.0; 3]);
    for sign in [-1.0f32, 1.0] {
        let a = sign * ins.opening * 0.45;
        let (sa, ca) = a.sin_cos();
        let (jx, jy) = (dx * ca - dy * sa, dx * sa + dy * ca);
        let js = qx * jx + qy * jy;
        let jt = qx * jy - qy * jx + sign * half_w * 0.45;
        let jw = half_w * 0.55 * (1.0 - 0.7 * (js / jaw_len).clamp(0.0, 1.0));
        if (0.0..=jaw_len).contains(&js) {
            let c = smoothstep(jw + px, jw - px, jt.abs());
            if c > cover {
                cover = c;
                col = metal(seed, jt / jw, js);
            }
        }
    }
    (cover, col)
}

/// One tool (shaft, tip or jaws) at (u, v): coverage, colour, and the shadow factor it
/// casts on the tissue beside its shaft.
#[inline]
fn tool_at(ins: &Instrument, seed: u32, u: f32, v: f32, px: f32) -> (f32, [f32; 3], f32) {
    let (s_a, c_a) = ins.entry_angle.sin_cos();
    let (ex, ey) = (c_a * 1.1, s_a * 1.1);
    let (s_d, c_d) = (ins.entry_angle + ins.skew).sin_cos();
    let (dx, dy) = (-c_d, -s_d);
    let (rx, ry) = (u - ex, v - ey);
    let s = rx * dx + ry * dy;
    let t = rx * dy - ry * dx;
    let len = ins.depth + 0.1;
    // Nearer the lens the shaft looks wider (perspective).
    let half_w = ins.width * 0.5 * (1.0 + 0.45 * (1.0 - (s / len).clamp(0.0, 1.0)));
    let tn = t / half_w;
    let shaft_end = match ins.kind {
        InstrumentKind::Forceps => len,
        _ => len - half_w,
    };
    let (ox, oy) = (ex + dx * shaft_end, ey + dy * shaft_end);
    let (cover, col) = if s >= 0.0 && s <= shaft_end {
        let cover = smoothstep(half_w + px, half_w - px, t.abs());
        (cover, shaft_colour(ins, seed, s, tn, len, half_w))
    } else if s > shaft_end && ins.kind != InstrumentKind::Forceps {
        // Rounded end.
        let d = ((u - ox).powi(2) + (v - oy).powi(2)).sqrt();
        let tip = if ins.kind == InstrumentKind::RfProbe {
            [0.95, 0.93, 0.88]
        } else {
            [0.8, 0.68, 0.44]
        };
        let cover = smoothstep(half_w + px, half_w - px, d);
        (cover, mix3([0.45, 0.42, 0.36], tip, 1.0 - d / half_w))
    } else if s > shaft_end {
        jaws_at(ins, seed, (u - ox, v - oy), (dx, dy), half_w, px)
    } else {
        (0.0, [0.0; 3])
    };
    let mut shade = 1.0f32;
    if s >= 0.0 && s <= shaft_end {
        let out = t.abs() - half_w;
        if out > 0.0 && out < 0.08 {
            shade = shade.min(1.0 - 0.45 * (1.0 - out / 0.08));
        }
    }
    (cover, col, shade)
}

/// The cannula's rim at (u, v), over whatever `hit` the tools left; it darkens the
/// tissue just inside it.
#[inline]
fn cannula_at(
    ins: &Instrument,
    seed: u32,
    u: f32,
    v: f32,
    px: f32,
    hit: &mut Option<([f32; 3], f32)>,
    shadow: &mut f32,
) {
    let (s_a, c_a) = ins.entry_angle.sin_cos();
    let big = 1.7;
    let (ccx, ccy) = (c_a * (1.0 - ins.depth + big), s_a * (1.0 - ins.depth + big));
    let along = (u * -s_a + v * c_a) * 4.0;
    let edge = big + 0.02 * perlin(seed ^ 0xCA, along, 0.5);
    let d = ((u - ccx).powi(2) + (v - ccy).powi(2)).sqrt();
    let cover = smoothstep(edge + px, edge - px, d);
    if cover > 0.0 {
        let depth_in = ((edge - d) / ins.depth.max(0.05)).clamp(0.0, 1.0);
        let mut col = mix3([0.33, 0.27, 0.22], [0.12, 0.1, 0.09], depth_in);
        col = mix3(col, [0.62, 0.52, 0.42], smoothstep(0.025, 0.0, edge - d));
        let a = hit.map_or(0.0, |h| h.1);
        *hit = Some((mix3(hit.map_or(col, |h| h.0), col, cover), a.max(cover)));
    } else if d - edge < 0.07 {
        *shadow = shadow.min(1.0 - 0.5 * (1.0 - (d - edge) / 0.07));
    }
}

/// Draws instruments over the lit tissue and clears their pixels to background.
pub(crate) fn draw_instruments(
    layer: &mut Layer,
    spec: &SceneSpec,
    state: &FrameState,
    geo: &ScopeGeometry,
) {
    if state.instruments.is_empty() {
        return;
    }
    let w = layer.width;
    let px = 1.0 / geo.radius;
    let seed = spec.tex_seed;
    layer
        .rgb
        .par_chunks_mut(w * 3)
        .zip(layer.label.par_chunks_mut(w))
        .enumerate()
        .for_each(|(y, (row, labels))| {
            for x in 0..w {
                let (u, v) = geo.scope_from_pixel(x as f32 + 0.5, y as f32 + 0.5);
                if u * u + v * v > 1.1 {
                    continue;
                }
                let (hit, shadow) = instrument_at(state, seed, u, v, px);
                let p = &mut row[x * 3..x * 3 + 3];
                for c in p.iter_mut() {
                    *c *= shadow;
                }
                if let Some((col, cover)) = hit {
                    let mixed = mix3([p[0], p[1], p[2]], col, cover);
                    p.copy_from_slice(&mixed);
                    if cover >= 0.5 {
                        labels[x] = 0;
                    }
                }
            }
        });
}

/// Floating flecks, tissue fragments and air bubbles in the saline (labels unchanged:
/// they are small and the tissue behind stays what it is).
pub(crate) fn draw_debris(
    layer: &mut Layer,
    spec: &SceneSpec,
    state: &FrameState,
    geo: &ScopeGeometry,
) {
    let (w, h) = (layer.width, layer.label.len() / layer.width);
    for d in &spec.debris {
        let wrap = |p: f32| (p + 1.0).rem_euclid(2.0) - 1.0;
        let (cu, cv) = (
            wrap(d.pos.0 + d.vel.0 * state.time_s),
            wrap(d.pos.1 + d.vel.1 * state.time_s),
        );
        let r_px = (d.radius * geo.radius).max(1.0);
        let (cx, cy) = (geo.cx + cu * geo.radius, geo.cy + cv * geo.radius);
        let x0 = (cx - r_px * 1.6).floor().max(0.0) as usize;
        let x1 = ((cx + r_px * 1.6).ceil().max(0.0) as usize).min(w);
        let y0 = (cy - r_px * 1.6).floor().max(0.0) as usize;
        let y1 = ((cy + r_px * 1.6).ceil().max(0.0) as usize).min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let wobble = 1.0
                    + 0.35
                        * perlin(
                            spec.tex_seed ^ 0xDE,
                            dx / r_px * 1.5 + d.pos.0 * 9.0,
                            dy / r_px * 1.5,
                        );
                let r = (dx * dx + dy * dy).sqrt() / (r_px * wobble);
                let (col, alpha) = match d.kind {
                    0 => ([1.0, 0.97, 0.9], smoothstep(1.0, 0.4, r) * 0.85),
                    1 => ([0.88, 0.66, 0.55], smoothstep(1.0, 0.7, r) * 0.8),
                    _ => {
                        let ring = (-((r - 0.9) / 0.12).powi(2)).exp();
                        let glint = (-(((dx + r_px * 0.35).powi(2) + (dy + r_px * 0.35).powi(2))
                            / (r_px * r_px * 0.03)))
                            .exp();
                        ([1.0, 0.96, 0.9], (ring * 0.7 + glint).min(1.0))
                    }
                };
                let i = (y * w + x) * 3;
                let mixed = mix3(
                    [layer.rgb[i], layer.rgb[i + 1], layer.rgb[i + 2]],
                    col,
                    alpha,
                );
                layer.rgb[i..i + 3].copy_from_slice(&mixed);
            }
        }
    }
}

/// Separable Gaussian blur of an RGB f32 buffer in place.
pub(crate) fn blur(rgb: &mut [f32], w: u32, h: u32, sigma: f32) {
    if sigma < 0.3 {
        return;
    }
    let (w, h) = (w as usize, h as usize);
    let radius = (sigma * 2.5).ceil() as isize;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = kernel.iter().sum();
    let kernel: Vec<f32> = kernel.iter().map(|k| k / sum).collect();
    let mut tmp = vec![0.0f32; rgb.len()];
    tmp.par_chunks_mut(w * 3).enumerate().for_each(|(y, out)| {
        let row = &rgb[y * w * 3..(y + 1) * w * 3];
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for (k, kv) in kernel.iter().enumerate() {
                let sx = (x as isize + k as isize - radius).clamp(0, w as isize - 1) as usize;
                acc[0] += row[sx * 3] * kv;
                acc[1] += row[sx * 3 + 1] * kv;
                acc[2] += row[sx * 3 + 2] * kv;
            }
            out[x * 3..x * 3 + 3].copy_from_slice(&acc);
        }
    });
    rgb.par_chunks_mut(w * 3).enumerate().for_each(|(y, out)| {
        out.fill(0.0);
        for (k, kv) in kernel.iter().enumerate() {
            let sy = (y as isize + k as isize - radius).clamp(0, h as isize - 1) as usize;
            let src = &tmp[sy * w * 3..(sy + 1) * w * 3];
            for (o, s) in out.iter_mut().zip(src) {
                *o += s * kv;
            }
        }
    });
}

/// Blur along the camera's motion during the exposure (half a frame interval).
pub(crate) fn motion_blur(rgb: &mut [f32], w: u32, h: u32, motion: (f32, f32)) {
    let (mx, my) = (motion.0 * 0.5, motion.1 * 0.5);
    let len = (mx * mx + my * my).sqrt();
    if len < 1.0 {
        return;
    }
    let taps = (len.ceil() as usize + 1).min(24);
    let src = rgb.to_vec();
    let (w, h) = (w as usize, h as usize);
    rgb.par_chunks_mut(w * 3).enumerate().for_each(|(y, out)| {
        for x in 0..w {
            let mut acc = [0.0f32; 3];
            for i in 0..taps {
                let f = i as f32 / (taps - 1) as f32 - 0.5;
                let sx = (x as f32 + mx * f).round().clamp(0.0, w as f32 - 1.0) as usize;
                let sy = (y as f32 + my * f).round().clamp(0.0, h as f32 - 1.0) as usize;
                let j = (sy * w + sx) * 3;
                acc[0] += src[j];
                acc[1] += src[j + 1];
                acc[2] += src[j + 2];
            }
            for c in 0..3 {
                out[x * 3 + c] = acc[c] / taps as f32;
            }
        }
    });
}

/// Bilinear resize of an RGB f32 buffer (pixel centres aligned).
pub(crate) fn resize_bilinear(src: &[f32], sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<f32> {
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    let mut out = vec![0.0f32; dw * dh * 3];
    let xs = linear_taps(sw, dw);
    let ys = linear_taps(sh, dh);
    out.par_chunks_mut(dw * 3).enumerate().for_each(|(y, row)| {
        let (y0, y1, ty) = ys[y];
        for (x, &(x0, x1, tx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let a = src[(y0 * sw + x0) * 3 + c] * (1.0 - tx) + src[(y0 * sw + x1) * 3 + c] * tx;
                let b = src[(y1 * sw + x0) * 3 + c] * (1.0 - tx) + src[(y1 * sw + x1) * 3 + c] * tx;
                row[x * 3 + c] = a * (1.0 - ty) + b * ty;
            }
        }
    });
    out
}

/// Nearest-neighbour resize of a label buffer.
pub(crate) fn resize_nearest(src: &[u8], sw: u32, sh: u32, dw: u32, dh: u32) -> Vec<u8> {
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    let mut out = vec![0u8; dw * dh];
    out.par_chunks_mut(dw).enumerate().for_each(|(y, row)| {
        let sy = ((y * sh) / dh).min(sh - 1);
        for (x, o) in row.iter_mut().enumerate() {
            *o = src[sy * sw + ((x * sw) / dw).min(sw - 1)];
        }
    });
    out
}

/// The rim's colour and its strength over the tissue at its centre line.
const RIM_COLOUR: [f32; 3] = [0.96, 0.74, 0.52];
const RIM_ALPHA: f32 = 0.5;

#[inline]
fn hash_noise(seed: u32, x: u32, y: u32) -> f32 {
    let mut h = seed ^ x.wrapping_mul(0x8da6_b343) ^ y.wrapping_mul(0xd816_3841);
    h ^= h >> 13;
    h = h.wrapping_mul(0x5bd1_e995);
    h ^= h >> 15;
    (h & 0xffff) as f32 / 65535.0
}

/// The last steps, at output resolution: sharpening halo, warm cast, vignetting,
/// sensor and block noise, the field stop with its bright rim, and a burned-in logo.
pub(crate) fn finish(
    rgb: &mut [f32],
    mask: &mut [u8],
    spec: &SceneSpec,
    state: &FrameState,
    geo: &ScopeGeometry,
    w: u32,
    h: u32,
) {
    let o = &spec.optics;
    let mut soft = rgb.to_vec();
    blur(&mut soft, w, h, 1.4 * h as f32 / 1080.0);
    let frame_seed = (spec.seed as u32) ^ ((state.time_s * 1000.0) as u32).wrapping_mul(0x9E37);
    let rim = (o.rim_px * h as f32 / 1080.0).max(1.0);
    let wu = w as usize;
    rgb.par_chunks_mut(wu * 3)
        .zip(mask.par_chunks_mut(wu))
        .zip(soft.par_chunks(wu * 3))
        .enumerate()
        .for_each(|(y, ((row, labels), soft_row))| {
            for x in 0..wu {
                let (dx, dy) = (x as f32 + 0.5 - geo.cx, y as f32 + 0.5 - geo.cy);
                let d_px = (dx * dx + dy * dy).sqrt();
                let r = d_px / geo.radius;
                let p = &mut row[x * 3..x * 3 + 3];
                let n = (hash_noise(frame_seed, x as u32, y as u32)
                    + hash_noise(frame_seed ^ 0xA5, x as u32, y as u32)
                    - 1.0)
                    * o.noise
                    * 2.0;
                let black = 0.012 * hash_noise(frame_seed ^ 0x77, x as u32, y as u32);
                if d_px > geo.radius + geo.edge {
                    labels[x] = 0;
                    p.fill(black);
                    continue;
                }
                let block = 0.5
                    * o.noise
                    * perlin(frame_seed, (x / 8) as f32 * 0.71, (y / 8) as f32 * 0.71);
                // Vignetting over the whole field, steeper over its outer 15 %.
                let vig = (1.0 - o.vignette * r.powf(2.4))
                    * (1.0 - o.rim_falloff * smoothstep(0.85, 1.0, r));
                let cast = [1.0, o.warm_g, o.warm_b];
                for c in 0..3 {
                    let sharp = p[c] + o.sharpen * (p[c] - soft_row[x * 3 + c]);
                    p[c] = sharp * o.exposure * vig * cast[c] + n + block;
                }
                // The pale-orange rim lining the field stop, as soft as the stop itself,
                // then the stop's out-of-focus edge down to the black surround.
                let sigma = (rim * 0.5).max(geo.edge * 0.6);
                let ring = (-0.5 * ((d_px - (geo.radius - rim * 0.5)) / sigma).powi(2)).exp();
                let stop = smoothstep(geo.radius + geo.edge, geo.radius - geo.edge, d_px);
                let lit = mix3([p[0], p[1], p[2]], RIM_COLOUR, ring * RIM_ALPHA);
                let mixed = mix3([black; 3], lit, stop);
                p.copy_from_slice(&mixed);
                // Masks follow the circle: the rim and everything outside it, the soft
                // edge's dim outer half included, are background.
                if d_px > geo.radius - rim {
                    labels[x] = 0;
                }
            }
        });
    if o.logo {
        draw_logo(rgb, wu, h as usize, geo, spec.seed);
    }
}

/// A tower's burned-in logo: a ring and two bars in the black band's top-left corner.
fn draw_logo(rgb: &mut [f32], w: usize, h: usize, geo: &ScopeGeometry, seed: u64) {
    let unit = (h as f32 / 1080.0 * 6.0).max(2.0);
    let (ox, oy) = (unit * 5.0, unit * 5.0);
    if ox + unit * 30.0 > geo.cx - geo.radius {
        return; // No black band wide enough (square crop).
    }
    let grey = 0.55 + 0.2 * (seed % 3) as f32 / 2.0;
    for y in 0..(unit * 8.0) as usize {
        for x in 0..(unit * 30.0) as usize {
            let (fx, fy) = (x as f32 / unit, y as f32 / unit);
            let ring = ((fx - 4.0).powi(2) + (fy - 4.0).powi(2)).sqrt();
            let on = (ring - 3.0).abs() < 0.7
                || ((9.0..29.0).contains(&fx)
                    && ((1.5..3.0).contains(&fy) || (5.0..6.5).contains(&fy) && fx < 22.0));
            if on {
                let (px, py) = (ox as usize + x, oy as usize + y);
                if px < w && py < h {
                    let i = (py * w + px) * 3;
                    rgb[i..i + 3].fill(grey);
                }
            }
        }
    }
}
