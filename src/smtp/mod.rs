//! E-mail over SMTP with lettre (tokio, rustls, a connection pool): the sender,
//! its settings and its message templates (the `smtp` feature).

mod settings;
mod template;

pub use settings::{SmtpConfig, SmtpTls};
pub use template::{Rendered, Templates, escape_html};

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::error::BackendError;
use crate::plugin::credential::Contact;
use crate::plugin::sender::{Delivery, OtpMessage, Sender};

/// SMTP replies that refuse one recipient for good: mailbox unavailable (550),
/// not local (551), mailbox name not allowed (553), bad address syntax (501).
/// Other permanent replies (authentication, policy, size) are server problems.
const RECIPIENT_REFUSED: [&str; 4] = ["550", "551", "553", "501"];

/// Sends each code as an e-mail (plain text and HTML alternatives) rendered from
/// [`Templates`], through a pooled, TLS-protected SMTP connection.
///
/// Outcomes: accepted → `Sent`; the server refuses the recipient (550, 551, 553, 501)
/// or the credential holds no e-mail address → `Rejected`; connection refused,
/// TLS failure, timeout or a temporary (4xx) reply → `Unavailable`; any other
/// permanent reply (e.g. 535 authentication failed) → `Internal`.
#[derive(Debug)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    templates: Arc<Templates>,
}

impl SmtpSender {
    /// A sender for `config`; the error names the variable to fix.
    pub fn new(config: &SmtpConfig, templates: Arc<Templates>) -> Result<Self, String> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("SMTP_FROM={:?}: {e}", config.from))?;
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => Tls::Required(tls_parameters(config)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(config)?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(config.pool_size)
                    .idle_timeout(Duration::from_secs(60)),
            );
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_owned(),
            ));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            templates,
        })
    }
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let pem =
            std::fs::read(path).map_err(|e| format!("SMTP_CA_FILE={}: {e}", path.display()))?;
        let certificate = Certificate::from_pem(&pem)
            .map_err(|e| format!("SMTP_CA_FILE={}: {e}", path.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("SMTP_TLS: cannot set up TLS: {e}"))
}

#[async_trait]
impl Sender for SmtpSender {
    async fn send(&self, m: &OtpMessage<'_>) -> Result<Delivery, BackendError> {
        let masked = m.credential.masked();
        let to = match m.credential.contact() {
            Some(Contact::Email(address)) => address.parse::<Mailbox>().ok(),
            _ => None,
        };
        let Some(to) = to else {
            tracing::info!(credential = %masked, "smtp: the credential holds no usable e-mail address");
            return Ok(Delivery::Rejected);
        };
        let mut rendered = self
            .templates
            .render(m.locale, m.code.expose(), m.valid_for, m.purpose);
        if let Some(link) = m.link {
            rendered.add_link(link);
        }
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| BackendError::Internal(format!("smtp: cannot build the message: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => {
                tracing::info!(credential = %masked, language = %rendered.language, "smtp: code sent");
                Ok(Delivery::Sent)
            }
            Err(e) => classify(&e, &masked),
        }
    }
}

/// Maps a lettre error to the sender contract. Server replies are reduced to their
/// code: their text may quote the recipient.
fn classify(e: &lettre::transport::smtp::Error, masked: &str) -> Result<Delivery, BackendError> {
    if let Some(code) = e.status() {
        let code = code.to_string();
        if e.is_permanent() && RECIPIENT_REFUSED.contains(&code.as_str()) {
            tracing::info!(credential = %masked, reply = %code, "smtp: the server refused the recipient");
            return Ok(Delivery::Rejected);
        }
        if e.is_permanent() {
            return Err(BackendError::Internal(format!(
                "smtp: permanent reply {code} while sending to {masked}"
            )));
        }
        return Err(BackendError::Unavailable(format!(
            "smtp: temporary reply {code} while sending to {masked}"
        )));
    }
    let kind = if e.is_timeout() {
        "timed out".to_owned()
    } else {
        format!("transport failed: {e}")
    };
    Err(BackendError::Unavailable(format!(
        "smtp: {kind} while sending to {masked}"
    )))
}
