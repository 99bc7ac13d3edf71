//! The forker's folder: where this server's plug-ins are chosen.
//!
//! Each file receives the library's default for one extension point (built from the
//! configuration by [`Plugins::from_config`]) and returns it, or your replacement.
//! Your own settings go in `settings.rs`: they are read with the same reader as the
//! library's, so a bad value is reported at start-up with every other problem.
//! The library never imports this module; compiled examples of each kind of change
//! are in `examples/` (`custom_setting.rs`, `sms_gateway.rs`, `session_final_action.rs`).

mod credential;
mod final_action;
mod generator;
mod ids;
mod kms;
mod sender;
mod settings;

use std::sync::Arc;

use secure_otp_server::config::ConfigError;
use secure_otp_server::{Clock, Config, Plugins};

pub use settings::{Settings, read as read_settings};

/// The plug-ins this server runs: the configured defaults, adjusted by the files here.
pub fn plugins(
    config: &Config,
    settings: &Settings,
    clock: &Arc<dyn Clock>,
) -> Result<Plugins, ConfigError> {
    let mut p = Plugins::from_config(config, clock)?;
    p.generator = generator::generator(p.generator, config, settings);
    p.credential = credential::schema(p.credential, config, settings);
    p.sender = sender::sender(p.sender, config, settings);
    p.ids = ids::store(p.ids, config, settings);
    p.kms = kms::kms(p.kms, config, settings);
    p.final_action = final_action::final_action(p.final_action, config, settings);
    Ok(p)
}
