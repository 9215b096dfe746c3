import type { Page, Session } from "../api";
import { announce, count, field, formatTime, h, submitted } from "../dom";
import { action, row, secretBox, table } from "./table";

interface ApiKey {
  id: string;
  name: string;
  role: string;
  prefix?: string;
  key_prefix?: string;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
}

/** The app's API keys: create (the secret shown once), list, revoke. */
export async function apiKeysView(session: Session) {
  const root = h("section", { "aria-labelledby": "keys-title" });
  const reveal = h("div", { class: "reveal", tabIndex: -1 });
  const name = h("input", { name: "name", required: true, maxLength: 200 });
  const role = h(
    "select",
    { name: "role" },
    h("option", { value: "api-read-only" }, "api-read-only"),
    h("option", { value: "api-full-access" }, "api-full-access"),
  );
  const form = h(
    "form",
    { class: "inline-form", onsubmit: submitted(create) },
    field("Key name", name),
    field("Role", role),
    h("button", { type: "submit" }, "Create API key"),
  );
  const listing = h("div");
  root.append(h("h2", { id: "keys-title" }, "API keys"), form, reveal, listing);

  async function create() {
    try {
      const { data } = await session.request<{ data: ApiKey & { key: string } }>(
        "POST",
        "/v1/api-keys",
        { name: name.value, role: role.value },
      );
      name.value = "";
      reveal.replaceChildren(
        h("p", {}, `Key ${data.name}: shown once, store it now.`),
        secretBox("API key", data.key),
      );
      reveal.focus();
      announce(`API key ${data.name} created`);
      await load();
    } catch (error) {
      announce(`Create key: ${(error as Error).message}`, "error");
    }
  }

  async function load() {
    const page = await session.request<Page<ApiKey>>("GET", "/v1/api-keys?limit=100");
    listing.replaceChildren(
      table(
        count(page.data.length, "API key"),
        ["Name", "Role", "Created", "Last used", "Actions"],
        page.data.map((key) =>
          row(
            key.name,
            key.role,
            formatTime(key.created_at),
            formatTime(key.last_used_at),
            action("Revoke", `Revoke the key ${key.name}`, async () => {
              await session.request("DELETE", `/v1/api-keys/${key.id}`);
              announce(`Key ${key.name} revoked`);
              await load();
            }),
          ),
        ),
      ),
    );
  }

  await load();
  return { element: root };
}
