import type { EmailKind } from "../db/schema/settings";
import type { AppRecord } from "./apps";
import { settingsOf } from "./apps";

/** What a template may name; a value the message has no use for is left empty. */
export interface EmailVariables {
  app_name: string;
  email: string;
  link?: string;
  code?: string;
  minutes?: number;
}

interface Template {
  subject: string;
  text: string;
  html: string;
}

const footer = "If you did not ask for this, you can ignore this message.";

/** Heimdall's wording of each mail; an app may replace any part (`email_templates`). */
const defaults: Record<EmailKind, Template> = {
  email_verification: {
    subject: "Confirm your email for {{app_name}}",
    text: `Confirm that {{email}} is your address for {{app_name}} by opening this link within {{minutes}} minutes:\n\n{{link}}\n\n${footer}`,
    html: `<p>Confirm that {{email}} is your address for {{app_name}}.</p><p><a href="{{link}}">Confirm my email</a></p><p>The link works for {{minutes}} minutes.</p><p>${footer}</p>`,
  },
  password_reset: {
    subject: "Reset your {{app_name}} password",
    text: `Someone asked to reset the password of {{email}} on {{app_name}}. Choose a new one within {{minutes}} minutes:\n\n{{link}}\n\n${footer}`,
    html: `<p>Someone asked to reset the password of {{email}} on {{app_name}}.</p><p><a href="{{link}}">Choose a new password</a></p><p>The link works for {{minutes}} minutes.</p><p>${footer}</p>`,
  },
  email_otp: {
    subject: "Your {{app_name}} sign-in code",
    text: `Your code to sign in to {{app_name}} is {{code}}. Or open this link:\n\n{{link}}\n\nBoth work once, for {{minutes}} minutes.\n\n${footer}`,
    html: `<p>Your code to sign in to {{app_name}}:</p><p style="font-size:1.5em;letter-spacing:.2em"><strong>{{code}}</strong></p><p>Or <a href="{{link}}">sign in with this link</a>. Both work once, for {{minutes}} minutes.</p><p>${footer}</p>`,
  },
  email_change: {
    subject: "Confirm your new email for {{app_name}}",
    text: `Confirm {{email}} as the new address of your {{app_name}} account within {{minutes}} minutes:\n\n{{link}}\n\n${footer}`,
    html: `<p>Confirm {{email}} as the new address of your {{app_name}} account.</p><p><a href="{{link}}">Confirm the new address</a></p><p>The link works for {{minutes}} minutes.</p><p>${footer}</p>`,
  },
  email_changed: {
    subject: "The email of your {{app_name}} account is changing",
    text: "Someone asked to change the address of your {{app_name}} account from this one to {{email}}. If that was not you, reset your password and contact the app's support.",
    html: "<p>Someone asked to change the address of your {{app_name}} account from this one to {{email}}.</p><p>If that was not you, reset your password and contact the app's support.</p>",
  },
  password_changed: {
    subject: "Your {{app_name}} password was changed",
    text: "The password of {{email}} on {{app_name}} was just changed. If that was not you, reset it now and contact the app's support.",
    html: "<p>The password of {{email}} on {{app_name}} was just changed.</p><p>If that was not you, reset it now and contact the app's support.</p>",
  },
  account_exists: {
    subject: "You already have a {{app_name}} account",
    text: `Someone tried to create a {{app_name}} account for {{email}}, which has one already. If it was you, sign in, or reset your password:\n\n{{link}}\n\n${footer}`,
    html: `<p>Someone tried to create a {{app_name}} account for {{email}}, which has one already.</p><p>If it was you, sign in, or <a href="{{link}}">reset your password</a>.</p><p>${footer}</p>`,
  },
};

const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};
const escapeHtml = (value: string) =>
  value.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);

function fill(template: string, variables: EmailVariables, encode: (value: string) => string) {
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => {
    const value = variables[name as keyof EmailVariables];
    return value === undefined ? "" : encode(String(value));
  });
}

/**
 * The message of one kind for one app: the app's own wording where it set one, Heimdall's
 * otherwise. Values are escaped in the HTML part (an address or app name cannot inject markup);
 * subject and text are plain text.
 */
export function renderEmail(app: AppRecord, kind: EmailKind, variables: EmailVariables) {
  const custom = settingsOf(app).email_templates[kind] ?? {};
  const template = { ...defaults[kind], ...custom };
  const plain = (value: string) => value.replace(/[\r\n]+/g, " ");
  return {
    subject: fill(template.subject, variables, plain),
    text: fill(template.text, variables, (value) => value),
    html: fill(template.html, variables, escapeHtml),
  };
}
