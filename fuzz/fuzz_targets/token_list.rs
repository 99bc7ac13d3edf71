//! Decoding a token list (the plaintext inside a cookie) from any bytes, then
//! encoding what decoded: it must decode to the same list again, at the length
//! `encoded_len` promised (the sealing buffer is sized by it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_otp_server::Timestamp;
use secure_otp_server::otp::OtpPolicy;
use secure_otp_server::otp::token::TokenList;
use secure_otp_server::plugin::CodeFormat;

fuzz_target!(|data: &[u8]| {
    let (policy, format) = (OtpPolicy::default(), CodeFormat::original());
    let now = Timestamp::from_millis(1_795_089_600_000);
    if let Ok(list) = TokenList::decode(data, &policy, &format, now) {
        let again = list.encode();
        assert_eq!(list.encoded_len(), again.len());
        let round = TokenList::decode(&again, &policy, &format, now).expect("re-decodes");
        assert_eq!(round.encode(), again);
    }
});
