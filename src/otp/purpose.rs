//! Purposes (`OTP_PURPOSES=login,signup,step_up`): what a code is for, bound into
//! its token, each with its own rules.
//!
//! Unset, there is one implicit purpose (today's behaviour): tokens carry none and
//! answers name none. Set, create takes `?purpose=NAME` (absent: the first listed,
//! so existing frontends keep working), a code only verifies for its own purpose,
//! and each purpose may override the code rules with `OTP_PURPOSE_<NAME>_MAX_AGE`,
//! `_MAX_ATTEMPTS`, `_ATTEMPTS_BLOCK`, `_INVALID_BLOCK_SECONDS`,
//! `_RESEND_BLOCK_SECONDS`, `_ALLOW_ONLY_ONE_RESENDING`, `_LENGTH` and `_ALPHABET`.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Env;
use crate::otp::policy::OtpPolicy;
use crate::plugin::{CodeFormat, OtpCode, OtpGenerator, RandomGenerator};

/// At most this many purposes (the token stores an index in one byte).
const MAX_PURPOSES: usize = 16;

/// One purpose: its name, its rules and the generator of its codes.
#[derive(Debug, Clone)]
pub struct Purpose {
    /// The name (`login`); empty for the implicit purpose.
    pub name: String,
    /// Its code rules.
    pub policy: OtpPolicy,
    /// Makes its codes (in its format).
    pub generator: Arc<dyn OtpGenerator>,
}

/// Every purpose, the default first; the index is what a token stores.
#[derive(Debug, Clone)]
pub struct Purposes {
    list: Arc<[Purpose]>,
    /// The first of `list`, kept apart so it can be lent without indexing.
    default: Arc<Purpose>,
    named: bool,
}

impl Purposes {
    /// One implicit purpose with `policy` and `generator` (no `OTP_PURPOSES`).
    pub fn single(policy: OtpPolicy, generator: Arc<dyn OtpGenerator>) -> Self {
        let only = Purpose {
            name: String::new(),
            policy,
            generator,
        };
        Self {
            list: Arc::from(vec![only.clone()]),
            default: Arc::new(only),
            named: false,
        }
    }

    /// Named purposes, the default first; `None` when `list` is empty.
    pub fn named(list: Vec<Purpose>) -> Option<Self> {
        let default = Arc::new(list.first()?.clone());
        Some(Self {
            list: Arc::from(list),
            default,
            named: true,
        })
    }

    /// The purpose a token's index names, if any.
    pub fn get(&self, index: u8) -> Option<&Purpose> {
        self.list.get(usize::from(index))
    }

    /// The purpose at `index`, or the default one for an index no token can hold
    /// (decoding refuses those).
    pub fn of(&self, index: u8) -> &Purpose {
        self.get(index).unwrap_or(&self.default)
    }

    /// The index of the purpose called `name` (only when purposes are named).
    pub fn index_of(&self, name: &str) -> Option<u8> {
        if !self.named {
            return None;
        }
        self.list
            .iter()
            .position(|p| p.name == name)
            .and_then(|i| u8::try_from(i).ok())
    }

    /// The public name of the purpose at `index`: `None` when purposes are not named.
    pub fn name(&self, index: u8) -> Option<&str> {
        self.named
            .then(|| self.get(index).map(|p| p.name.as_str()))
            .flatten()
    }

    /// Whether `OTP_PURPOSES` names them.
    pub fn is_named(&self) -> bool {
        self.named
    }

    /// `text` as a code of any purpose's format (the check before the cookie is
    /// opened; the token's own format is checked after).
    pub fn parse_any(&self, text: &str) -> Option<OtpCode> {
        self.list
            .iter()
            .find_map(|p| p.generator.format().parse(text))
    }

    /// The longest code lifetime of any purpose (for key retention).
    pub fn longest_max_age(&self) -> Duration {
        self.list
            .iter()
            .map(|p| p.policy.max_age)
            .max()
            .unwrap_or_default()
    }
}

/// `OTP_PURPOSES` and each purpose's overrides, read from the environment.
#[derive(Debug, Clone, Default)]
pub struct PurposesConfig {
    /// Each purpose's name, rules and code format, the default first; empty when unset.
    pub list: Vec<(String, OtpPolicy, CodeFormat)>,
}

impl PurposesConfig {
    /// Reads `OTP_PURPOSES` and the `OTP_PURPOSE_<NAME>_*` overrides on top of the
    /// global `policy` and `format`.
    pub fn read(env: &mut Env, policy: &OtpPolicy, format: &CodeFormat) -> Self {
        let Some(raw) = env.get("OTP_PURPOSES").map(str::to_owned) else {
            return Self::default();
        };
        let mut list: Vec<(String, OtpPolicy, CodeFormat)> = Vec::new();
        for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let valid = name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid || list.iter().any(|(n, _, _)| n == name) {
                env.fail(
                    "OTP_PURPOSES",
                    &raw,
                    "a comma-separated list of distinct names of a-z, 0-9 and _ (at most 32 characters each)",
                );
                return Self::default();
            }
            let prefix = format!("OTP_PURPOSE_{}_", name.to_ascii_uppercase());
            list.push((
                name.to_owned(),
                policy.overridden(env, &prefix),
                format.overridden(env, &prefix),
            ));
        }
        if list.is_empty() || list.len() > MAX_PURPOSES {
            env.fail(
                "OTP_PURPOSES",
                &raw,
                &format!("between 1 and {MAX_PURPOSES} purposes"),
            );
            return Self::default();
        }
        Self { list }
    }

    /// The purposes to run: the configured ones with random generators, or the one
    /// implicit purpose of `policy` and `generator`.
    pub fn build(&self, policy: &OtpPolicy, generator: Arc<dyn OtpGenerator>) -> Purposes {
        let named = Purposes::named(
            self.list
                .iter()
                .map(|(name, policy, format)| Purpose {
                    name: name.clone(),
                    policy: policy.clone(),
                    generator: Arc::new(RandomGenerator::new(format.clone())) as _,
                })
                .collect(),
        );
        named.unwrap_or_else(|| Purposes::single(policy.clone(), generator))
    }

    /// The longest code of any purpose (for the cookie size bound), at least `global`.
    pub fn longest_code(&self, global: usize) -> usize {
        self.list
            .iter()
            .map(|(_, _, f)| f.length())
            .chain([global])
            .max()
            .unwrap_or(global)
    }

    /// The longest lifetime of any purpose, at least `global`.
    pub fn longest_max_age(&self, global: Duration) -> Duration {
        self.list
            .iter()
            .map(|(_, p, _)| p.max_age)
            .chain([global])
            .max()
            .unwrap_or(global)
    }
}
