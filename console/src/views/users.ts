import type { Page, Session } from "../api";
import { announce, count, field, h, submitted } from "../dom";
import { action, row, table } from "./table";

interface User {
  id: string;
  email: string;
  status: string;
  roles: string[];
}

interface Role {
  name: string;
  permissions: string[];
}

/** For admins: the app's users (create, roles, deactivate) and its roles. */
export async function usersView(session: Session) {
  const root = h("section", { "aria-labelledby": "users-title" });
  const email = h("input", { name: "email", type: "email", required: true });
  const password = h("input", {
    name: "password",
    type: "password",
    required: true,
    minLength: 8,
    autocomplete: "new-password",
  });
  const newRole = h("select", { name: "role" });
  const form = h(
    "form",
    { class: "inline-form", onsubmit: submitted(create) },
    field("Email", email),
    field("Password", password),
    field("Role", newRole),
    h("button", { type: "submit" }, "Create user"),
  );
  const listing = h("div");
  const roleListing = h("div");
  root.append(h("h2", { id: "users-title" }, "Users"), form, listing, roleListing);
  let roles: Role[] = [];

  async function create() {
    try {
      await session.request("POST", "/v1/users", {
        email: email.value,
        password: password.value,
        ...(newRole.value ? { role: newRole.value } : {}),
      });
      announce(`User ${email.value} created`);
      email.value = "";
      password.value = "";
      await load();
    } catch (error) {
      announce(`Create user: ${(error as Error).message}`, "error");
    }
  }

  function roleCell(user: User) {
    const choose = h(
      "select",
      { "aria-label": `Role to give ${user.email}` },
      ...roles
        .filter((r) => !user.roles.includes(r.name))
        .map((r) => h("option", { value: r.name }, r.name)),
    );
    return h(
      "span",
      { class: "roles" },
      ...user.roles.map((name) =>
        h(
          "span",
          { class: "chip" },
          name,
          action("×", `Remove role ${name} from ${user.email}`, async () => {
            await session.request("DELETE", `/v1/users/${user.id}/roles/${name}`);
            await load();
          }),
        ),
      ),
      choose,
      action("Add", `Give ${user.email} the chosen role`, async () => {
        if (!choose.value) return;
        await session.request("POST", `/v1/users/${user.id}/roles`, { role: choose.value });
        await load();
      }),
    );
  }

  async function load() {
    const [users, rolePage] = await Promise.all([
      session.request<Page<User>>("GET", "/v1/users?limit=100"),
      session.can("roles:read")
        ? session.request<Page<Role>>("GET", "/v1/roles?limit=100")
        : Promise.resolve({ data: [] }),
    ]);
    roles = rolePage.data;
    newRole.replaceChildren(
      h("option", { value: "" }, "(none)"),
      ...roles.map((r) => h("option", { value: r.name }, r.name)),
    );
    listing.replaceChildren(
      table(
        count(users.pagination?.total ?? users.data.length, "user"),
        ["Email", "Status", "Roles", "Actions"],
        users.data.map((user) =>
          row(
            user.email,
            h("span", { class: "badge", "data-status": user.status }, user.status),
            roleCell(user),
            user.status === "active"
              ? action("Deactivate", `Deactivate ${user.email}`, async () => {
                  await session.request("DELETE", `/v1/users/${user.id}`);
                  announce(`${user.email} deactivated; their tokens stop working`);
                  await load();
                })
              : "",
          ),
        ),
      ),
    );
    roleListing.replaceChildren(
      table(
        "Roles",
        ["Role", "Permissions"],
        roles.map((r) => row(r.name, r.permissions.join(" "))),
      ),
    );
  }

  await load();
  return { element: root };
}
