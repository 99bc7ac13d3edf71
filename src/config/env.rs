//! The settings reader: environment variables in, typed values out, every problem
//! collected so start-up reports them all at once.
//!
//! Every module that owns settings (the core, the protocol policy, each plug-in and
//! adapter, and a fork's own code in `src/custom/`) reads them through one [`Env`],
//! so a bad value anywhere is named beside the others, secrets may come from
//! `NAME_FILE`, and no value of a secret ever reaches an error message.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Every problem found in the environment, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// The variables being read and the problems found so far.
#[derive(Debug)]
pub struct Env {
    vars: HashMap<String, String>,
    errors: Vec<String>,
}

impl Env {
    /// The given variables; empty values count as unset.
    pub fn from_vars<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .filter(|(_, v)| !v.trim().is_empty())
                .collect(),
            errors: Vec::new(),
        }
    }

    /// The process environment. A variable whose name or value is not UTF-8 is a
    /// problem named by its variable (it is not skipped, and start-up does not panic).
    pub fn from_process() -> Self {
        Self::from_os_vars(std::env::vars_os())
    }

    /// Like [`Env::from_process`] over the given raw pairs (tests pass their own).
    pub fn from_os_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut errors = Vec::new();
        let mut text = Vec::new();
        for (k, v) in vars {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => text.push((k, v)),
                (Ok(k), Err(_)) => errors.push(format!(
                    "{k}: the value is not valid UTF-8 (the value is not shown)"
                )),
                (Err(k), _) => errors.push(format!(
                    "{}: the variable's name is not valid UTF-8",
                    k.to_string_lossy()
                )),
            }
        }
        let mut env = Self::from_vars(text);
        env.errors = errors;
        env
    }

    /// The trimmed value of `name`, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim())
    }

    /// Whether `name` is set (to a non-empty value).
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The value of `name` as an owned string, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or(default).to_owned()
    }

    /// Records a bad value: `NAME="value": hint`. Never use it for secrets
    /// (use [`Env::problem`] with a text that does not hold the value).
    pub fn fail(&mut self, name: &str, value: &str, hint: &str) {
        self.errors.push(format!("{name}={value:?}: {hint}"));
    }

    /// Records a problem in free text (it should name the variable to fix).
    pub fn problem(&mut self, text: impl Into<String>) {
        self.errors.push(text.into());
    }

    /// Whether any problem was recorded so far.
    pub fn has_problems(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Ends the reading: `Ok(value)` if no problem was recorded, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(ConfigError(self.errors))
        }
    }

    /// A number from `min` to `max`, or `default` when unset.
    pub fn number<T>(&mut self, name: &str, default: T, min: T, max: T) -> T
    where
        T: std::str::FromStr + Copy + PartialOrd + std::fmt::Display,
    {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                let raw = raw.to_owned();
                self.fail(
                    name,
                    &raw,
                    &format!("expected a whole number from {min} to {max}"),
                );
                default
            }
        }
    }

    /// A whole number of seconds from `min` to `max`, or `default` when unset.
    pub fn seconds(&mut self, name: &str, default: u64, min: u64, max: u64) -> Duration {
        Duration::from_secs(self.number(name, default, min, max))
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `default` when unset.
    pub fn boolean(&mut self, name: &str, default: bool) -> bool {
        let Some(raw) = self.get(name) else {
            return default;
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                let raw = raw.to_owned();
                self.fail(name, &raw, "expected true or false");
                default
            }
        }
    }

    /// One of `options` (matched case-insensitively), or `default` when unset.
    pub fn choice<T: Copy>(&mut self, name: &str, default: T, options: &[(&str, T)]) -> T {
        let Some(raw) = self.get(name) else {
            return default;
        };
        let lower = raw.to_ascii_lowercase();
        if let Some((_, v)) = options.iter().find(|(k, _)| *k == lower) {
            return *v;
        }
        let raw = raw.to_owned();
        let names: Vec<&str> = options.iter().map(|(k, _)| *k).collect();
        self.fail(
            name,
            &raw,
            &format!("expected one of: {}", names.join(", ")),
        );
        default
    }

    /// `NAME` or the contents of the file named by `NAME_FILE` (one trailing newline
    /// dropped); not both. Held as a secret; no error message shows it.
    pub fn secret(&mut self, name: &str) -> Option<SecretString> {
        let file_var = format!("{name}_FILE");
        let direct = self.get(name).map(str::to_owned);
        let file = self.get(&file_var).map(str::to_owned);
        match (direct, file) {
            (Some(_), Some(_)) => {
                self.problem(format!(
                    "{name} and {file_var} are both set: keep one (the value is not shown: it is secret)"
                ));
                None
            }
            (Some(v), None) => Some(SecretString::from(v)),
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    Some(SecretString::from(text.to_owned()))
                }
                Err(e) => {
                    self.fail(&file_var, &path, &format!("cannot read the file: {e}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// `NAME`: the path of a readable PEM certificate file (a private CA), if set.
    pub fn pem_file(&mut self, name: &str) -> Option<PathBuf> {
        let path = PathBuf::from(self.get(name)?);
        let readable = std::fs::read_to_string(&path)
            .is_ok_and(|pem| pem.contains("-----BEGIN CERTIFICATE-----"));
        if !readable {
            let shown = path.display().to_string();
            self.fail(name, &shown, "expected a readable PEM certificate file");
        }
        Some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_collected_and_named() {
        let mut env = Env::from_vars([("A", "x"), ("B", "maybe"), ("C", "z")]);
        assert_eq!(env.number("A", 1u32, 0, 9), 1);
        assert!(env.boolean("B", true));
        assert_eq!(env.choice("C", 0, &[("one", 1)]), 0);
        let e = env.finish(()).expect_err("three problems");
        assert_eq!(e.0.len(), 3);
        for name in ["A=", "B=", "C="] {
            assert!(e.to_string().contains(name), "{e}");
        }
    }

    #[test]
    fn a_non_utf8_value_is_a_problem_not_a_panic() {
        use std::os::unix::ffi::OsStringExt as _;
        let env = Env::from_os_vars([(
            OsString::from("CORS_ORIGIN"),
            OsString::from_vec(vec![0x66, 0xff]),
        )]);
        let e = env.finish(()).expect_err("refused");
        assert!(e.to_string().contains("CORS_ORIGIN"), "{e}");
    }

    #[test]
    fn a_secret_is_never_shown() {
        let mut env = Env::from_vars([("S", "hunter2"), ("S_FILE", "/nonexistent")]);
        assert!(env.secret("S").is_none());
        let e = env.finish(()).expect_err("both set");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
