import type { Device, Page, Session } from "../api";
import { announce, count, field, formatTime, h, submitted } from "../dom";
import { action, row, secretBox, table } from "./table";

/** The URLs to paste into each tracker app, with the device's ingest secret in them. */
export function trackerUrls(origin: string, secret: string) {
  return [
    ["Traccar Client", `${origin}/v1/gps/osmand?key=${secret}`],
    [
      "OsmAnd (speed in m/s)",
      `${origin}/v1/gps/osmand?key=${secret}&speed_unit=mps&lat={0}&lon={1}&timestamp={2}&hdop={3}&altitude={4}&speed={5}`,
    ],
    ["Overland", `${origin}/v1/gps/overland?access_token=${secret}`],
    ["OwnTracks (HTTP, password = secret)", `${origin}/v1/gps/owntracks`],
    [
      "GPSLogger",
      `${origin}/v1/gps/gpslogger?key=${secret}&lat=%LAT&lon=%LON&time=%TIME&spd=%SPD&acc=%ACC&alt=%ALT&dir=%DIR&batt=%BATT`,
    ],
  ] as const;
}

/** Devices: register (showing the secret and tracker URLs once), rotate the secret, delete. */
export async function devicesView(session: Session) {
  const root = h("section", { "aria-labelledby": "devices-title" });
  const reveal = h("div", { class: "reveal", tabIndex: -1 });
  const name = h("input", { name: "name", required: true, maxLength: 200 });
  const interval = h("input", { name: "interval", type: "number", min: "10", value: "300" });
  const form = h(
    "form",
    { class: "inline-form", onsubmit: submitted(create) },
    field("Device name", name),
    field("Expected interval (s)", interval),
    h("button", { type: "submit" }, "Register device"),
  );
  const listing = h("div");
  root.append(h("h2", { id: "devices-title" }, "Devices"), form, reveal, listing);

  function showSecret(device: Device, secret: string) {
    reveal.replaceChildren(
      h("h3", {}, `Ingest secret for ${device.name}`),
      h("p", {}, "Shown once. Paste one of these into the tracker app:"),
      secretBox("Secret", secret),
      ...trackerUrls(location.origin, secret).map(([app, url]) => secretBox(app, url)),
    );
    reveal.focus();
  }

  async function create() {
    try {
      const { data } = await session.request<{ data: Device & { secret: string } }>(
        "POST",
        "/v1/devices",
        { name: name.value, expected_interval_seconds: Number(interval.value) || 300 },
      );
      name.value = "";
      showSecret(data, data.secret);
      announce(`Device ${data.name} registered`);
      await load();
    } catch (error) {
      announce(`Register: ${(error as Error).message}`, "error");
    }
  }

  async function rotate(device: Device) {
    const { data } = await session.request<{ data: Device & { secret: string } }>(
      "POST",
      `/v1/devices/${device.id}/secret`,
    );
    showSecret(device, data.secret);
    announce(`New secret for ${device.name}; the old one no longer works`);
  }

  async function remove(device: Device) {
    if (!confirm(`Delete ${device.name} and all its positions?`)) return;
    await session.request("DELETE", `/v1/devices/${device.id}`);
    announce(`Device ${device.name} deleted`);
    await load();
  }

  async function load() {
    const page = await session.request<Page<Device>>("GET", "/v1/devices?limit=100");

    listing.replaceChildren(
      table(
        count(page.pagination?.total ?? page.data.length, "device"),
        ["Name", "Status", "Last seen", "Secret", "Actions"],
        page.data.map((device) =>
          row(
            device.name,
            h("span", { class: "badge", "data-status": device.status }, device.status),
            formatTime(device.last_seen_at),
            h("code", {}, `${device.secret_prefix}…`),
            h(
              "span",
              { class: "actions" },
              action("Rotate secret", `Rotate the secret of ${device.name}`, () => rotate(device)),
              action("Delete", `Delete ${device.name}`, () => remove(device)),
            ),
          ),
        ),
      ),
    );
  }

  await load();
  return { element: root };
}
