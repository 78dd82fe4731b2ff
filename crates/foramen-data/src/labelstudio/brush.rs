//! Label Studio's brush layers and polygons as pixels: its RLE codec (the thi.ng
//! `rle-pack` format, bit-exact with `label-studio-converter`'s `brush` module) and
//! polygon rasterisation.

/// Errors decoding a brush RLE.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RleError {
    /// The stream ended before the header or a run was complete.
    #[error("RLE truncated at bit {0}")]
    Truncated(usize),
    /// Values wider than 8 bits cannot be class masks.
    #[error("RLE word size {0} bits is not supported (at most 8)")]
    WordSize(u32),
    /// The stream's value count does not match the image.
    #[error("RLE holds {got} values, the image needs {want} ({width}x{height}x4)")]
    Length {
        /// Values in the stream.
        got: usize,
        /// Values needed.
        want: usize,
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
}

struct BitWriter {
    bytes: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    fn put(&mut self, value: u32, n: u32) {
        for k in (0..n).rev() {
            if self.bits.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (value >> k) & 1 == 1 {
                let last = self.bytes.len() - 1;
                self.bytes[last] |= 0x80 >> (self.bits % 8);
            }
            self.bits += 1;
        }
    }
}

/// Encodes `values` as Label Studio's brush RLE, exactly as `label-studio-converter`'s
/// `encode_rle` does (word size 8, run-length field sizes 3, 4, 8 and 16 bits, single
/// values as one-element literal runs, and its padding: 1 to 8 zero bits, never 0).
pub fn rle_encode(values: &[u8]) -> Vec<u8> {
    let mut w = BitWriter {
        bytes: Vec::with_capacity(values.len() / 8 + 16),
        bits: 0,
    };
    w.put(values.len() as u32, 32);
    w.put(8 - 1, 5);
    for size in [3u32, 4, 8, 16] {
        w.put(size - 1, 4);
    }
    let mut i = 0;
    while i < values.len() {
        let v = values[i];
        let mut run = 1;
        while i + run < values.len() && values[i + run] == v {
            run += 1;
        }
        i += run;
        if run == 1 {
            w.put(0, 1);
            w.put(0, 2);
            w.put(0, 3);
            w.put(v as u32, 8);
            continue;
        }
        let mut left = run;
        while left > 1 << 16 {
            w.put(1, 1);
            w.put(3, 2);
            w.put((1 << 16) - 1, 16);
            w.put(v as u32, 8);
            left -= 1 << 16;
        }
        let (index, bits) = match left {
            0..=8 => (0, 3),
            9..=16 => (1, 4),
            17..=256 => (2, 8),
            _ => (3, 16),
        };
        w.put(1, 1);
        w.put(index, 2);
        w.put(left as u32 - 1, bits);
        w.put(v as u32, 8);
    }
    let pad = 8 - w.bits % 8;
    w.put(0, pad as u32);
    w.bytes
}

/// Decodes a brush RLE (the thi.ng `rle-pack` format Label Studio uses) into its values.
pub fn rle_decode(bytes: &[u8]) -> Result<Vec<u8>, RleError> {
    let total = bytes.len() * 8;
    let mut at = 0usize;
    let mut read = |n: u32| -> Result<u32, RleError> {
        if at + n as usize > total {
            return Err(RleError::Truncated(at));
        }
        let mut v = 0u32;
        for _ in 0..n {
            let bit = (bytes[at / 8] >> (7 - at % 8)) & 1;
            v = (v << 1) | bit as u32;
            at += 1;
        }
        Ok(v)
    };
    let num = read(32)? as usize;
    let word = read(5)? + 1;
    if word > 8 {
        return Err(RleError::WordSize(word));
    }
    let mut sizes = [0u32; 4];
    for s in &mut sizes {
        *s = read(4)? + 1;
    }
    // A corrupt header must not make us allocate gigabytes.
    let mut out = Vec::with_capacity(num.min(bytes.len() * 8 * 16));
    while out.len() < num {
        let repeat = read(1)? == 1;
        let size = sizes[read(2)? as usize];
        let n = (read(size)? as usize + 1).min(num - out.len());
        if repeat {
            let v = read(word)? as u8;
            out.extend(std::iter::repeat_n(v, n));
        } else {
            for _ in 0..n {
                out.push(read(word)? as u8);
            }
        }
    }
    Ok(out)
}

/// A Label Studio brush layer for a binary mask (`true` = painted): RGBA with the mask
/// in every channel, as `mask2rle` writes it.
pub fn mask_to_rle(mask: &[bool]) -> Vec<u8> {
    let rgba: Vec<u8> = mask
        .iter()
        .flat_map(|&m| [if m { 255 } else { 0 }; 4])
        .collect();
    rle_encode(&rgba)
}

/// The painted pixels of a brush layer (alpha > 0) of a `width` x `height` image.
pub fn rle_to_mask(rle: &[u8], width: u32, height: u32) -> Result<Vec<bool>, RleError> {
    let want = width as usize * height as usize * 4;
    // The header states how many values follow: a wrong count is refused before a
    // single value is decoded, so a small file cannot make us allocate gigabytes.
    if let [a, b, c, d, ..] = *rle {
        let declared = u32::from_be_bytes([a, b, c, d]) as usize;
        if declared != want {
            return Err(RleError::Length {
                got: declared,
                want,
                width,
                height,
            });
        }
    }
    let values = rle_decode(rle)?;
    if values.len() != want {
        return Err(RleError::Length {
            got: values.len(),
            want,
            width,
            height,
        });
    }
    Ok(values.chunks_exact(4).map(|p| p[3] > 0).collect())
}

/// Pixels whose centres lie inside `points` (x, y in percent of the image, Label
/// Studio's polygon convention), even-odd rule.
pub fn rasterize_polygon(points: &[[f64; 2]], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![false; w * h];
    if points.len() < 3 {
        return out;
    }
    let px: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p[0] / 100.0 * width as f64, p[1] / 100.0 * height as f64))
        .collect();
    let mut xs = Vec::new();
    for y in 0..h {
        let cy = y as f64 + 0.5;
        xs.clear();
        for k in 0..px.len() {
            let (a, b) = (px[k], px[(k + 1) % px.len()]);
            if (a.1 <= cy) != (b.1 <= cy) {
                xs.push(a.0 + (cy - a.1) / (b.1 - a.1) * (b.0 - a.0));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            // Pixel x is inside when its centre x + 0.5 lies in [pair[0], pair[1]).
            let x0 = (pair[0] - 0.5).ceil().max(0.0) as usize;
            let x1 = ((pair[1] - 0.5).ceil().max(0.0) as usize).min(w);
            for x in x0..x1 {
                out[y * w + x] = true;
            }
        }
    }
    out
}
