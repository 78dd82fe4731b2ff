//! Label Studio brush RLE: any bytes decode to an error or to values that re-encode
//! and decode to the same values; never a panic or a runaway allocation.
#![no_main]
use foramen_data::labelstudio::{rle_decode, rle_encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = rle_decode(data) {
        let again = rle_decode(&rle_encode(&values)).expect("our own encoding decodes");
        assert_eq!(again, values);
    }
});
