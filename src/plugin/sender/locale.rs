//! The languages a client asked for (`Accept-Language`), best first.

/// At most this many languages are kept from one header.
const MAX_TAGS: usize = 8;

/// The languages a client prefers, best first, as lower-case BCP 47 tags
/// (`es-es`, `es`, `en`). Empty means "no preference": English.
///
/// Built from an `Accept-Language` header: q-values order the tags (ties keep the
/// header's order), `q=0` and `*` are dropped, malformed entries are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Locale {
    tags: Vec<String>,
}

impl Locale {
    /// English, the fallback.
    pub const FALLBACK: &'static str = "en";

    /// Parses an `Accept-Language` header value (`None`: no header).
    pub fn from_accept_language(header: Option<&str>) -> Self {
        let Some(header) = header else {
            return Self::default();
        };
        let mut weighted: Vec<(u16, String)> = Vec::new();
        for item in header.split(',').take(32) {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let mut q = 1000u16;
            for param in parts {
                let Some((name, value)) = param.split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("q") {
                    q = parse_q(value.trim()).unwrap_or(0);
                }
            }
            if q == 0 || !is_language_tag(&tag) || weighted.iter().any(|(_, t)| *t == tag) {
                continue;
            }
            weighted.push((q, tag));
        }
        // A stable sort keeps the header's order among equal weights.
        weighted.sort_by_key(|w| std::cmp::Reverse(w.0));
        Self {
            tags: weighted
                .into_iter()
                .take(MAX_TAGS)
                .map(|(_, t)| t)
                .collect(),
        }
    }

    /// A single language, e.g. `Locale::of("es")`.
    pub fn of(tag: &str) -> Self {
        Self::from_accept_language(Some(tag))
    }

    /// The tags, best first.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// The client's first choice, or `en`.
    pub fn preferred(&self) -> &str {
        self.tags.first().map_or(Self::FALLBACK, String::as_str)
    }

    /// The best of `available` (lower-case tags) for this client: an exact match
    /// first, then the primary language (`es-mx` → `es`), in preference order;
    /// `en` when nothing fits.
    pub fn best(&self, available: impl Fn(&str) -> bool) -> String {
        for tag in &self.tags {
            if available(tag) {
                return tag.clone();
            }
            let primary = tag.split('-').next().unwrap_or(tag);
            if available(primary) {
                return primary.to_owned();
            }
        }
        Self::FALLBACK.to_owned()
    }
}

/// `q` values are `0`, `1` or a decimal with up to three digits; in thousandths.
fn parse_q(value: &str) -> Option<u16> {
    let (int, frac) = value.split_once('.').unwrap_or((value, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac_value = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(frac_value),
        "1" if frac_value == 0 => Some(1000),
        _ => None,
    }
}

/// `en`, `es-419`, `zh-hant-tw`: alphanumeric subtags of 1 to 8, the first alphabetic.
fn is_language_tag(tag: &str) -> bool {
    let mut subtags = tag.split('-');
    let first_ok = subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok
        && tag.len() <= 35
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_order_the_languages() {
        let l = Locale::from_accept_language(Some("fr;q=0.5, es-ES , en;q=0.8, de;q=0, *"));
        assert_eq!(l.tags(), ["es-es", "en", "fr"]);
        assert_eq!(l.preferred(), "es-es");
    }

    #[test]
    fn malformed_entries_are_ignored() {
        let l = Locale::from_accept_language(Some("<script>, es;q=2, en;q=abc, pt;q=0.25"));
        assert_eq!(l.tags(), ["pt"]);
        assert_eq!(Locale::from_accept_language(None).preferred(), "en");
    }

    #[test]
    fn best_falls_back_to_the_primary_language_then_english() {
        let available = |t: &str| t == "en" || t == "es";
        assert_eq!(Locale::of("es-MX").best(available), "es");
        assert_eq!(Locale::of("fr, es;q=0.1").best(available), "es");
        assert_eq!(Locale::of("fr").best(available), "en");
    }
}
