//! `masks.bin` as `foramen recording` reads it after a crash: any bytes are scanned to
//! the end, damaged regions skipped and counted, never a panic or a huge allocation.
#![no_main]
use foramen_data::recording::scan_mask_stream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut records = 0u64;
    let scan = scan_mask_stream(std::io::Cursor::new(data), data.len() as u64, |_| records += 1)
        .expect("reading memory cannot fail");
    assert_eq!(scan.records, records);
    assert!(scan.damaged_bytes <= data.len() as u64);
});
