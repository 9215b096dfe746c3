import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Reader } from "maxmind";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cloudflareGeoIp } from "../src/adapters/cloudflare/geoip";
import { createMaxmindGeoIp } from "../src/adapters/node/maxmind-geoip";
import type { GeoIp } from "../src/ports/geoip";
import type { LogFields, Logger } from "../src/ports/logger";
import { double, uint16, uint64, writeMmdb } from "./support/mmdb-writer";

/** A logger that records what it is told. */
function recordingLogger() {
  const calls: Array<{ level: string; message: string; fields?: LogFields }> = [];
  const at =
    (level: string) =>
    (message: string, fields?: LogFields): void => {
      calls.push({ level, message, fields });
    };
  const logger: Logger = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    child: () => logger,
  };
  return { logger, calls, warnings: () => calls.filter((call) => call.level === "warn") };
}

const london = {
  city: { geoname_id: 2643743, names: { en: "London", de: "London", fr: "Londres" } },
  continent: { code: "EU", geoname_id: 6255148, names: { en: "Europe" } },
  country: { geoname_id: 2635167, iso_code: "GB", names: { en: "United Kingdom" } },
  location: {
    accuracy_radius: 10,
    latitude: 51.5142,
    longitude: -0.0931,
    time_zone: "Europe/London",
  },
  subdivisions: [
    { geoname_id: 6269131, iso_code: "ENG", names: { en: "England" } },
    { geoname_id: 3333217, iso_code: "WBK", names: { en: "West Berkshire" } },
  ],
};
const LONDON = {
  city: "London",
  region: "England",
  country: "United Kingdom",
  country_code: "GB",
  latitude: 51.5142,
  longitude: -0.0931,
};
const stockholm = {
  city: { names: { en: "Stockholm", sv: "Stockholm" } },
  country: { iso_code: "SE", names: { en: "Sweden" } },
  location: { latitude: 59.3293, longitude: 18.0686 },
  subdivisions: [{ iso_code: "AB", names: { en: "Stockholm County" } }],
};
const STOCKHOLM = {
  city: "Stockholm",
  region: "Stockholm County",
  country: "Sweden",
  country_code: "SE",
  latitude: 59.3293,
  longitude: 18.0686,
};
const countryOnly = { country: { iso_code: "DE", names: { en: "Germany" } } };
const nothingUseful = { continent: { code: "OC", names: { en: "Oceania" } } };
/** Under non-public addresses, so a null there proves the adapter did not look them up. */
const trap = { city: { names: { en: "Should never be returned" } } };

const entries = [
  { network: "81.2.69.0/24", record: london },
  { network: "2001:db8::/32", record: stockholm },
  { network: "89.160.20.0/24", record: countryOnly },
  { network: "1.1.1.0/24", record: nothingUseful },
  ...["10.0.0.0/8", "127.0.0.0/8", "192.168.0.0/16", "169.254.0.0/16"].map((network) => ({
    network,
    record: trap,
  })),
  ...["::1/128", "fe80::/10", "fc00::/7"].map((network) => ({ network, record: trap })),
];

