//! Tissue layout and surface appearance in world coordinates.

use crate::noise::{billow, fbm, perlin, ridged, smoothstep, worley};

use super::scene::{SceneSpec, TISSUES};

/// Tissue types of the world model; the first three are the classes Foramen learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tissue {
    /// Superior articular process, pedicle, lamina: cortical and burred cancellous.
    Bone,
    /// Ligamentum flavum.
    Ligament,
    /// Annulus fibrosus and herniated nucleus.
    Disc,
    /// Dura and nerve root (a distractor, labelled background).
    Dura,
    /// Epidural fat (distractor).
    Fat,
    /// Muscle and soft tissue (distractor).
    Muscle,
}

impl Tissue {
    const ALL: [Tissue; TISSUES] = [
        Tissue::Bone,
        Tissue::Ligament,
        Tissue::Disc,
        Tissue::Dura,
        Tissue::Fat,
        Tissue::Muscle,
    ];

    /// Mask value: 1 bone, 2 ligament, 3 disc, 0 for distractors.
    pub fn class_index(self) -> u8 {
        match self {
            Tissue::Bone => 1,
            Tissue::Ligament => 2,
            Tissue::Disc => 3,
            _ => 0,
        }
    }
}

/// Surface at one world point.
pub struct Sample {
    /// Diffuse colour, 0..1 RGB.
    pub albedo: [f32; 3],
    /// Relief for shading (arbitrary units, ~0..1).
    pub height: f32,
    /// Specular strength 0..1.
    pub gloss: f32,
    /// Which tissue (clots override it to background in [`Sample::tissue`]'s label).
    pub tissue: Label,
}

/// Label of a sample: a tissue, or blood clot (background).
#[derive(Clone, Copy)]
pub enum Label {
    /// Visible tissue.
    Tissue(Tissue),
    /// A clot hides the tissue below.
    Clot,
}

impl Label {
    /// Mask value.
    pub fn class_index(self) -> u8 {
        match self {
            Label::Tissue(t) => t.class_index(),
            Label::Clot => 0,
        }
    }
}

