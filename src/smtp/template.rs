//! Message templates: subject, plain-text and HTML bodies per language.
//!
//! A template is text with four placeholders: `{{code}}`, `{{minutes}}` (the code's
//! lifetime, rounded up), `{{product}}` (`OTP_PRODUCT_NAME`) and `{{purpose}}` (the
//! code's purpose with `OTP_PURPOSES`, else empty). In HTML bodies every
//! value is HTML-escaped. English and Spanish are built in; `OTP_TEMPLATE_DIR` may
//! hold `<language>/subject.txt`, `<language>/body.txt` and `<language>/body.html`
//! to replace any of them or add languages (a missing file keeps the built-in one,
//! or the English one for a new language).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::plugin::sender::Locale;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Code,
    Minutes,
    Product,
    Purpose,
}

/// A parsed template; holding one means every placeholder is known.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Template(Vec<Part>);

impl Template {
    fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| "an unclosed `{{`".to_owned())?;
            parts.push(match after[..end].trim() {
                "code" => Part::Code,
                "minutes" => Part::Minutes,
                "product" => Part::Product,
                "purpose" => Part::Purpose,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{{{other}}}}} (known: {{{{code}}}}, {{{{minutes}}}}, {{{{product}}}}, {{{{purpose}}}})"
                    ));
                }
            });
            rest = &after[end + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    fn has_code(&self) -> bool {
        self.0.contains(&Part::Code)
    }

    fn render(&self, values: &Values<'_>, escape: fn(&str) -> String) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Code => out.push_str(&escape(values.code)),
                Part::Minutes => out.push_str(&values.minutes.to_string()),
                Part::Product => out.push_str(&escape(values.product)),
                Part::Purpose => out.push_str(&escape(values.purpose)),
            }
        }
        out
    }
}

struct Values<'a> {
    code: &'a str,
    minutes: u64,
    product: &'a str,
    purpose: &'a str,
}

/// The three templates of one language.
#[derive(Debug, Clone)]
struct Set {
    subject: Template,
    text: Template,
    html: Template,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The language used (`en`, `es`, ...).
    pub language: String,
    /// One line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, values escaped.
    pub html: String,
}

impl Rendered {
    /// Appends a magic link to both bodies (after the code, which stays usable).
    pub fn add_link(&mut self, link: &str) {
        let intro = if self.language == "es" {
            "O abre este enlace para continuar:"
        } else {
            "Or open this link to continue:"
        };
        self.text.push_str(&format!("\n{intro}\n\n    {link}\n"));
        let link = escape_html(link);
        let block = format!("<p>{intro}</p>\n<p><a href=\"{link}\">{link}</a></p>\n");
        // Inside the document when it has a body element (some clients drop what follows).
        match self.html.rfind("</body>") {
            Some(at) => self.html.insert_str(at, &block),
            None => self.html.push_str(&block),
        }
    }
}

/// The message templates of every language, and the product name.
#[derive(Debug, Clone)]
pub struct Templates {
    sets: BTreeMap<String, Set>,
    product: String,
}

const EN_SUBJECT: &str = "{{code}} is your {{product}} code";
const EN_TEXT: &str = "Your {{product}} verification code is:\n\n    {{code}}\n\n\
It expires in {{minutes}} minutes. If you did not ask for it, you can ignore this e-mail.\n";
const EN_HTML: &str = "<!doctype html>\n<html lang=\"en\"><body>\n\
<p>Your {{product}} verification code is:</p>\n\
<p style=\"font-size:1.6em;font-family:monospace;letter-spacing:0.1em\"><strong>{{code}}</strong></p>\n\
<p>It expires in {{minutes}} minutes. If you did not ask for it, you can ignore this e-mail.</p>\n\
</body></html>\n";
const ES_SUBJECT: &str = "{{code}} es tu código de {{product}}";
const ES_TEXT: &str = "Tu código de verificación de {{product}} es:\n\n    {{code}}\n\n\
Caduca en {{minutes}} minutos. Si no lo has pedido, puedes ignorar este correo.\n";
const ES_HTML: &str = "<!doctype html>\n<html lang=\"es\"><body>\n\
<p>Tu código de verificación de {{product}} es:</p>\n\
<p style=\"font-size:1.6em;font-family:monospace;letter-spacing:0.1em\"><strong>{{code}}</strong></p>\n\
<p>Caduca en {{minutes}} minutos. Si no lo has pedido, puedes ignorar este correo.</p>\n\
</body></html>\n";

const BUILTIN: [(&str, [&str; 3]); 2] = [
    ("en", [EN_SUBJECT, EN_TEXT, EN_HTML]),
    ("es", [ES_SUBJECT, ES_TEXT, ES_HTML]),
];

const FILES: [&str; 3] = ["subject.txt", "body.txt", "body.html"];

impl Templates {
    /// The built-in English and Spanish templates.
    pub fn builtin(product: &str) -> Self {
        let mut sets = BTreeMap::new();
        for (lang, texts) in BUILTIN {
            let [subject, text, html] =
                texts.map(|t| Template::parse(t).unwrap_or(Template(Vec::new())));
            sets.insert(
                lang.to_owned(),
                Set {
                    subject,
                    text,
                    html,
                },
            );
        }
        Self {
            sets,
            product: product.to_owned(),
        }
    }

