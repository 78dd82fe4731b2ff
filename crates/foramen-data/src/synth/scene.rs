//! What a scene is made of, drawn once from its seed, and how it moves over a clip.

use crate::noise::Rng;

use super::FrameState;

/// Number of tissue types in the world model (bone, ligament, disc, dura, fat, muscle).
pub const TISSUES: usize = 6;

/// One tissue's share of the world: a noise field whose argmax across tissues decides
/// which tissue is where.
#[derive(Clone, Debug)]
pub struct TissueField {
    /// Constant added to the field: larger means more of this tissue.
    pub bias: f32,
    /// Spatial frequency in cycles per view radius.
    pub freq: f32,
    /// Noise seed.
    pub seed: u32,
}

/// Kind of instrument in view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstrumentKind {
    /// The working-channel cannula's tip: a large dark occluding crescent at the rim.
    Cannula,
    /// Grasping forceps: gold-cast metal shaft with two jaws.
    Forceps,
    /// Shaver or burr shaft: plain metal shaft with a toothed window.
    Shaver,
    /// Bipolar radio-frequency probe: thin shaft, white ceramic tip, metal ring electrode.
    RfProbe,
}

/// An instrument in scope coordinates (the unit circle is the field of view).
#[derive(Clone, Debug)]
pub struct Instrument {
    /// Which instrument.
    pub kind: InstrumentKind,
    /// Angle of the rim point it enters from, radians.
    pub entry_angle: f32,
    /// Deviation of its axis from the line through the centre, radians.
    pub skew: f32,
    /// How far it reaches from the rim, in view radii.
    pub depth: f32,
    /// Shaft width in view radii.
    pub width: f32,
    /// Jaw opening 0..1 (forceps).
    pub opening: f32,
}

/// Blood in the saline.
#[derive(Clone, Debug)]
pub struct Bleeding {
    /// Red haze strength 0..1.
    pub haze: f32,
    /// Streak strength 0..1.
    pub streaks: f32,
    /// Chance that a clot cell holds a clot.
    pub clots: f32,
    /// Streak direction, radians.
    pub streak_angle: f32,
}

/// Lens, light and video chain.
#[derive(Clone, Debug)]
pub struct Optics {
    /// Depth-of-field blur sigma, in pixels at 1080 lines.
    pub blur_sigma: f32,
    /// Brightness fall-off toward the rim, 0..1.
    pub vignette: f32,
    /// Overall exposure multiplier.
    pub exposure: f32,
    /// Warm cast: multipliers for G and B relative to R.
    pub warm_g: f32,
    /// See `warm_g`.
    pub warm_b: f32,
    /// Unsharp-mask amount (broadcast sharpening halo).
    pub sharpen: f32,
    /// Sensor and compression noise sigma, 0..1 units.
    pub noise: f32,
    /// Field-stop diameter as a fraction of frame height.
    pub circle_frac: f32,
    /// Horizontal offset of the circle centre, fraction of frame height.
    pub circle_dx: f32,
    /// Width of the bright rim in pixels at 1080 lines.
    pub rim_px: f32,
    /// Width of the field stop's soft edge (light from full to none, centred on the
    /// circle) as a fraction of the circle's radius: real stops are out of focus.
    pub edge_frac: f32,
    /// Extra fall-off of brightness over the outer 15 % of the radius, 0..1, on top of
    /// `vignette` (the light guide's and the lens's fall-off at the field's edge).
    pub rim_falloff: f32,
    /// Burn a tower logo into the top-left corner.
    pub logo: bool,
}

/// A floating fleck, fragment or bubble in scope coordinates.
#[derive(Clone, Debug)]
pub struct Debris {
    /// Position at t = 0.
    pub pos: (f32, f32),
    /// Drift in view radii per second.
    pub vel: (f32, f32),
    /// Radius in view radii.
    pub radius: f32,
    /// 0 white fleck, 1 tissue fragment, 2 air bubble.
    pub kind: u8,
}

/// Everything about a scene that does not change over time.
#[derive(Clone, Debug)]
pub struct SceneSpec {
    /// The seed it was drawn from.
    pub seed: u64,
    /// Fields for bone, ligament, disc, dura, fat, muscle.
    pub fields: [TissueField; TISSUES],
    /// Seed of the domain warp that makes borders organic.
    pub warp_seed: u32,
    /// Warp strength in view radii.
    pub warp: f32,
    /// Texture seed.
    pub tex_seed: u32,
    /// Ligament fibre direction, radians.
    pub fibre_angle: f32,
    /// Burr-track direction on cancellous bone, radians.
    pub burr_angle: f32,
    /// How much of the bone is burred (cancellous) rather than cortical, -1..1.
    pub cancellous: f32,
    /// Centre of the annulus lamellae in world coordinates.
    pub annulus_centre: (f32, f32),
    /// Blood.
    pub bleeding: Bleeding,
    /// Instruments at t = 0.
    pub instruments: Vec<Instrument>,
    /// Floating debris.
    pub debris: Vec<Debris>,
    /// Optics.
    pub optics: Optics,
    /// Camera at t = 0.
    pub camera: Camera,
}