#[inline]
fn mix(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    let t = t.clamp(0.0, 1.0);
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

#[inline]
fn rotate(x: f32, y: f32, angle: f32) -> (f32, f32) {
    let (s, c) = angle.sin_cos();
    (c * x + s * y, -s * x + c * y)
}

/// Which tissue wins at (x, y), and by what margin over the runner-up (the ligament's
/// fibres fray near its border).
fn winning_tissue(spec: &SceneSpec, x: f32, y: f32) -> (Tissue, f32) {
    // Domain warp: borders become organic folds instead of noise blobs.
    let ws = spec.warp_seed;
    let wx = x + spec.warp * fbm(ws, x * 0.6, y * 0.6, 2, 0.5);
    let wy = y + spec.warp * fbm(ws ^ 0xABCD, x * 0.6 + 5.2, y * 0.6 - 1.3, 2, 0.5);

    let (mut best, mut second, mut best_i) = (f32::MIN, f32::MIN, 0usize);
    for (i, f) in spec.fields.iter().enumerate() {
        if f.bias < -1.0 {
            continue;
        }
        let mut s = f.bias + fbm(f.seed, wx * f.freq, wy * f.freq, 3, 0.45);
        // Each tissue's border has its own character: fluffy disc, ridged bone,
        // frayed ligament fibres.
        s += match Tissue::ALL[i] {
            Tissue::Disc => 0.09 * (billow(f.seed ^ 0x55, x * 9.0, y * 9.0, 3) - 0.45),
            Tissue::Bone => 0.05 * ridged(f.seed ^ 0x77, x * 5.0, y * 5.0, 2),
            Tissue::Ligament => {
                let (a, b) = rotate(x, y, spec.fibre_angle);
                0.06 * perlin(f.seed ^ 0x99, a * 2.0, b * 22.0)
            }
            _ => 0.0,
        };
        if s > best {
            second = best;
            best = s;
            best_i = i;
        } else if s > second {
            second = s;
        }
    }
    (Tissue::ALL[best_i], best - second)
}

/// Blood diffusing in saline over `albedo` at time `t`: haze and streaks tint the
/// tissue; a clot hides it (its label becomes [`Label::Clot`]).
fn bleed(spec: &SceneSpec, x: f32, y: f32, t: f32, albedo: [f32; 3]) -> ([f32; 3], bool) {
    let b = &spec.bleeding;
    let ts = spec.tex_seed;
    let mut albedo = albedo;
    if b.haze > 0.0 {
        // Drifts with time.
        let h = smoothstep(
            0.05,
            0.6,
            fbm(ts ^ 0xB100D, x * 0.8 + 0.05 * t, y * 0.8 - 0.03 * t, 3, 0.5) + 0.15,
        );
        albedo = mix(albedo, [0.62, 0.13, 0.1], h * b.haze * 0.7);
    }
    if b.streaks > 0.0 {
        let (a, c) = rotate(x, y, b.streak_angle);
        // Wisps drawn out by the irrigation flow: long along the flow, soft across it.
        let core = ridged(
            ts ^ 0x57EA,
            a * 0.6 + 0.1 * t,
            c * 2.4 + 0.4 * fbm(ts ^ 0x57EB, a * 1.5, c, 2, 0.5),
            3,
        );
        let s = smoothstep(0.7, 0.95, core)
            * smoothstep(-0.2, 0.3, fbm(ts ^ 0x57EC, a * 0.8, c * 0.8, 2, 0.5));
        albedo = mix(albedo, [0.7, 0.14, 0.1], s * b.streaks * 0.8);
    }
    if b.clots > 0.0 {
        let (f1, _, id) = worley(ts ^ 0xC107, x * 2.2, y * 2.2);
        let edge = 0.18 + 0.06 * perlin(ts ^ 0xC108, x * 12.0, y * 12.0);
        if id < b.clots && f1 < edge {
            let clot = mix(
                [0.42, 0.05, 0.05],
                [0.25, 0.02, 0.03],
                fbm(ts ^ 0xC109, x * 20.0, y * 20.0, 2, 0.5) + 0.5,
            );
            return (clot, true);
        }
    }
    (albedo, false)
}

/// Samples the world at (x, y) (view radius = 1 at zoom 1) at time `t` seconds.
pub fn sample_world(spec: &SceneSpec, x: f32, y: f32, t: f32) -> Sample {
    let (tissue, margin) = winning_tissue(spec, x, y);
    let ts = spec.tex_seed;
    let (albedo, height, gloss) = match tissue {
        Tissue::Bone => bone(spec, ts, x, y),
        Tissue::Ligament => ligament(spec, ts, x, y, margin),
        Tissue::Disc => disc(spec, ts, x, y),
        Tissue::Dura => dura(ts, x, y),
        Tissue::Fat => fat(ts, x, y),
        Tissue::Muscle => muscle(ts, x, y),
    };
    // Blood tints but does not hide tissue, except where it has clotted.
    let (albedo, clot) = bleed(spec, x, y, t, albedo);
    Sample {
        albedo,
        height,
        gloss,
        tissue: if clot {
            Label::Clot
        } else {
            Label::Tissue(tissue)
        },
    }
}

fn bone(spec: &SceneSpec, ts: u32, x: f32, y: f32) -> ([f32; 3], f32, f32) {
    // Where the burr has worked, cancellous bone shows through the cortex.
    let canc = smoothstep(
        -0.12,
        0.2,
        fbm(ts ^ 0xB0, x * 1.6, y * 1.6, 3, 0.5) + spec.cancellous,
    );
    let cort_var = fbm(ts ^ 0xB1, x * 4.0, y * 4.0, 3, 0.5);
    let cortical = mix([0.93, 0.85, 0.71], [0.84, 0.72, 0.58], 0.5 + cort_var);

    let mott = fbm(ts ^ 0xB2, x * 16.0, y * 16.0, 3, 0.55);
    let mut canc_col = mix(
        [0.84, 0.56, 0.38],
        [0.56, 0.27, 0.19],
        smoothstep(-0.35, 0.4, mott),
    );
    let jx = x * 30.0 + 0.6 * fbm(ts ^ 0xB6, x * 9.0, y * 9.0, 2, 0.5);
    let jy = y * 30.0 + 0.6 * fbm(ts ^ 0xB7, x * 9.0, y * 9.0, 2, 0.5);
    let (f1, _, id) = worley(ts ^ 0xB3, jx, jy);
    let pore =
        (1.0 - smoothstep(0.05 + 0.25 * id, 0.2 + 0.3 * id, f1)) * f32::from(u8::from(id < 0.7));
    let pore_col = if id < 0.45 {
        [0.5, 0.07, 0.05]
    } else {
        [0.3, 0.12, 0.09]
    };
    canc_col = mix(canc_col, pore_col, pore * 0.85);
    let speck = smoothstep(0.5, 0.62, perlin(ts ^ 0xB4, x * 70.0, y * 70.0));
    canc_col = mix(canc_col, [0.98, 0.88, 0.74], speck * 0.8);

    let (a, _) = rotate(x, y, spec.burr_angle);
    let ridge =
        (std::f32::consts::TAU * (a * 9.0 + 0.8 * fbm(ts ^ 0xB5, x * 2.0, y * 2.0, 2, 0.5))).sin();
    let h_canc = 0.35 * mott - 0.7 * pore + 0.15 * ridge;
    let h_cort = 0.25 * cort_var + 0.08 * ridge;
    (
        mix(cortical, canc_col, canc),
        h_cort + (h_canc - h_cort) * canc,
        0.28 - 0.18 * canc,
    )
}

fn ligament(spec: &SceneSpec, ts: u32, x: f32, y: f32, margin: f32) -> ([f32; 3], f32, f32) {
    let bend = 0.35 * fbm(ts ^ 0x11, x * 0.7, y * 0.7, 2, 0.5);
    let (a, b) = rotate(x, y, spec.fibre_angle + bend);
    // Parallel striations, wavy along the fibre, in sheets layered like folded paper.
    let fibre_phase = b * 42.0 + 0.45 * fbm(ts ^ 0x12, a * 0.8, b * 2.0, 3, 0.5);
    let fibres = 0.5 + 0.5 * (std::f32::consts::TAU * fibre_phase).sin();
    let fine = 0.5 + 0.5 * perlin(ts ^ 0x13, a * 4.0, b * 140.0);
    let sheet = b * 1.6 + 0.35 * fbm(ts ^ 0x14, a * 0.6, b * 1.0, 2, 0.5);
    let fold = sheet - sheet.floor();
    let base = mix(
        [0.95, 0.84, 0.58],
        [0.86, 0.72, 0.48],
        0.5 + fbm(ts ^ 0x15, x * 3.0, y * 3.0, 2, 0.5),
    );
    let shade = 0.86 + 0.1 * fibres + 0.05 * fine - 0.12 * smoothstep(0.85, 1.0, fold);
    let mut col = base.map(|c| c * shade);
    // Cut edges fray into fluffy white strands.
    let fray = (1.0 - smoothstep(0.0, 0.07, margin)) * smoothstep(0.55, 0.95, fine * fibres);
    col = mix(col, [0.98, 0.94, 0.86], fray);
    (col, 0.3 * fibres + 0.45 * fold + 0.1 * fine, 0.32)
}

fn disc(spec: &SceneSpec, ts: u32, x: f32, y: f32) -> ([f32; 3], f32, f32) {
    let fluff = billow(ts ^ 0xD1, x * 6.5, y * 6.5, 4);
    let (cx, cy) = spec.annulus_centre;
    let r = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt();
    let lam =
        (std::f32::consts::TAU * (r * 8.0 + 0.7 * fbm(ts ^ 0xD2, x * 2.0, y * 2.0, 2, 0.5))).sin();
    // Annulus (lamellae) in some places, herniated nucleus (cotton) in others.
    let annulus = smoothstep(-0.1, 0.3, fbm(ts ^ 0xD3, x * 1.2, y * 1.2, 2, 0.5));
    let threads = smoothstep(0.9, 0.98, ridged(ts ^ 0xD4, x * 26.0, y * 26.0, 2));
    let cotton = mix([0.84, 0.74, 0.62], [0.98, 0.92, 0.82], fluff.powf(0.6));
    let mut col = mix(cotton, cotton.map(|c| c * (0.9 + 0.07 * lam)), annulus);
    col = mix(col, [1.0, 0.95, 0.87], threads * 0.6);
    (col, 0.8 * fluff + 0.25 * lam * annulus, 0.55)
}

fn dura(ts: u32, x: f32, y: f32) -> ([f32; 3], f32, f32) {
    let v = fbm(ts ^ 0xDA, x * 2.5, y * 2.5, 3, 0.5);
    let mut col = mix([0.86, 0.72, 0.72], [0.78, 0.72, 0.8], 0.5 + v);
    let vessel = smoothstep(0.93, 0.985, ridged(ts ^ 0xDB, x * 4.0, y * 4.0, 3));
    col = mix(col, [0.74, 0.16, 0.16], vessel * 0.85);
    (col, 0.2 * v, 0.5)
}

fn fat(ts: u32, x: f32, y: f32) -> ([f32; 3], f32, f32) {
    // Globules of uneven size: a warped cell pattern, creases soft and shallow.
    let gx = x * 11.0 + 0.5 * fbm(ts ^ 0xFB, x * 2.0, y * 2.0, 2, 0.5);
    let gy = y * 11.0 + 0.5 * fbm(ts ^ 0xFC, x * 2.0, y * 2.0, 2, 0.5);
    let (f1, f2, id) = worley(ts ^ 0xFA, gx, gy);
    let crease = 1.0 - smoothstep(0.0, 0.25, f2 - f1);
    let col = mix([0.96, 0.76, 0.42], [0.9, 0.62, 0.32], id).map(|c| c * (1.0 - 0.18 * crease));
    (
        col,
        (1.0 - f1 * 1.3).max(0.0).sqrt() * 0.8 - 0.15 * crease,
        0.9,
    )
}

fn muscle(ts: u32, x: f32, y: f32) -> ([f32; 3], f32, f32) {
    let v = fbm(ts ^ 0x3A, x * 3.0, y * 3.0, 3, 0.5);
    let fib = perlin(ts ^ 0x3B, x * 3.0, y * 30.0);
    let col = mix([0.9, 0.55, 0.47], [0.76, 0.41, 0.37], 0.5 + v + 0.1 * fib);
    (col, 0.2 * v + 0.05 * fib, 0.35)
}
