import { type MailboxMessage, mailbox } from "../api";
import { announce, count, field, formatTime, h, submitted } from "../dom";
import { action, row, table } from "./table";

/** The development mailbox's place in the console; it is a tool, not one of the app's pages. */
export const mailboxHash = "#/mailbox";

const URL_PATTERN = /https?:\/\/[^\s<>"'()[\]]+/g;

/**
 * A message's text as text nodes, with its http(s) URLs as links. Mail is written by whoever set
 * the app's templates: nothing in it is parsed as HTML.
 */
function mailText(text: string) {
  const box = h("div", { class: "mail-text" });
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    // A sentence's full stop or comma after a link is not part of it.
    const href = match[0].replace(/[.,;:!?]+$/, "");
    const at = match.index;
    box.append(text.slice(last, at));
    const url = webUrl(href);
    if (url) {
      // A new tab, as a mail client opens links: the console here keeps its state.
      box.append(h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" }, href));
    } else {
      box.append(href);
    }
    last = at + href.length;
  }
  box.append(text.slice(last));
  return box;
}

function webUrl(href: string) {
  try {
    const url = new URL(href);
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined;
  } catch {
    return undefined;
  }
}

function messageView(message: MailboxMessage) {
  const title = h("h3", { id: "mail-subject", tabIndex: -1 }, message.subject);
  const article = h(
    "article",
    { class: "mail", "aria-labelledby": "mail-subject" },
    title,
    h("p", { class: "mail-meta" }, `To ${message.to} · ${formatTime(message.created_at)}`),
    mailText(message.text ?? "(no text part)"),
  );
  return { article, title };
}

/**
 * The mail Heimdall queued (`GET /v1/dev/mailbox`, development servers with `DEV_MAILBOX=true`):
 * the latest messages of an app, and the one opened, with its links.
 */
export async function mailboxView(appName: string) {
  const appInput = h("input", { name: "mailbox-app", autocomplete: "organization" });
  appInput.value = appName;
  const list = h("div");
  const reading = h("div", { class: "mail-reader" });
  const root = h(
    "section",
    { class: "mailbox", "aria-labelledby": "mailbox-title" },
    h("h2", { id: "mailbox-title" }, "Mailbox"),
    h(
      "p",
      {},
      "Mail this development server would send. Links open in a new tab, as from a mail client.",
    ),
    h(
      "form",
      { class: "inline-form", onsubmit: submitted(() => load()) },
      field("App (empty: every app)", appInput),
      h("button", { type: "submit" }, "Refresh"),
    ),
    list,
    reading,
  );

  async function load() {
    try {
      const messages = await mailbox(appInput.value.trim());
      list.replaceChildren(
        table(
          count(messages.length, "message"),
          ["To", "Subject", "Time", "Actions"],
          messages.map((message) =>
            row(
              message.to,
              message.subject,
              formatTime(message.created_at),
              action("Open", `Open the message ${message.subject} to ${message.to}`, async () => {
                const { article, title } = messageView(message);
                reading.replaceChildren(article);
                title.focus();
              }),
            ),
          ),
        ),
      );
      announce(`${count(messages.length, "message")} in the mailbox`);
    } catch (error) {
      list.replaceChildren(h("p", { role: "alert" }, (error as Error).message));
    }
  }

  await load();
  return { element: root };
}