    /// The built-in templates, overridden and extended from `dir` (`OTP_TEMPLATE_DIR`):
    /// one sub-folder per language (`en`, `es`, `pt-br`, ...) with any of
    /// `subject.txt`, `body.txt`, `body.html`.
    pub fn load(dir: Option<&Path>, product: &str) -> Result<Self, String> {
        let mut templates = Self::builtin(product);
        let Some(dir) = dir else {
            return Ok(templates);
        };
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("OTP_TEMPLATE_DIR={}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("OTP_TEMPLATE_DIR={}: {e}", dir.display()))?;
            if !entry.path().is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_ascii_lowercase();
            if Locale::of(&name).tags() != [name.clone()] {
                return Err(format!(
                    "OTP_TEMPLATE_DIR={}: sub-folder {name:?} is not a language tag such as en, es or pt-br",
                    dir.display()
                ));
            }
            let base = templates
                .sets
                .get(&name)
                .or_else(|| templates.sets.get(Locale::FALLBACK))
                .cloned()
                .ok_or("the English templates are built in")?;
            let mut loaded = [base.subject, base.text, base.html];
            for (slot, file) in loaded.iter_mut().zip(FILES) {
                let path = entry.path().join(file);
                let text = match std::fs::read_to_string(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(format!("OTP_TEMPLATE_DIR: {}: {e}", path.display())),
                };
                let text = if file == "subject.txt" {
                    let line = text.trim();
                    if line.contains(['\r', '\n']) || line.is_empty() {
                        return Err(format!(
                            "OTP_TEMPLATE_DIR: {}: the subject must be one non-empty line",
                            path.display()
                        ));
                    }
                    line.to_owned()
                } else {
                    text
                };
                let parsed = Template::parse(&text)
                    .map_err(|e| format!("OTP_TEMPLATE_DIR: {}: {e}", path.display()))?;
                if file != "subject.txt" && !parsed.has_code() {
                    return Err(format!(
                        "OTP_TEMPLATE_DIR: {}: the body must contain {{{{code}}}}",
                        path.display()
                    ));
                }
                *slot = parsed;
            }
            let [subject, text, html] = loaded;
            templates.sets.insert(
                name,
                Set {
                    subject,
                    text,
                    html,
                },
            );
        }
        Ok(templates)
    }

    /// The message for `code`, valid for `valid_for`, in the best language for `locale`.
    pub fn render(
        &self,
        locale: &Locale,
        code: &str,
        valid_for: Duration,
        purpose: Option<&str>,
    ) -> Rendered {
        let language = locale.best(|t| self.sets.contains_key(t));
        let minutes = valid_for.as_secs().div_ceil(60).max(1);
        let values = Values {
            code,
            minutes,
            product: &self.product,
            purpose: purpose.unwrap_or_default(),
        };
        let plain = |s: &str| s.to_owned();
        match self
            .sets
            .get(&language)
            .or_else(|| self.sets.get(Locale::FALLBACK))
        {
            Some(set) => Rendered {
                subject: set
                    .subject
                    .render(&values, plain)
                    .replace(['\r', '\n'], " "),
                text: set.text.render(&values, plain),
                html: set.html.render(&values, escape_html),
                language,
            },
            None => Rendered {
                subject: format!("{code} is your {} code", self.product),
                text: format!("{code}\n"),
                html: format!("<p>{}</p>", escape_html(code)),
                language,
            },
        }
    }
}

pub use crate::http::page::escape_html;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_and_spanish_are_built_in() {
        let t = Templates::builtin("Acme");
        let en = t.render(&Locale::default(), "abc123", Duration::from_secs(180), None);
        assert_eq!(en.subject, "abc123 is your Acme code");
        assert!(en.text.contains("abc123") && en.text.contains("3 minutes"));
        let es = t.render(
            &Locale::of("es-ES,en;q=0.5"),
            "abc123",
            Duration::from_secs(61),
            None,
        );
        assert_eq!(es.language, "es");
        assert_eq!(es.subject, "abc123 es tu código de Acme");
        assert!(es.text.contains("2 minutos"));
    }

    #[test]
    fn html_bodies_escape_every_value() {
        let t = Templates::builtin("<b>Acme & Co</b>");
        let r = t.render(
            &Locale::default(),
            "<i>x</i>",
            Duration::from_secs(60),
            None,
        );
        assert!(r.html.contains("&lt;i&gt;x&lt;/i&gt;"));
        assert!(r.html.contains("&lt;b&gt;Acme &amp; Co&lt;/b&gt;"));
        assert!(!r.html.contains("<i>"));
        assert!(r.text.contains("<i>x</i>"));
    }

    #[test]
    fn the_purpose_placeholder_names_the_codes_purpose() {
        let set = Template::parse("Your {{purpose}} code").expect("known placeholder");
        let values = |purpose| Values {
            code: "k",
            minutes: 1,
            product: "Acme",
            purpose,
        };
        assert_eq!(
            set.render(&values("step_up"), |s| s.to_owned()),
            "Your step_up code"
        );
        assert_eq!(set.render(&values(""), |s| s.to_owned()), "Your  code");
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        assert!(Template::parse("hi {{name}}").is_err());
        assert!(Template::parse("hi {{code").is_err());
        assert_eq!(
            Template::parse("a{{ code }}b").map(|t| t.0),
            Ok(vec![
                Part::Text("a".into()),
                Part::Code,
                Part::Text("b".into())
            ])
        );
    }

    #[test]
    fn files_override_and_add_languages() {
        let dir = std::env::temp_dir().join(format!("otp-templates-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("fr")).expect("mkdir");
        std::fs::write(dir.join("fr/subject.txt"), "Code {{product}} : {{code}}\n").expect("write");
        let t = Templates::load(Some(&dir), "Acme").expect("valid");
        let fr = t.render(&Locale::of("fr-CA"), "k1", Duration::from_secs(60), None);
        assert_eq!(fr.subject, "Code Acme : k1");
        assert!(
            fr.text.contains("Your Acme verification code"),
            "English body kept"
        );
        std::fs::write(dir.join("fr/body.txt"), "no code here").expect("write");
        assert!(Templates::load(Some(&dir), "Acme").is_err());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
