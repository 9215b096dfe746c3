/** One message as Heimdall sends it: a plain-text and an HTML part, from the app's sender. */
export interface EmailMessage {
  /** The outbox row's id: providers that deduplicate get it as the idempotency key. */
  id: string;
  to: string;
  /** The platform's address (`EMAIL_FROM`). */
  from: string;
  /** The display name shown with `from` (the app's `email_sender_name`). */
  fromName: string;
  subject: string;
  text: string;
  html: string;
}

/** Hands messages to whatever delivers them: an SMTP server, a provider's HTTP API, the log. */
export interface EmailSender {
  /** What the log and the health of the outbox call this sender: `smtp`, `resend`, `log`. */
  readonly name: string;
  /**
   * Resolves once the receiving side accepted the message; throws {@link EmailDeliveryError}
   * otherwise (any other error counts as retryable).
   */
  send(message: EmailMessage): Promise<void>;
}

/** A refused or failed hand-over; `retryable` is false when sending again cannot help. */
export class EmailDeliveryError extends Error {
  override readonly name = "EmailDeliveryError";
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}
