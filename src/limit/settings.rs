//! The abuse-limit settings (`OTP_LIMIT_*`, `OTP_PHONE_COUNTRIES`, `OTP_PUMPING_*`,
//! `OTP_HIDE_UNDELIVERABLE`), each default with the reason for it.

use std::fmt;

use crate::config::Env;
use crate::plugin::limit_store::Rule;

/// The SMS-pumping breaker: a prefix with at least `min_sends` sends in the last
/// hour, fewer than `min_conversion_percent` % of them verified, is paused for an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pumping {
    /// `OTP_PUMPING_MIN_SENDS` (default 20): below it, too few sends to judge.
    pub min_sends: u32,
    /// `OTP_PUMPING_MIN_CONVERSION` (default 10 %).
    pub min_conversion_percent: u32,
}

impl Pumping {
    /// Whether `sends` earlier sends with `verified` verifications trip the breaker.
    pub fn trips(&self, sends: u32, verified: u32) -> bool {
        sends >= self.min_sends
            && u64::from(verified) * 100 < u64::from(self.min_conversion_percent) * u64::from(sends)
    }
}

/// Every abuse limit; `None` is `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitPolicy {
    /// `OTP_LIMIT_SENDS_PER_CREDENTIAL`, default `5/10m` (Twilio Verify's figure):
    /// enough for a typo and two resends, too few to flood an inbox.
    pub sends_per_credential: Option<Rule>,
    /// `OTP_LIMIT_FAILURES_PER_CREDENTIAL`, default `10/1h`: over every session of
    /// an address; at most 240 guesses a day, however many sessions an attacker opens.
    pub failures_per_credential: Option<Rule>,
    /// `OTP_LIMIT_CREATES_PER_IP`, default `30/5m` (Supabase's figure): a person
    /// never needs more; a script spraying addresses stops quickly.
    pub creates_per_ip: Option<Rule>,
    /// `OTP_LIMIT_VERIFIES_PER_IP`, default `360/1h`: one guess every 10 s on
    /// average, far above typing speed, far below guessing speed.
    pub verifies_per_ip: Option<Rule>,
    /// `OTP_LIMIT_SENDS_GLOBAL`, default `off`: a cost ceiling a deployment sets
    /// from its own volume.
    pub sends_global: Option<Rule>,
    /// `OTP_LIMIT_SENDS_PER_PREFIX`, default `50/1h`: sends to one phone-number
    /// prefix (country code and 3 digits), the shape of SMS-pumping fraud.
    pub sends_per_prefix: Option<Rule>,
    /// `OTP_PHONE_COUNTRIES`: allowed calling codes; `None` (default) allows all.
    pub phone_countries: Option<Vec<u16>>,
    /// `OTP_PUMPING_MIN_SENDS` / `OTP_PUMPING_MIN_CONVERSION`; `None` when `off`.
    pub pumping: Option<Pumping>,
    /// `OTP_HIDE_UNDELIVERABLE` (default on in production): an address the channel
    /// refuses is answered like any other, and codes are sent after the answer.
    pub hide_undeliverable: bool,
}

impl LimitPolicy {
    /// No limit, nothing hidden.
    pub fn off() -> Self {
        Self {
            sends_per_credential: None,
            failures_per_credential: None,
            creates_per_ip: None,
            verifies_per_ip: None,
            sends_global: None,
            sends_per_prefix: None,
            phone_countries: None,
            pumping: None,
            hide_undeliverable: false,
        }
    }

    /// Reads every setting; `production` sets the default of `OTP_HIDE_UNDELIVERABLE`.
    pub fn read(env: &mut Env, production: bool) -> Self {
        let mut rule = |name: &str, default: &str| {
            let text = env.string(name, default);
            Rule::parse_setting(&text).unwrap_or_else(|e| {
                env.fail(name, &text, &e);
                None
            })
        };
        let sends_per_credential = rule("OTP_LIMIT_SENDS_PER_CREDENTIAL", "5/10m");
        let failures_per_credential = rule("OTP_LIMIT_FAILURES_PER_CREDENTIAL", "10/1h");
        let creates_per_ip = rule("OTP_LIMIT_CREATES_PER_IP", "30/5m");
        let verifies_per_ip = rule("OTP_LIMIT_VERIFIES_PER_IP", "360/1h");
        let sends_global = rule("OTP_LIMIT_SENDS_GLOBAL", "off");
        let sends_per_prefix = rule("OTP_LIMIT_SENDS_PER_PREFIX", "50/1h");
        Self {
            sends_per_credential,
            failures_per_credential,
            creates_per_ip,
            verifies_per_ip,
            sends_global,
            sends_per_prefix,
            phone_countries: countries(env),
            pumping: pumping(env),
            hide_undeliverable: env.boolean("OTP_HIDE_UNDELIVERABLE", production),
        }
    }
}

fn countries(env: &mut Env) -> Option<Vec<u16>> {
    const NAME: &str = "OTP_PHONE_COUNTRIES";
    let text = env.string(NAME, "");
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("all") {
        return None;
    }
    let mut codes = Vec::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.trim_start_matches('+').parse::<u16>() {
            Ok(code) if (1..=999).contains(&code) => codes.push(code),
            _ => {
                env.fail(
                    NAME,
                    text,
                    "a comma-separated list of calling codes, e.g. 34,351,1",
                );
                return None;
            }
        }
    }
    Some(codes)
}

fn pumping(env: &mut Env) -> Option<Pumping> {
    let sends = env.string("OTP_PUMPING_MIN_SENDS", "20");
    if sends.trim().eq_ignore_ascii_case("off") {
        return None;
    }
    let min_sends = match sends.trim().parse::<u32>() {
        Ok(n) if n >= 1 => n,
        _ => {
            env.fail(
                "OTP_PUMPING_MIN_SENDS",
                &sends,
                "a number of sends (at least 1) or off",
            );
            return None;
        }
    };
    let conversion = env.string("OTP_PUMPING_MIN_CONVERSION", "10%");
    let min_conversion_percent = match conversion
        .trim()
        .trim_end_matches('%')
        .trim()
        .parse::<u32>()
    {
        Ok(p) if p <= 100 => p,
        _ => {
            env.fail(
                "OTP_PUMPING_MIN_CONVERSION",
                &conversion,
                "a percentage from 0 to 100, e.g. 10%",
            );
            return None;
        }
    };
    Some(Pumping {
        min_sends,
        min_conversion_percent,
    })
}

/// One line for the start-up log.
impl fmt::Display for LimitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rule = |r: Option<Rule>| r.map_or_else(|| "off".to_owned(), |r| r.to_string());
        write!(
            f,
            "sends/address {}, failures/address {}, creates/ip {}, verifies/ip {}, sends {}, sends/prefix {}",
            rule(self.sends_per_credential),
            rule(self.failures_per_credential),
            rule(self.creates_per_ip),
            rule(self.verifies_per_ip),
            rule(self.sends_global),
            rule(self.sends_per_prefix),
        )?;
        if let Some(p) = self.pumping {
            write!(
                f,
                ", pumping breaker {} sends < {} %",
                p.min_sends, p.min_conversion_percent
            )?;
        }
        if self.hide_undeliverable {
            f.write_str(", undeliverable hidden")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_breaker_trips_at_its_thresholds() {
        let p = Pumping {
            min_sends: 20,
            min_conversion_percent: 10,
        };
        assert!(!p.trips(19, 0), "too few sends to judge");
        assert!(p.trips(20, 1), "5 % converted");
        assert!(!p.trips(20, 2), "10 % converted");
        assert!(p.trips(1000, 99));
    }
}
