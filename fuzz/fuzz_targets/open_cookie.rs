//! Opening a cookie: any bytes as a cookie value, through the envelope (header, key
//! id, wrapped data key, ciphertext, tag) and, when it opens, the token list
//! decoder. Seeds are real cookies sealed under the key below (`fuzz/seeds.sh`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_otp_server::Timestamp;
use secure_otp_server::crypto::{Kek, Sealed};
use secure_otp_server::otp::OtpPolicy;
use secure_otp_server::otp::token::TokenList;
use secure_otp_server::plugin::CodeFormat;

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let Ok(sealed) = Sealed::parse(&value) else {
        return;
    };
    let _ = sealed.key_id();
    let kek = Kek::from_bytes([7; 32]);
    if let Ok(plain) = sealed.open(&kek, "o") {
        let _ = TokenList::decode(
            &plain,
            &OtpPolicy::default(),
            &CodeFormat::original(),
            Timestamp::from_millis(1_795_089_600_000),
        );
    }
});
