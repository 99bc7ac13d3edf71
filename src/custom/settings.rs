//! Your own settings, read from the environment beside the library's.
//!
//! Add a field and read it in [`read`] with the [`Env`] methods (`get`, `string`,
//! `number`, `seconds`, `boolean`, `choice`, `secret` with `_FILE` support,
//! `fail`/`problem` to report a bad value). For example:
//!
//! ```text
//! pub struct Settings { pub sms_api_key: Option<SecretString> }
//! let sms_api_key = env.secret("SMS_API_KEY");
//! if sms_api_key.is_none() { env.problem("SMS_API_KEY is required by our SMS sender"); }
//! ```
//!
//! `examples/custom_setting.rs` is a compiled version of this.

use secure_otp_server::Config;
use secure_otp_server::config::Env;

/// Settings of this fork (none in the stock server).
#[derive(Debug, Default)]
pub struct Settings {}

/// Reads this fork's settings; problems are reported together with the library's.
pub fn read(_env: &mut Env, _config: &Config) -> Settings {
    Settings {}
}
