//! Final action: what a verified credential gets. By default the original's
//! `200 {"credential": ..., "message": "successfully verified"}`.

use std::sync::Arc;

use secure_otp_server::Config;
use secure_otp_server::plugin::{EchoCredential, FinalAction};

/// The final action this server runs.
pub fn final_action(_config: &Config) -> Arc<dyn FinalAction> {
    Arc::new(EchoCredential)
}
