//! NumPy `.npy` (format 1.0) for little-endian float32 arrays: the probability files
//! `foramen segment --probs` writes and `foramen eval --prob` reads.

use std::io::{Read, Write};
use std::path::Path;

use crate::DataError;

const MAGIC: &[u8] = b"\x93NUMPY";

/// Writes a C-order float32 array of `shape`.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), DataError> {
    let err = |message: String| DataError::Image {
        path: path.to_path_buf(),
        message,
    };
    if shape.iter().product::<usize>() != data.len() {
        return Err(err(format!(
            "shape {shape:?} does not hold {} values",
            data.len()
        )));
    }
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {tuple}, }}");
    // Magic, version and length take 10 bytes; pad with spaces so data starts on a
    // 64-byte boundary, ending the header with a newline.
    let pad = 64 - (10 + header.len() + 1) % 64;
    header.push_str(&" ".repeat(pad % 64));
    header.push('\n');
    let mut f =
        std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| err(e.to_string()))?);
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&[1, 0]);
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    f.write_all(&bytes)
        .and_then(|()| f.flush())
        .map_err(|e| err(e.to_string()))
}

/// Reads a C-order little-endian float32 array; returns (shape, data).
pub fn read_f32(path: &Path) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let err = |message: String| DataError::Image {
        path: path.to_path_buf(),
        message,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err("not a .npy file".into()));
    }
    let (hlen, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(err(format!("unsupported .npy version {v}"))),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + hlen)
            .ok_or_else(|| err("truncated header".into()))?,
    )
    .map_err(|_| err("header is not text".into()))?;
    if !header.contains("'descr': '<f4'") || header.contains("'fortran_order': True") {
        return Err(err(format!(
            "expected little-endian float32 in C order, header {header:?}"
        )));
    }
    let shape_txt = header
        .split("'shape':")
        .nth(1)
        .and_then(|s| s.split('(').nth(1))
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| err("no shape in header".into()))?;
    let shape: Vec<usize> = shape_txt
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse()
                .map_err(|_| err(format!("bad shape {shape_txt:?}")))
        })
        .collect::<Result<_, _>>()?;
    let body = &bytes[start + hlen..];
    let n: usize = shape.iter().product();
    if body.len() != n * 4 {
        return Err(err(format!(
            "shape {shape:?} needs {} bytes of data, found {}",
            n * 4,
            body.len()
        )));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((shape, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_aligns() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.npy");
        let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.5).collect();
        write_f32(&p, &[2, 3, 4], &data).expect("write");
        let bytes = std::fs::read(&p).expect("read");
        assert_eq!(
            (bytes.len() - 24 * 4) % 64,
            0,
            "data starts on a 64-byte boundary"
        );
        assert_eq!(read_f32(&p).expect("read"), (vec![2, 3, 4], data));
        write_f32(&p, &[5], &[1.0; 5]).expect("1-d");
        assert_eq!(read_f32(&p).expect("read").0, vec![5]);
        assert!(write_f32(&p, &[2, 2], &[1.0; 3]).is_err());
    }

    #[test]
    fn rejects_other_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("b.npy");
        std::fs::write(&p, b"hello world").expect("w");
        assert!(read_f32(&p).unwrap_err().to_string().contains("not a .npy"));
    }
}
