import { type Config, ConfigError } from "../../config";
import type { EmailSender, Logger } from "../../ports";
import { createHttpProviderEmailSender } from "./http-provider";
import { createLogEmailSender } from "./log";

/**
 * The sender the configuration names: SMTP (`SMTP_URL`, where the runtime can open sockets and
 * passes `smtp`), a provider's HTTP API (`EMAIL_PROVIDER`), else the log.
 *
 * @example
 * emailSenderFor(config, logger, { smtp: createSmtpEmailSender }); // Node
 * emailSenderFor(config, logger); // Workers: SMTP_URL is refused
 */
export function emailSenderFor(
  config: Config,
  logger: Logger,
  runtime: { smtp?: (url: string) => EmailSender } = {},
): EmailSender {
  if (config.SMTP_URL) {
    if (!runtime.smtp) {
      throw new ConfigError(
        "Invalid configuration: SMTP_URL is for Node; on Workers set EMAIL_PROVIDER (resend or postmark) and EMAIL_API_KEY",
      );
    }
    return runtime.smtp(config.SMTP_URL);
  }
  if (config.EMAIL_PROVIDER && config.EMAIL_API_KEY) {
    return createHttpProviderEmailSender({
      provider: config.EMAIL_PROVIDER,
      apiKey: config.EMAIL_API_KEY,
      apiUrl: config.EMAIL_API_URL,
    });
  }
  return createLogEmailSender(logger);
}
