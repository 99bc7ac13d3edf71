//! The secret and limit settings parsers: `OTP_KEYS`, a `OTP_KMS_MASTER_KEY`
//! list, `OTP_SESSION_KEY`, and `N/DURATION` limit strings, from any text. Bad
//! values must be reported, never panic (that secrets are never echoed is a unit
//! test of the settings).
#![no_main]

use libfuzzer_sys::fuzz_target;
use secure_otp_server::Config;
use secure_otp_server::crypto::MasterKey;
use secure_otp_server::plugin::limit_store::Rule;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data).into_owned();
    let _ = Rule::parse_setting(&text);
    for item in text.split(',') {
        let _ = MasterKey::from_base64(item);
    }
    let vars = [
        ("OTP_KMS", "static".to_owned()),
        ("OTP_KEYS", text.clone()),
        ("OTP_SESSION_KEY", text.clone()),
        ("OTP_LIMIT_SENDS_PER_CREDENTIAL", text.clone()),
        ("OTP_FINAL_ACTION", "session".to_owned()),
    ];
    if let Err(e) = Config::from_vars(vars) {
        let _ = e.to_string();
    }
});
