#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| localkms::fuzzing::asym_inputs(data));
