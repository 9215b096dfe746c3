import { createTransport } from "nodemailer";
import { EmailDeliveryError, type EmailMessage, type EmailSender } from "../../ports/email";

/**
 * Sends over SMTP with nodemailer: `smtp://user:pass@host:587` upgrades with STARTTLS when the
 * server offers it, `smtps://…:465` speaks TLS from the first byte. The user and password are
 * taken from the URL, percent-decoded (a `@` in a password is `%40`).
 */
export function createSmtpEmailSender(url: string): EmailSender {
  const target = new URL(url);
  const secure = target.protocol === "smtps:";
  const transport = createTransport({
    host: target.hostname,
    port: target.port ? Number(target.port) : secure ? 465 : 587,
    secure,
    auth: target.username
      ? {
          user: decodeURIComponent(target.username),
          pass: decodeURIComponent(target.password),
        }
      : undefined,
    // nodemailer waits two minutes for a connection by default; a dead server should cost a
    // dispatcher seconds, not its lease.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  return {
    name: "smtp",
    async send(message: EmailMessage) {
      try {
        await transport.sendMail({
          from: { name: message.fromName, address: message.from },
          to: message.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
        });
      } catch (error) {
        throw smtpFailure(error);
      }
    },
  };
}

/**
 * A 5xx reply about the message is permanent (RFC 5321 §4.2.1); a 4xx reply or a lost connection
 * may pass later. A refused login (nodemailer's `EAUTH`, 535) is the operator's configuration,
 * not the message's fault: retried, so mail waits for the fixed password instead of being lost.
 */
function smtpFailure(error: unknown) {
  const { responseCode, code } = error as { responseCode?: unknown; code?: unknown };
  const permanent = typeof responseCode === "number" && responseCode >= 500 && code !== "EAUTH";
  const message = error instanceof Error ? error.message : String(error);
  return new EmailDeliveryError(`smtp: ${message}`, !permanent);
}