let dir: string;
let databasePath: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "heimdall-geoip-"));
  databasePath = join(dir, "city.mmdb");
  await writeFile(databasePath, writeMmdb(entries));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileWith(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

describe("mmdb writer, read back by the maxmind Reader", () => {
  it("writes the metadata the spec prescribes", () => {
    const reader = new Reader(writeMmdb(entries, { databaseType: "Test-City" }));
    const { metadata } = reader;
    expect(metadata.binaryFormatMajorVersion).toBe(2);
    expect(metadata.binaryFormatMinorVersion).toBe(0);
    expect(metadata.databaseType).toBe("Test-City");
    expect(metadata.ipVersion).toBe(6);
    expect(metadata.recordSize).toBe(24);
    expect(metadata.languages).toEqual(["en"]);
    expect(metadata.description).toEqual({ en: "Heimdall test database" });
    expect(metadata.nodeCount).toBeGreaterThan(128);
    expect(Math.abs(metadata.buildEpoch.getTime() - Date.now())).toBeLessThan(60_000);
  });

  for (const recordSize of [24, 28] as const) {
    it(`round-trips every supported type (${recordSize}-bit records)`, () => {
      const record = {
        text: "Zürich, 東京, Αθήνα",
        short: "",
        s29: "x".repeat(29), // first size needing an extra byte
        s300: "y".repeat(300), // two extra size bytes
        s70k: "z".repeat(70_000), // three extra size bytes
        double: -0.0931,
        wholeDouble: double(51),
        uint16: uint16(65_535),
        uint32: 4_294_967_295,
        zero: 0,
        uint64: uint64(2n ** 64n - 1n),
        bigint: 12345678901234567890n,
        yes: true,
        no: false,
        list: ["a", 1, [2.5, { nested: "map" }]],
        many: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, i])),
      };
      const reader = new Reader(
        writeMmdb([{ network: "81.2.69.0/24", record }, ...entries.slice(1)], { recordSize }),
      );
      expect(reader.metadata.recordSize).toBe(recordSize);
      expect(reader.get("81.2.69.1")).toEqual({
        ...record,
        wholeDouble: 51,
        uint16: 65_535,
        uint64: 2n ** 64n - 1n,
      });
      expect(reader.getWithPrefixLength("81.2.69.255")[1]).toBe(24);
      expect(reader.get("2001:db8:ffff::1")).toEqual(stockholm);
      expect(reader.getWithPrefixLength("2001:db8::1")[1]).toBe(32);
      expect(reader.get("81.2.70.1")).toBeNull();
      expect(reader.get("2001:db9::1")).toBeNull();
    });
  }

  it("writes 28-bit records whose values need more than 24 bits", () => {
    // A record past the first 16 MiB of the data section makes the records pointing at the ones
    // after it exceed 2^24, so the shared middle byte's nibbles carry real bits: 2001:db8::/32
    // ends on a 0 bit (a left record beside an empty right one), 2001:dbb::/32 on a 1 bit (a
    // right record beside an empty left one), so swapped or misplaced nibbles misdirect them.
    const pad = { pad: "x".repeat(2 ** 24) };
    const reader = new Reader(
      writeMmdb([
        { network: "81.2.69.0/24", record: pad },
        { network: "2001:db8::/32", record: { name: "left" } },
        { network: "2001:dbb::/32", record: { name: "right" } },
      ]),
    );
    expect(reader.metadata.recordSize).toBe(28);
    expect(reader.get("2001:db8::1")).toEqual({ name: "left" });
    expect(reader.get("2001:dbb::1")).toEqual({ name: "right" });
    expect(reader.get("2001:db9::1")).toBeNull();
    expect(reader.get("81.2.69.1")).toEqual(pad);
    expect(reader.get("2001:dba::1")).toBeNull();
  });

  it("lets the more specific network win, whatever the order", () => {
    const reader = new Reader(
      writeMmdb([
        { network: "81.2.69.128/25", record: { name: "inner" } },
        { network: "81.2.0.0/16", record: { name: "outer" } },
      ]),
    );
    expect(reader.get("81.2.69.200")).toEqual({ name: "inner" });
    expect(reader.get("81.2.69.100")).toEqual({ name: "outer" });
    expect(reader.get("81.2.200.1")).toEqual({ name: "outer" });
    // The /25 splits the /16: 81.2.200.1 lies in its largest undivided part, 81.2.128.0/17.
    expect(reader.getWithPrefixLength("81.2.200.1")[1]).toBe(17);
    expect(reader.getWithPrefixLength("81.2.69.200")[1]).toBe(25);
    expect(reader.get("81.3.0.1")).toBeNull();
  });
});

