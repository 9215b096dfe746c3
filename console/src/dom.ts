type Child = Node | string | number | false | null | undefined;
type Props = Record<string, unknown>;

/**
 * Builds an element: `on*` props become listeners, `class` the class list, `aria-*`, `data-*`,
 * `for` and `role` attributes, anything else a property.
 *
 * @example h("button", { type: "button", onclick: save }, "Save")
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value as EventListener);
    } else if (name === "class") {
      element.className = String(value);
    } else if (/^(aria-|data-)|^(for|role)$/.test(name)) {
      element.setAttribute(name, String(value));
    } else {
      (element as unknown as Props)[name] = value;
    }
  }
  element.append(...children.filter((c) => c !== false && c != null).map(toNode));
  return element;
}

const toNode = (child: Child) =>
  child instanceof Node ? child : document.createTextNode(String(child));

/** A labelled form field: the label's `for` points at the input, as screen readers need. */
export function field(label: string, input: HTMLInputElement | HTMLSelectElement) {
  input.id ||= `f-${Math.random().toString(36).slice(2, 9)}`;
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input);
}

/** Tells screen readers (and everyone, in the status bar) what just happened. */
export function announce(message: string, kind: "info" | "error" = "info") {
  const region = document.getElementById("announcer");
  if (region) region.textContent = message;
  const bar = document.getElementById("status-bar");
  if (bar) {
    bar.textContent = message;
    bar.dataset.kind = kind;
  }
}

export const formatTime = (iso: string | null) => (iso ? new Date(iso).toLocaleString() : "—");

/** A form's submit listener: stays on the page and runs `run` instead. */
export const submitted = (run: () => unknown) => (event: Event) => {
  event.preventDefault();
  void run();
};

/** `1 device`, `2 devices`. */
export const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;
