import { announce, h } from "../dom";

/** A table with a caption and column headers, for lists of resources. */
export function table(caption: string, headers: string[], rows: HTMLTableRowElement[]) {
  // Wide tables scroll sideways inside their own box on narrow screens, not the page.
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, ...headers.map((name) => h("th", { scope: "col" }, name)))),
      h("tbody", {}, ...rows),
    ),
  );
}

export const row = (...cells: Array<Node | string>) =>
  h("tr", {}, ...cells.map((cell) => h("td", {}, cell)));

/** A secret shown once, with a copy button. */
export function secretBox(label: string, value: string) {
  const code = h("code", { class: "secret" }, value);
  return h(
    "div",
    { class: "secret-row" },
    h("span", {}, label),
    code,
    h(
      "button",
      {
        type: "button",
        "aria-label": `Copy ${label}`,
        onclick: () => void navigator.clipboard?.writeText(value),
      },
      "Copy",
    ),
  );
}

/** A row's button: its accessible name says which row it acts on; failures are announced. */
export const action = (label: string, name: string, run: () => Promise<unknown>) =>
  h(
    "button",
    {
      type: "button",
      "aria-label": name,
      onclick: () => run().catch((e: Error) => announce(e.message, "error")),
    },
    label,
  );