describe("createMaxmindGeoIp", () => {
  let geo: GeoIp;
  beforeAll(async () => {
    geo = await createMaxmindGeoIp({ databasePath, logger: recordingLogger().logger });
  });

  it("maps City records for IPv4 and IPv6", () => {
    expect(geo.locate("81.2.69.142")).toEqual(LONDON);
    expect(geo.locate("::ffff:81.2.69.142")).toEqual(LONDON);
    expect(geo.locate("2001:db8::1")).toEqual(STOCKHOLM);
    expect(geo.locate("2001:DB8:0:0:ffff::1")).toEqual(STOCKHOLM);
    expect(geo.locate("2001:db8::1%eth0")).toEqual(STOCKHOLM);
  });

  it("omits absent fields and returns null when nothing is known", () => {
    expect(geo.locate("89.160.20.128")).toEqual({ country: "Germany", country_code: "DE" });
    expect(geo.locate("1.1.1.1")).toBeNull();
  });

  it("returns null outside every network", () => {
    expect(geo.locate("81.2.70.1")).toBeNull();
    expect(geo.locate("8.8.8.8")).toBeNull();
    expect(geo.locate("2001:db9::1")).toBeNull();
  });

  it("does not look up loopback, private, link-local or unique-local addresses", () => {
    for (const ip of [
      "127.0.0.1",
      "::1",
      "10.0.0.1",
      "::ffff:10.0.0.1",
      "::ffff:192.168.1.1",
      "192.168.1.1",
      "169.254.1.1",
      "fe80::1",
      "fe80::1%eth0",
      "fd12:3456::1",
    ]) {
      expect(geo.locate(ip), ip).toBeNull();
    }
  });

  it("returns null for garbage and missing input", () => {
    for (const ip of ["not-an-ip", "", "81.2.69", "81.2.69.256", "2001:db8:::1", " 81.2.69.1"]) {
      expect(geo.locate(ip), ip).toBeNull();
    }
    expect(geo.locate(undefined)).toBeNull();
    expect(geo.locate(null)).toBeNull();
  });

  it("excludes the addresses and networks of an array exclusions file", async () => {
    const path = await fileWith(
      "exclusions.json",
      JSON.stringify(["81.2.69.142", "81.2.69.160/27", "2001:db8:1::/48"]),
    );
    const { logger, warnings } = recordingLogger();
    const excluding = await createMaxmindGeoIp({ databasePath, exclusions: { path }, logger });
    expect(excluding.locate("81.2.69.142")).toBeNull();
    expect(excluding.locate("::ffff:81.2.69.142")).toBeNull();
    expect(excluding.locate("81.2.69.160")).toBeNull();
    expect(excluding.locate("81.2.69.191")).toBeNull();
    expect(excluding.locate("2001:db8:1::5")).toBeNull();
    // Neighbours in the same /24 and /32 but outside every exclusion still resolve.
    expect(excluding.locate("81.2.69.143")).toEqual(LONDON);
    expect(excluding.locate("81.2.69.159")).toEqual(LONDON);
    expect(excluding.locate("81.2.69.192")).toEqual(LONDON);
    expect(excluding.locate("2001:db8:2::5")).toEqual(STOCKHOLM);
    expect(warnings()).toEqual([]);
  });

  it("accepts the { exclusions: [{ value }] } format", async () => {
    const path = await fileWith(
      "exclusions-object.json",
      JSON.stringify({
        exclusions: [
          { value: "81.2.69.142", note: "board member" },
          { value: "2001:db8::/33", added_at: "2025-01-01" },
          { value: "::ffff:81.2.69.64/122" },
        ],
      }),
    );
    const { logger, warnings } = recordingLogger();
    const excluding = await createMaxmindGeoIp({ databasePath, exclusions: { path }, logger });
    expect(excluding.locate("81.2.69.142")).toBeNull();
    expect(excluding.locate("2001:db8::1")).toBeNull();
    expect(excluding.locate("81.2.69.64")).toBeNull();
    expect(excluding.locate("81.2.69.127")).toBeNull();
    expect(excluding.locate("81.2.69.128")).toEqual(LONDON);
    expect(excluding.locate("81.2.69.141")).toEqual(LONDON);
    expect(excluding.locate("2001:db8:8000::1")).toEqual(STOCKHOLM);
    expect(warnings()).toEqual([]);
  });

  for (const [name, content] of [
    ["missing", undefined],
    ["not JSON", "81.2.69.142\n"],
    ["of the wrong shape", JSON.stringify({ ips: ["81.2.69.142"] })],
    ["with an invalid entry", JSON.stringify(["81.2.69.142", "81.2.69.0/33"])],
    ["with an entry lacking value", JSON.stringify({ exclusions: [{ ip: "81.2.69.142" }] })],
  ] as const) {
    it(`fails closed when the exclusions file is ${name}: one warning, every lookup null`, async () => {
      const path =
        content === undefined
          ? join(dir, "no-such-exclusions.json")
          : await fileWith(`bad-${name.replaceAll(" ", "-")}.json`, content);
      const { logger, warnings } = recordingLogger();
      const closed = await createMaxmindGeoIp({ databasePath, exclusions: { path }, logger });
      for (let i = 0; i < 3; i++) {
        expect(closed.locate("81.2.69.143")).toBeNull();
        expect(closed.locate("2001:db8::1")).toBeNull();
      }
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]!.fields).toMatchObject({ path });
    });
  }

  it("rejects a missing database, naming its path", async () => {
    const missing = join(dir, "missing.mmdb");
    const { logger } = recordingLogger();
    await expect(createMaxmindGeoIp({ databasePath: missing, logger })).rejects.toThrow(missing);
  });

  it("rejects a file that is not a MaxMind DB, naming its path", async () => {
    const { logger } = recordingLogger();
    const garbage = await fileWith("garbage.mmdb", "definitely not a database");
    await expect(createMaxmindGeoIp({ databasePath: garbage, logger })).rejects.toThrow(garbage);
    const truncated = await fileWith("truncated.mmdb", "");
    await expect(createMaxmindGeoIp({ databasePath: truncated, logger })).rejects.toThrow(
      truncated,
    );
  });
});

describe("cloudflareGeoIp", () => {
  const withCf = (cf: unknown) => {
    const request = new Request("https://x/");
    Object.defineProperty(request, "cf", { value: cf });
    return request;
  };

  it("reads request.cf, converting the coordinates to numbers", () => {
    const request = withCf({
      city: "London",
      region: "England",
      regionCode: "ENG",
      country: "GB",
      latitude: "51.50740",
      longitude: "-0.12780",
      colo: "LHR",
    });
    expect(cloudflareGeoIp.locate("203.0.113.7", request)).toEqual({
      city: "London",
      region: "England",
      country_code: "GB",
      latitude: 51.5074,
      longitude: -0.1278,
    });
  });

  it("keeps what is usable and returns null when nothing is", () => {
    expect(cloudflareGeoIp.locate(null, withCf({ country: "SE", latitude: "n/a" }))).toEqual({
      country_code: "SE",
    });
    expect(cloudflareGeoIp.locate(null, withCf({ country: "T1", latitude: "abc" }))).toBeNull();
    expect(cloudflareGeoIp.locate(null, withCf({ colo: "LHR" }))).toBeNull();
  });

  it("returns null without a request or without cf", () => {
    expect(cloudflareGeoIp.locate("81.2.69.142", new Request("https://x/"))).toBeNull();
    expect(cloudflareGeoIp.locate("81.2.69.142")).toBeNull();
    expect(cloudflareGeoIp.locate(null, withCf(undefined))).toBeNull();
  });
});
