import type { EmailMessage, EmailSender, Logger } from "../../ports";

/**
 * The embedded default: a message is "sent" by printing it to the log, so `npm start` works with
 * no mail server. The text part is printed whole: it holds the link or code a developer needs.
 */
export function createLogEmailSender(logger: Logger): EmailSender {
  return {
    name: "log",
    async send(message: EmailMessage) {
      logger.info("email (not sent: no SMTP_URL or EMAIL_PROVIDER configured)", {
        email_id: message.id,
        to: message.to,
        subject: message.subject,
        text: message.text,
      });
    },
  };
}
