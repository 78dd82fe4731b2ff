//! Where each class's tag (`B`, `L`, `D`) is written on the video, so that a class is
//! told by a letter as well as by its colour. Computed once per new mask, over the mask's
//! own small grid (the model's output, not the frame), and cached.

use foramen_core::Mask;

/// A class's tag position, as a fraction of the mask's width and height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TagPos {
    /// Class index.
    pub class: u8,
    /// 0..1 across.
    pub x: f32,
    /// 0..1 down.
    pub y: f32,
}

/// Classes covering less than this share of the mask get no tag (noise, slivers).
pub const MIN_SHARE: f64 = 0.005;

/// One tag per class present (other than 0): at the class's centroid when the class is
/// there, else at its pixel nearest to the centroid (a ring's centre is not the ring).
pub fn tag_positions(mask: &Mask) -> Vec<TagPos> {
    let (w, h) = (mask.width as usize, mask.height as usize);
    let mut sums = [(0u64, 0u64, 0u64); 256];
    for (i, &c) in mask.classes.iter().enumerate() {
        let s = &mut sums[c as usize];
        s.0 += (i % w) as u64;
        s.1 += (i / w) as u64;
        s.2 += 1;
    }
    let total = (w * h).max(1) as f64;
    let mut out = vec![];
    for (class, &(sx, sy, n)) in sums.iter().enumerate().skip(1) {
        if n == 0 || (n as f64) / total < MIN_SHARE {
            continue;
        }
        let (cx, cy) = ((sx / n) as usize, (sy / n) as usize);
        let (x, y) = if mask.classes[cy * w + cx] as usize == class {
            (cx, cy)
        } else {
            nearest(mask, class as u8, cx, cy)
        };
        out.push(TagPos {
            class: class as u8,
            x: (x as f32 + 0.5) / w as f32,
            y: (y as f32 + 0.5) / h as f32,
        });
    }
    out
}

fn nearest(mask: &Mask, class: u8, cx: usize, cy: usize) -> (usize, usize) {
    let w = mask.width as usize;
    let mut best = (usize::MAX, cx, cy);
    for (i, &c) in mask.classes.iter().enumerate() {
        if c == class {
            let (x, y) = (i % w, i / w);
            let d = x.abs_diff(cx).pow(2) + y.abs_diff(cy).pow(2);
            if d < best.0 {
                best = (d, x, y);
            }
        }
    }
    (best.1, best.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: u32, h: u32, classes: Vec<u8>) -> Mask {
        Mask {
            source_frame_id: 0,
            source_pts_us: 0,
            source_captured_at_us: 0,
            width: w,
            height: h,
            confidence: vec![255; classes.len()],
            classes,
            infer_ms: 0.0,
        }
    }

    #[test]
    fn a_tag_sits_on_its_class_even_for_a_ring() {
        // Class 1: a ring around the border of a 20x20 mask; class 2: a 4x4 block.
        let mut c = vec![0u8; 400];
        for y in 0..20 {
            for x in 0..20 {
                if x == 0 || y == 0 || x == 19 || y == 19 {
                    c[y * 20 + x] = 1;
                }
                if (12..16).contains(&x) && (4..8).contains(&y) {
                    c[y * 20 + x] = 2;
                }
            }
        }
        c[10 * 20 + 10] = 3; // one pixel: under the minimum share, no tag
        let tags = tag_positions(&mask(20, 20, c.clone()));
        assert_eq!(tags.len(), 2, "{tags:?}");
        for t in &tags {
            let (x, y) = ((t.x * 20.0) as usize, (t.y * 20.0) as usize);
            assert_eq!(c[y * 20 + x], t.class, "{t:?}");
        }
        assert_eq!((tags[1].x, tags[1].y), (13.5 / 20.0, 5.5 / 20.0));
    }
}