/// Maps scope coordinates (unit circle = field of view) to world coordinates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// World point at the view centre.
    pub centre: (f32, f32),
    /// Scope roll, radians.
    pub angle: f32,
    /// Magnification: 2 shows half the world width of 1.
    pub zoom: f32,
}

impl Camera {
    /// World coordinates of scope point (u, v).
    #[inline]
    pub fn world_from_scope(&self, u: f32, v: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let (u, v) = (u / self.zoom, v / self.zoom);
        (self.centre.0 + c * u - s * v, self.centre.1 + s * u + c * v)
    }

    /// Scope coordinates of world point (x, y); inverse of [`Camera::world_from_scope`].
    pub fn scope_from_world(&self, x: f32, y: f32) -> (f32, f32) {
        let (s, c) = self.angle.sin_cos();
        let (dx, dy) = (x - self.centre.0, y - self.centre.1);
        (
            (c * dx + s * dy) * self.zoom,
            (-s * dx + c * dy) * self.zoom,
        )
    }
}

impl SceneSpec {
    /// Draws a scene from `seed`; the same seed always gives the same scene.
    pub fn from_seed(seed: u64) -> Self {
        let mut r = Rng::new(seed);
        let mut s32 = || (r.next_u64() >> 32) as u32;
        let seeds: [u32; TISSUES + 2] = std::array::from_fn(|_| s32());
        let mut r = Rng::new(seed.wrapping_mul(31).wrapping_add(7));

        // One dominant structure, usually one of the three classes the model learns;
        // each other tissue present or pushed out of view.
        let dominant = if r.chance(0.85) {
            r.below(3)
        } else {
            3 + r.below(3)
        };
        let fields = std::array::from_fn(|i| {
            let bias = if i == dominant {
                r.range(0.1, 0.22)
            } else if r.chance(if i < 3 { 0.15 } else { 0.4 }) {
                -1.5
            } else {
                r.range(-0.15, 0.08)
            };
            TissueField {
                bias,
                freq: r.range(0.9, 1.7),
                seed: seeds[i],
            }
        });

        let instruments = random_instruments(&mut r);
        let debris = random_debris(&mut r);
        // The field stop's edge has its own generator: scenes keep their other draws.
        let optics = random_optics(&mut r, &mut Rng::new(seed ^ 0x0ED6_E5ED));

        Self {
            seed,
            fields,
            warp_seed: seeds[TISSUES],
            warp: r.range(0.2, 0.45),
            tex_seed: seeds[TISSUES + 1],
            fibre_angle: r.range(0.0, std::f32::consts::PI),
            burr_angle: r.range(0.0, std::f32::consts::PI),
            cancellous: r.range(-0.4, 0.5),
            annulus_centre: (r.range(-3.0, 3.0), r.range(-3.0, 3.0)),
            bleeding: Bleeding {
                haze: if r.chance(0.6) {
                    r.range(0.1, 0.55)
                } else {
                    0.0
                },
                streaks: if r.chance(0.4) {
                    r.range(0.2, 0.7)
                } else {
                    0.0
                },
                clots: if r.chance(0.3) {
                    r.range(0.05, 0.25)
                } else {
                    0.0
                },
                streak_angle: r.range(0.0, std::f32::consts::PI),
            },
            instruments,
            debris,
            optics,
            camera: Camera {
                centre: (r.range(-20.0, 20.0), r.range(-20.0, 20.0)),
                angle: r.range(0.0, std::f32::consts::TAU),
                zoom: r.range(0.8, 1.3),
            },
        }
    }

    /// The frame state at t = 0 (no motion).
    pub fn initial_state(&self) -> FrameState {
        FrameState {
            camera: self.camera,
            instruments: self.instruments.clone(),
            time_s: 0.0,
            motion_px: (0.0, 0.0),
        }
    }
}

/// The scene's cannula (sometimes) and tools (none, one or two).
fn random_instruments(r: &mut Rng) -> Vec<Instrument> {
    let mut instruments = Vec::new();
    if r.chance(0.55) {
        instruments.push(Instrument {
            kind: InstrumentKind::Cannula,
            entry_angle: r.range(0.0, std::f32::consts::TAU),
            skew: 0.0,
            depth: r.range(0.12, 0.45),
            width: 0.0,
            opening: 0.0,
        });
    }
    let tools = if r.chance(0.6) {
        1 + usize::from(r.chance(0.25))
    } else {
        0
    };
    for _ in 0..tools {
        let kind = match r.below(3) {
            0 => InstrumentKind::Forceps,
            1 => InstrumentKind::Shaver,
            _ => InstrumentKind::RfProbe,
        };
        instruments.push(Instrument {
            kind,
            entry_angle: r.range(0.0, std::f32::consts::TAU),
            skew: r.range(-0.35, 0.35),
            depth: r.range(0.45, 1.25),
            width: if kind == InstrumentKind::RfProbe {
                r.range(0.09, 0.14)
            } else {
                r.range(0.16, 0.28)
            },
            opening: r.range(0.0, 1.0),
        });
    }
    instruments
}

