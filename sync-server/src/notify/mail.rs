//! Notification e-mails, through the SMTP server the operator names
//! (`--smtp-url`, `--smtp-from`), to members who gave an address. Sent
//! after the notifications are stored, on a blocking thread; a failure is
//! logged and counted, and the notification stays in the member's inbox.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use rapport_model::api::Notification;
use rapport_protocol::ids::PublicKey;
use tracing::{debug, warn};

use crate::config::SmtpSettings;
use crate::metrics::Metrics;
use crate::relay::{Relay, lock};

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Why the SMTP settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("--smtp-url {url}: {reason}")]
    Url { url: String, reason: String },
    #[error(
        "--smtp-from {from}: {reason}; give an address such as \"rapport <relay@agency.example>\""
    )]
    From { from: String, reason: String },
}

/// The SMTP server and the sender.
#[derive(Clone)]
pub(crate) struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    pub(crate) fn new(settings: &SmtpSettings) -> Result<Self, MailError> {
        let transport = SmtpTransport::from_url(&settings.url)
            .map_err(|e| MailError::Url {
                url: settings.url.clone(),
                reason: e.to_string(),
            })?
            .timeout(Some(TIMEOUT))
            .build();
        let from = settings
            .from
            .parse()
            .map_err(|e: lettre::address::AddressError| MailError::From {
                from: settings.from.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self { transport, from })
    }

    /// E-mails each new notification to its member, if they gave an
    /// address in the record's workspace. Links name `base_url`.
    pub(crate) async fn send_all(
        &self,
        relay: &Arc<Relay>,
        base_url: &str,
        new: Vec<(PublicKey, Notification)>,
    ) {
        for (key, notification) in new {
            let Some((to, workspace, ws)) = address(relay, &key, &notification) else {
                continue;
            };
            if !first_to_mail(relay, key, &notification.id).await {
                debug!(member = %key, id = %notification.id, "another relay of the cluster e-mailed this notification");
                continue;
            }
            let message = match self.compose(&to, &workspace, &ws, base_url, &notification) {
                Ok(message) => message,
                Err(reason) => {
                    warn!(member = %key, %reason, "cannot write a notification e-mail");
                    continue;
                }
            };
            let transport = self.transport.clone();
            let sent = tokio::task::spawn_blocking(move || transport.send(&message)).await;
            match sent {
                Ok(Ok(_)) => {
                    debug!(member = %key, id = %notification.id, "notification e-mailed");
                    Metrics::add(&relay.metrics.emails_sent, 1);
                }
                Ok(Err(e)) => {
                    warn!(member = %key, error = %e, "cannot e-mail a notification");
                    Metrics::add(&relay.metrics.email_failures, 1);
                }
                Err(e) => warn!(error = %e, "the e-mail task failed"),
            }
        }
    }

    fn compose(
        &self,
        to: &str,
        workspace: &str,
        ws: &str,
        base_url: &str,
        n: &Notification,
    ) -> Result<Message, String> {
        let to: Mailbox = to
            .parse()
            .map_err(|e: lettre::address::AddressError| e.to_string())?;
        let who = n.by_name.clone().unwrap_or_else(|| "Someone".to_owned());
        let (subject, lead) = match n.kind.as_str() {
            "mention" => (
                format!("[{workspace}] {who} mentioned you on {}", n.title),
                format!(
                    "{who} mentioned you in a comment on “{}”:\n\n{}\n",
                    n.title, n.text
                ),
            ),
            "assigned" => (
                format!("[{workspace}] {who} assigned you {}", n.title),
                format!("{who} assigned you the task “{}”.\n", n.title),
            ),
            _ => (
                format!("[{workspace}] Due today: {}", n.title),
                format!("The task “{}” is due today.\n", n.title),
            ),
        };
        let body = format!(
            "{lead}\nOpen it: {base_url}/#/w/{ws}\n\nYou get this because you asked rapport to e-mail your notifications in {workspace}; `rapport inbox email off` stops them.\n"
        );
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body)
            .map_err(|e| e.to_string())
    }
}

/// The address `key` gave in the workspace of the notification's record,
/// with the workspace's name and id.
/// Whether this relay sends the e-mail: in a cluster, every relay makes
/// the same notifications, and the first to claim one in the cluster sends
/// it (so an e-mail goes at most once, even when sending fails). Without
/// NATS, each relay sends what it made.
async fn first_to_mail(relay: &Relay, key: PublicKey, id: &str) -> bool {
    let Some(control) = relay.control.get().cloned() else {
        return true;
    };
    let id = id.to_owned();
    let claimed = tokio::task::spawn_blocking(move || control.first_to_mail(&key, &id)).await;
    match claimed {
        Ok(Ok(first)) => first,
        Ok(Err(e)) => {
            warn!(error = %e, "cannot ask the cluster whether a notification was e-mailed; sending it");
            true
        }
        Err(e) => {
            warn!(error = %e, "the e-mail claim failed; sending it");
            true
        }
    }
}

fn address(relay: &Relay, key: &PublicKey, n: &Notification) -> Option<(String, String, String)> {
    let workspaces = lock(&relay.workspaces);
    let ws = workspaces.home_of(n.record)?.to_owned();
    let workspace = workspaces.get(&ws).ok()?;
    let email = workspace.members.get(key)?.email.clone()?;
    Some((email, workspace.name.clone(), ws))
}
