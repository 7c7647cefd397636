//! The `SIGNET_SIGNING_*` configuration parser, fed `NAME=value` lines.
#![no_main]

use libfuzzer_sys::fuzz_target;
use signet_sign::SigningConfig;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let _ = SigningConfig::from_vars(vars);
});
