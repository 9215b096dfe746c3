import L from "leaflet";
import "leaflet/dist/leaflet.css";
import type { Device, Page, Position, Session } from "../api";
import { announce, field, formatTime, h, submitted } from "../dom";
import { connectLive } from "../live";

export interface MapSettings {
  map_tile_url: string | null;
  map_attribution: string | null;
}

const isoLocal = (date: Date) =>
  new Date(date.getTime() - date.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

/**
 * Every device the user may see: current positions, moved live by the room, online/offline
 * badges, and one device's track for a chosen range. Without tiles the map is a plain
 * background, and markers and tracks still draw.
 */
export async function mapView(session: Session, settings: MapSettings) {
  const mapElement = h("div", {
    class: "map",
    role: "region",
    "aria-label": "Map of device positions",
  });
  const list = h("ul", { class: "device-list", "aria-label": "Devices" });
  const connection = h("span", { class: "badge", "data-testid": "live-state" }, "connecting");
  const deviceSelect = h("select", { name: "device" });
  const from = h("input", { type: "datetime-local", name: "from", required: true });
  const to = h("input", { type: "datetime-local", name: "to", required: true });
  const now = new Date();
  from.value = isoLocal(new Date(now.getTime() - 24 * 3600_000));
  to.value = isoLocal(new Date(now.getTime() + 60_000));
  const trackForm = h(
    "form",
    { class: "track-form", onsubmit: submitted(showTrack) },
    field("Device", deviceSelect),
    field("From", from),
    field("To", to),
    h("button", { type: "submit" }, "Show track"),
  );
  const root = h(
    "div",
    { class: "map-view" },
    h(
      "aside",
      { class: "panel" },
      h("h2", {}, "Devices ", connection),
      list,
      h("h2", {}, "Track"),
      trackForm,
    ),
    mapElement,
  );

  const map = L.map(mapElement, { center: [20, 0], zoom: 2, worldCopyJump: true });
  if (settings.map_tile_url) {
    L.tileLayer(settings.map_tile_url, {
      attribution: settings.map_attribution ?? "",
      maxZoom: 19,
    }).addTo(map);
  }
  const markers = new Map<string, L.Marker>();
  const rows = new Map<string, HTMLLIElement>();
  const devices = new Map<string, Device>();
  let track: L.GeoJSON | undefined;

  const [deviceList, current] = await Promise.all([
    session.request<Page<Device>>("GET", "/v1/devices?limit=100"),
    session.request<{ data: Position[] }>("GET", "/v1/gps/current"),
  ]);
  for (const device of deviceList.data) addDevice(device);
  for (const position of current.data) place(position);
  const placed = [...markers.values()].map((m) => m.getLatLng());
  if (placed.length > 0) map.fitBounds(L.latLngBounds(placed), { maxZoom: 14, padding: [40, 40] });

  const live = connectLive(session, {
    onPosition: place,
    onStatus: ({ device_id, status }) => setStatus(device_id, status),
    onConnection: (state) => {
      connection.textContent = state;
      connection.dataset.state = state;
    },
  });

  function addDevice(device: Device) {
    devices.set(device.id, device);
    const badge = h("span", { class: "badge", "data-status": device.status }, device.status);
    const where = h("span", { class: "where" }, "no position yet");
    const row = h(
      "li",
      { "data-device-id": device.id },
      h(
        "button",
        {
          type: "button",
          class: "link",
          onclick: () => {
            const marker = markers.get(device.id);
            if (marker) map.setView(marker.getLatLng(), Math.max(map.getZoom(), 13));
            deviceSelect.value = device.id;
          },
        },
        device.name,
      ),
      " ",
      badge,
      h("br"),
      where,
    );
    rows.set(device.id, row);
    list.append(row);
    deviceSelect.append(h("option", { value: device.id }, device.name));
  }

  function setStatus(deviceId: string, status: string) {
    const badge = rows.get(deviceId)?.querySelector<HTMLElement>(".badge");
    if (!badge) return;
    badge.textContent = status;
    badge.dataset.status = status;
  }

  function place(position: Position) {
    const device = devices.get(position.device_id);
    if (!device) return;
    const at = L.latLng(position.latitude, position.longitude);
    let marker = markers.get(device.id);
    if (!marker) {
      marker = L.marker(at, {
        title: device.name,
        alt: device.name,
        keyboard: true,
        icon: L.divIcon({
          className: "device-marker",
          html: `<span class="dot"></span><span class="label"></span>`,
          iconSize: [16, 16],
          iconAnchor: [8, 8],
        }),
      }).addTo(map);
      markers.set(device.id, marker);
    } else {
      marker.setLatLng(at);
    }
    const icon = marker.getElement();
    if (icon) {
      icon.dataset.deviceId = device.id;
      icon.dataset.lat = String(position.latitude);
      icon.dataset.lng = String(position.longitude);
      const label = icon.querySelector(".label");
      if (label) label.textContent = device.name;
    }
    // An element, not a string: Leaflet would parse a string as HTML.
    marker.bindTooltip(h("span", {}, `${device.name} · ${formatTime(position.timestamp)}`));
    const where = rows.get(device.id)?.querySelector(".where");
    if (where) {
      where.textContent = `${position.latitude.toFixed(5)}, ${position.longitude.toFixed(5)} · ${formatTime(position.timestamp)}`;
    }
  }

  async function showTrack() {
    const deviceId = deviceSelect.value;
    if (!deviceId) return announce("Register a device first", "error");
    const query = new URLSearchParams({
      from: new Date(from.value).toISOString(),
      to: new Date(to.value).toISOString(),
      format: "geojson",
    });
    try {
      // A line, one point (a Point feature) or none (an empty FeatureCollection).
      const geojson = await session.request<
        | GeoJSON.Feature<GeoJSON.LineString | GeoJSON.Point, { points: number }>
        | GeoJSON.FeatureCollection
      >("GET", `/v1/devices/${deviceId}/track?${query}`);
      track?.remove();
      track = L.geoJSON(geojson, { style: { color: "#d9480f", weight: 4 } }).addTo(map);
      const count = geojson.type === "Feature" ? geojson.properties.points : 0;
      if (count > 0) map.fitBounds(track.getBounds(), { maxZoom: 16, padding: [40, 40] });
      announce(`Track of ${devices.get(deviceId)?.name}: ${count} points`);
    } catch (error) {
      announce(`Track: ${(error as Error).message}`, "error");
    }
  }

  // Leaflet measures its container: once it is in the document, and whenever it resizes.
  const resize = new ResizeObserver(() => map.invalidateSize());
  resize.observe(mapElement);
  return {
    element: root,
    dispose() {
      resize.disconnect();
      live.close();
      map.remove();
    },
  };
}
