//! Sampling positions shared by every resize in Foramen, so that masks, tensors and
//! pictures line up exactly.

/// For each of `dst` output samples along an axis of `src` input samples: the two
/// nearest inputs and the weight of the second. Pixel centres are aligned and edges
/// clamped, as PyTorch's `align_corners=False` bilinear interpolation.
pub fn linear_taps(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = src as f32 / dst as f32;
    let last = src.saturating_sub(1);
    (0..dst)
        .map(|i| {
            let s = ((i as f32 + 0.5) * scale - 0.5).clamp(0.0, last as f32);
            let i0 = s as usize;
            (i0, (i0 + 1).min(last), s - i0 as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_and_halving() {
        assert!(
            linear_taps(4, 4)
                .iter()
                .enumerate()
                .all(|(i, &(a, _, t))| a == i && t == 0.0)
        );
        // 2 -> 4: centres at -0.25, 0.25, 0.75, 1.25 clamp to 0, 0.25, 0.75, 1.
        let t = linear_taps(2, 4);
        assert_eq!(
            t,
            vec![(0, 1, 0.0), (0, 1, 0.25), (0, 1, 0.75), (1, 1, 0.0)]
        );
        assert_eq!(linear_taps(1, 3), vec![(0, 0, 0.0); 3]);
    }
}
