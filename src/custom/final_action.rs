//! Final action: what a verified session gets. Default: the original's
//! `200 {"credential": ..., "message": "successfully verified"}`. To log the user
//! in, implement `secure_otp_server::plugin::FinalAction`: it receives a `Verified`
//! (the address the code reached, its channel, the client IP, the request headers)
//! and returns the response (`examples/session_final_action.rs` issues a session).

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::FinalAction;

use super::Settings;

/// The final action this server runs.
pub fn final_action(
    default: Arc<dyn FinalAction>,
    _config: &Config,
    _settings: &Settings,
) -> Arc<dyn FinalAction> {
    default
}
