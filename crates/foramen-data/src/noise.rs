//! Seeded procedural noise: gradient (Perlin) noise, fractal sums, and cellular noise.
//!
//! Written here rather than pulled in so that every value is a pure function of the seed
//! and the coordinates on every platform: a scene must render identically in CI.

/// SplitMix64: a small, high-quality deterministic generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p
    }

    /// Uniform integer in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Hashes integer lattice coordinates with a seed into 32 bits.
#[inline]
fn hash2(seed: u32, x: i32, y: i32) -> u32 {
    let mut h = seed ^ (x as u32).wrapping_mul(0x27d4_eb2d) ^ (y as u32).wrapping_mul(0x1656_67b1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[inline]
fn fade(t: f32) -> f32 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

#[inline]
fn grad(h: u32, dx: f32, dy: f32) -> f32 {
    // Eight gradient directions (unit axes and diagonals scaled to similar length).
    match h & 7 {
        0 => dx + dy,
        1 => dx - dy,
        2 => -dx + dy,
        3 => -dx - dy,
        4 => std::f32::consts::SQRT_2 * dx,
        5 => -std::f32::consts::SQRT_2 * dx,
        6 => std::f32::consts::SQRT_2 * dy,
        _ => -std::f32::consts::SQRT_2 * dy,
    }
}

/// Hermite step from 0 at `e0` to 1 at `e1` (either order), clamped.
#[inline]
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// 2-D gradient noise in roughly [-1, 1], zero at lattice points.
#[inline]
pub fn perlin(seed: u32, x: f32, y: f32) -> f32 {
    let xf = x.floor();
    let yf = y.floor();
    let (xi, yi) = (xf as i32, yf as i32);
    let (dx, dy) = (x - xf, y - yf);
    let (u, v) = (fade(dx), fade(dy));
    let n00 = grad(hash2(seed, xi, yi), dx, dy);
    let n10 = grad(hash2(seed, xi + 1, yi), dx - 1.0, dy);
    let n01 = grad(hash2(seed, xi, yi + 1), dx, dy - 1.0);
    let n11 = grad(hash2(seed, xi + 1, yi + 1), dx - 1.0, dy - 1.0);
    let nx0 = n00 + u * (n10 - n00);
    let nx1 = n01 + u * (n11 - n01);
    (nx0 + v * (nx1 - nx0)) * 0.72
}

/// Fractal Brownian motion: `octaves` of [`perlin`], each at double frequency and
/// `gain` amplitude; normalised to roughly [-1, 1].
#[inline]
pub fn fbm(seed: u32, x: f32, y: f32, octaves: u32, gain: f32) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * perlin(seed.wrapping_add(o * 1013), x * f, y * f);
        norm += amp;
        amp *= gain;
        f *= 2.03;
    }
    sum / norm
}

/// "Billow" noise: fractal sum of |perlin|, cotton-like puffs in [0, 1].
#[inline]
pub fn billow(seed: u32, x: f32, y: f32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        sum += amp * perlin(seed.wrapping_add(o * 7919), x * f, y * f).abs();
        norm += amp;
        amp *= 0.5;
        f *= 2.1;
    }
    (sum / norm * 1.8).min(1.0)
}

/// Ridged noise: thin bright lines where perlin crosses zero, in [0, 1].
#[inline]
pub fn ridged(seed: u32, x: f32, y: f32, octaves: u32) -> f32 {
    let (mut sum, mut amp, mut norm, mut f) = (0.0, 1.0, 0.0, 1.0);
    for o in 0..octaves {
        let r = 1.0 - perlin(seed.wrapping_add(o * 4099), x * f, y * f).abs();
        sum += amp * r * r;
        norm += amp;
        amp *= 0.5;
        f *= 2.0;
    }
    sum / norm
}

/// Cellular (Worley) noise: distance to the nearest feature point (F1), the second
/// nearest (F2), and a random value of the nearest cell in [0, 1).
#[inline]
pub fn worley(seed: u32, x: f32, y: f32) -> (f32, f32, f32) {
    let (xi, yi) = (x.floor() as i32, y.floor() as i32);
    let (mut f1, mut f2, mut id) = (f32::MAX, f32::MAX, 0u32);
    for cy in yi - 1..=yi + 1 {
        for cx in xi - 1..=xi + 1 {
            let h = hash2(seed, cx, cy);
            let px = cx as f32 + (h & 0xffff) as f32 / 65536.0;
            let py = cy as f32 + (h >> 16) as f32 / 65536.0;
            let d = (px - x) * (px - x) + (py - y) * (py - y);
            if d < f1 {
                f2 = f1;
                f1 = d;
                id = h;
            } else if d < f2 {
                f2 = d;
            }
        }
    }
    (
        f1.sqrt(),
        f2.sqrt(),
        (hash2(id, 17, 31) >> 8) as f32 / (1u32 << 24) as f32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perlin_is_bounded_and_varies() {
        let mut lo = f32::MAX;
        let mut hi = f32::MIN;
        for i in 0..10_000 {
            let v = perlin(7, i as f32 * 0.137, i as f32 * 0.071 + 3.3);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        assert!(lo > -1.01 && hi < 1.01, "{lo}..{hi}");
        assert!(hi - lo > 0.8, "noise should span a wide range: {lo}..{hi}");
        assert_eq!(perlin(7, 3.0, 5.0), 0.0, "zero at lattice points");
    }

    #[test]
    fn seeds_differ_and_repeat() {
        assert_eq!(fbm(1, 0.3, 0.7, 4, 0.5), fbm(1, 0.3, 0.7, 4, 0.5));
        assert_ne!(fbm(1, 0.3, 0.7, 4, 0.5), fbm(2, 0.3, 0.7, 4, 0.5));
        let mut a = Rng::new(5);
        let mut b = Rng::new(5);
        assert_eq!(a.next_u64(), b.next_u64());
    }

    #[test]
    fn worley_orders_distances() {
        for i in 0..1000 {
            let (f1, f2, id) = worley(3, i as f32 * 0.31, i as f32 * 0.17);
            assert!(f1 <= f2 && (0.0..1.0).contains(&id));
        }
    }

    #[test]
    fn rng_unit_range() {
        let mut r = Rng::new(1);
        let mean: f32 = (0..10_000).map(|_| r.unit()).sum::<f32>() / 10_000.0;
        assert!((mean - 0.5).abs() < 0.02);
    }
}
