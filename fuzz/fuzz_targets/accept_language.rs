//! Parsing `Accept-Language` and choosing a language from it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_otp_server::plugin::Locale;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let locale = Locale::from_accept_language(Some(&text));
    let _ = locale.preferred();
    let _ = locale.best(|tag| tag == "es" || tag == "en");
});
