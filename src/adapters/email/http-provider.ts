import { EmailDeliveryError, type EmailMessage, type EmailSender } from "../../ports/email";

export type EmailProvider = "resend" | "postmark";

export interface HttpProviderOptions {
  provider: EmailProvider;
  apiKey: string;
  /** The API's base URL; the provider's own by default (a local server in tests). */
  apiUrl?: string | undefined;
  fetch?: typeof fetch;
}

interface ProviderRequest {
  path: string;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * How each provider's send-one-message endpoint is called.
 * Resend: https://resend.com/docs/api-reference/emails/send-email (POST /emails, Bearer key,
 * `Idempotency-Key` honoured for 24 h: https://resend.com/docs/dashboard/emails/idempotency-keys).
 * Postmark: https://postmarkapp.com/developer/user-guide/send-email-with-api (POST /email,
 * `X-Postmark-Server-Token`; 401 for a bad token, 422 with an `ErrorCode` for a bad message).
 */
const providers: Record<
  EmailProvider,
  { base: string; request(message: EmailMessage, apiKey: string): ProviderRequest }
> = {
  resend: {
    base: "https://api.resend.com",
    request: (message, apiKey) => ({
      path: "/emails",
      headers: { Authorization: `Bearer ${apiKey}`, "Idempotency-Key": message.id },
      body: {
        from: mailbox(message.fromName, message.from),
        to: [message.to],
        subject: message.subject,
        text: message.text,
        html: message.html,
      },
    }),
  },
  postmark: {
    base: "https://api.postmarkapp.com",
    request: (message, apiKey) => ({
      path: "/email",
      headers: { "X-Postmark-Server-Token": apiKey, Accept: "application/json" },
      body: {
        From: mailbox(message.fromName, message.from),
        To: message.to,
        Subject: message.subject,
        TextBody: message.text,
        HtmlBody: message.html,
        MessageStream: "outbound",
      },
    }),
  },
};

/**
 * Sends through a provider's HTTP API with nothing but `fetch`, so it runs on Workers and Node.
 * 429 and 5xx answers (and no answer) are retried; any other 4xx is the message's or the key's
 * fault and is not.
 */
export function createHttpProviderEmailSender(options: HttpProviderOptions): EmailSender {
  const provider = providers[options.provider];
  const base = (options.apiUrl ?? provider.base).replace(/\/+$/, "");
  // Called unbound: the Workers runtime refuses `fetch` invoked with another `this`.
  const send = options.fetch ?? ((input, init) => fetch(input, init));
  return {
    name: options.provider,
    async send(message) {
      const { path, headers, body } = provider.request(message, options.apiKey);
      let res: Response;
      try {
        res = await send(`${base}${path}`, {
          method: "POST",
          headers: { ...headers, "Content-Type": "application/json" },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(15_000),
        });
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        throw new EmailDeliveryError(`${options.provider}: no answer (${reason})`, true);
      }
      if (res.ok) {
        await res.body?.cancel();
        return;
      }
      const detail = await providerMessage(res);
      const retryable = res.status === 429 || res.status >= 500;
      throw new EmailDeliveryError(
        `${options.provider} answered ${res.status}${detail ? `: ${detail}` : ""}`,
        retryable,
      );
    },
  };
}

/**
 * `Name <address>`, the name quoted when it holds a character RFC 5322 gives a meaning (a comma
 * or a bracket in an app's sender name must not read as another address).
 */
function mailbox(name: string, address: string) {
  const flat = name.replace(/[\r\n]+/g, " ");
  const display = /[()<>[\]:;@\\,."]/.test(flat) ? `"${flat.replace(/["\\]/g, "\\$&")}"` : flat;
  return `${display} <${address}>`;
}

/** The provider's own words for a refusal (Resend's `message`, Postmark's `Message`), short. */
async function providerMessage(res: Response) {
  const text = await res.text().catch(() => "");
  try {
    const parsed = JSON.parse(text) as {
      message?: unknown;
      Message?: unknown;
      ErrorCode?: unknown;
    };
    const words = parsed.message ?? parsed.Message;
    const code = parsed.ErrorCode === undefined ? "" : ` (ErrorCode ${String(parsed.ErrorCode)})`;
    return typeof words === "string" ? `${words.slice(0, 200)}${code}` : "";
  } catch {
    return "";
  }
}
