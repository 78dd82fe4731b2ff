//! PaddleSeg list files: any text parses or errors; an error names a line that exists,
//! and what parses has one sample per line that is neither blank nor a comment.
#![no_main]
use foramen_data::dataset::{DataError, parse_list};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Every path "exists" except those naming a file `missing`.
    let exists = |p: &Path| p.file_name().is_none_or(|n| n != "missing");
    let lines = text.lines().count();
    match parse_list(text, Path::new("/root"), Path::new("list.txt"), exists) {
        Ok(samples) => {
            let entries = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            assert_eq!(samples.len(), entries);
            for s in &samples {
                assert!(s.image.starts_with("/") && s.mask.starts_with("/"));
            }
        }
        Err(DataError::List { line, .. }) => assert!(line >= 1 && line <= lines),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
});
