//! Email: messages (plain text + HTML, multipart/alternative) that say why the reader got them and link to the
//! resource, sent over SMTP with lettre (rustls), or written as `.eml` files to `notifications.outbox_dir` when
//! no SMTP host is configured.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{FileTransport, Message, SmtpTransport, Transport};

use crate::config::NotificationSettings;

/// One line of a message: what happened, why the reader is told, where to look.
#[derive(Debug, Clone)]
pub struct Item {
    pub summary: String,
    pub reason: String,
    pub url: String,
}

/// How mail leaves this instance.
pub enum Mailer {
    Smtp(Box<SmtpTransport>),
    Files(FileTransport),
}

impl Mailer {
    pub fn from_settings(settings: &NotificationSettings) -> Result<Self, String> {
        let smtp = &settings.smtp;
        if smtp.host.trim().is_empty() {
            std::fs::create_dir_all(&settings.outbox_dir).map_err(|e| {
                format!(
                    "cannot create notifications.outbox_dir {}: {e}",
                    settings.outbox_dir
                )
            })?;
            return Ok(Mailer::Files(FileTransport::new(&settings.outbox_dir)));
        }
        let host = smtp.host.trim();
        let tls = match smtp.tls.as_str() {
            "none" => Tls::None,
            mode => {
                let params = TlsParameters::new(host.to_owned()).map_err(|e| format!("SMTP TLS: {e}"))?;
                if mode == "tls" {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        let mut builder = SmtpTransport::builder_dangerous(host)
            .port(smtp.port)
            .tls(tls)
            .timeout(Some(Duration::from_secs(smtp.timeout_secs.max(1))));
        if !smtp.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                smtp.username.clone(),
                smtp.password.expose().to_owned(),
            ));
        }
        Ok(Mailer::Smtp(Box::new(builder.build())))
    }

    pub fn send(&self, message: &Message) -> Result<(), String> {
        match self {
            Mailer::Smtp(t) => t.send(message).map(|_| ()).map_err(|e| format!("SMTP: {e}")),
            Mailer::Files(t) => t
                .send(message)
                .map(|_| ())
                .map_err(|e| format!("outbox file: {e}")),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Builds the message for `to` with one item (immediate) or several (a daily digest).
pub fn compose(
    from: &str,
    to_name: &str,
    to_email: &str,
    subject: &str,
    items: &[Item],
) -> Result<Message, String> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| format!("notifications.smtp.from: {e}"))?;
    let to = Mailbox::new(
        Some(to_name.to_owned()),
        to_email.parse().map_err(|e| format!("recipient address: {e}"))?,
    );
    let mut text = String::new();
    let mut html = String::from("<!doctype html><html><body>");
    for item in items {
        text.push_str(&format!(
            "{}\n\nWhy you received this: {}.\nOpen: {}\n\n",
            item.summary, item.reason, item.url
        ));
        html.push_str(&format!(
            "<p>{}</p><p><small>Why you received this: {}.</small></p><p><a href=\"{}\">Open in qip-pool</a></p><hr>",
            escape(&item.summary),
            escape(&item.reason),
            escape(&item.url)
        ));
    }
    text.push_str(
        "You can choose immediate emails, a daily digest or none: PUT /api/v1/me/notification-preferences.\n",
    );
    html.push_str(
        "<p><small>You can choose immediate emails, a daily digest or none: \
         PUT /api/v1/me/notification-preferences.</small></p></body></html>",
    );
    Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html)),
        )
        .map_err(|e| format!("message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_text_and_html_with_reason_and_link() {
        let items = [Item {
            summary: "Proposal QIP-1 <b> awaits".into(),
            reason: "you decide".into(),
            url: "https://qip.example/api/v1/proposals/p1".into(),
        }];
        let m = compose(
            "qip <no-reply@example.org>",
            "Ann",
            "ann@example.org",
            "QIP-1",
            &items,
        )
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"));
        assert!(raw.contains("Why you received this: you decide"));
        assert!(raw.contains("&lt;b&gt;"));
    }
}