/// Floating debris: bubbles, tissue flakes and blood cells.
fn random_debris(r: &mut Rng) -> Vec<Debris> {
    (0..r.below(14) + 4)
        .map(|_| {
            let kind = match r.unit() {
                x if x < 0.7 => 0,
                x if x < 0.88 => 1,
                _ => 2,
            };
            Debris {
                pos: (r.range(-1.0, 1.0), r.range(-1.0, 1.0)),
                vel: (r.range(-0.15, 0.15), r.range(-0.15, 0.15)),
                radius: match kind {
                    0 => r.range(0.004, 0.012),
                    1 => r.range(0.01, 0.03),
                    _ => r.range(0.012, 0.05),
                },
                kind,
            }
        })
        .collect()
}

/// The scope's optics: blur, vignette, exposure, colour, noise, the image circle and rim.
fn random_optics(r: &mut Rng, edge: &mut Rng) -> Optics {
    Optics {
        blur_sigma: r.range(1.7, 2.8),
        vignette: r.range(0.35, 0.6),
        exposure: r.range(0.88, 1.08),
        warm_g: r.range(0.9, 0.96),
        warm_b: r.range(0.8, 0.9),
        sharpen: r.range(0.25, 0.6),
        noise: r.range(0.005, 0.0085),
        circle_frac: r.range(0.975, 1.0),
        circle_dx: r.range(-0.01, 0.01),
        rim_px: r.range(1.0, 3.0),
        edge_frac: edge.range(0.01, 0.02),
        rim_falloff: edge.range(0.25, 0.45),
        logo: r.chance(0.35),
    }
}

/// Smooth scope motion over a clip: pan, roll and zoom as sums of slow sines, and
/// instruments sliding in and out.
#[derive(Clone, Debug)]
pub struct Trajectory {
    spec: SceneSpec,
    pan: [(f32, f32, f32); 3],
    roll: (f32, f32, f32),
    zoom: (f32, f32, f32),
}

impl Trajectory {
    /// A trajectory for `spec`, drawn from its seed.
    pub fn new(spec: SceneSpec) -> Self {
        let mut r = Rng::new(spec.seed ^ 0x5EED_CAFE);
        let mut osc = |amp: f32, f_lo: f32, f_hi: f32| {
            (
                amp * r.range(0.6, 1.0),
                r.range(f_lo, f_hi),
                r.range(0.0, std::f32::consts::TAU),
            )
        };
        // Amplitudes in view radii (pan), radians (roll) and relative zoom; frequencies
        // in Hz, slow enough to look like a surgeon's hand, fast enough that tissue
        // enters and leaves the view within a few seconds.
        let pan = [
            osc(1.1, 0.05, 0.11),
            osc(1.1, 0.05, 0.11),
            osc(0.25, 0.2, 0.35),
        ];
        let roll = osc(0.6, 0.04, 0.09);
        let zoom = osc(0.22, 0.06, 0.13);
        Self {
            spec,
            pan,
            roll,
            zoom,
        }
    }

    /// The scene.
    pub fn spec(&self) -> &SceneSpec {
        &self.spec
    }

    fn camera_at(&self, t: f32) -> Camera {
        let wave = |(a, f, p): (f32, f32, f32)| a * (std::f32::consts::TAU * f * t + p).sin();
        let base = self.spec.camera;
        let zoom = base.zoom * (1.0 + wave(self.zoom));
        Camera {
            centre: (
                base.centre.0 + wave(self.pan[0]) + wave(self.pan[2]),
                base.centre.1
                    + wave(self.pan[1])
                    + wave((self.pan[2].0, self.pan[2].1 * 1.3, self.pan[2].2 + 1.0)),
            ),
            angle: base.angle + wave(self.roll),
            zoom,
        }
    }

    /// The state at `t` seconds; `dt` is the frame interval (for motion blur), and
    /// `height_px` the output height that motion is measured in.
    pub fn state_at(&self, t: f32, dt: f32, height_px: u32) -> FrameState {
        let camera = self.camera_at(t);
        let before = self.camera_at(t - dt);
        // Screen motion of the world point now at the view centre, in output pixels.
        let (wx, wy) = camera.world_from_scope(0.0, 0.0);
        let (u, v) = before.scope_from_world(wx, wy);
        let r_px = height_px as f32 / 2.0;
        let motion_px = (-u * r_px, -v * r_px);
        let instruments = self
            .spec
            .instruments
            .iter()
            .enumerate()
            .map(|(i, ins)| {
                let phase = i as f32 * 1.7 + self.spec.seed as f32 % 5.0;
                let mut ins = ins.clone();
                ins.depth = (ins.depth + 0.28 * (0.35 * t + phase).sin()).max(0.05);
                ins.entry_angle += 0.12 * (0.17 * t + phase).sin();
                ins.opening = 0.5 + 0.5 * (0.9 * t + phase).sin();
                ins
            })
            .collect();
        FrameState {
            camera,
            instruments,
            time_s: t,
            motion_px,
        }
    }
}
