import ipaddr from "ipaddr.js";

/**
 * A small MaxMind DB (format 2.0) writer for tests: builds `.mmdb` files that the real `maxmind`
 * reader opens, so the GeoIP adapter is tested against genuine database bytes.
 * Spec: https://maxmind.github.io/MaxMind-DB/
 *
 * Layout: binary search tree | 16 zero bytes | data section | "\xAB\xCD\xEFMaxMind.com" | metadata.
 * The tree is IPv6 (ip_version 6); an IPv4 network a.b.c.d/n is stored at ::a.b.c.d/(96+n), which
 * is where readers look for IPv4 addresses. When networks overlap the more specific one wins,
 * whatever the order they are given in.
 *
 * JS values map to MaxMind types as: string → utf8_string, boolean → boolean, bigint → uint64,
 * integer 0..2^32-1 → uint32, any other number → double, array → array, object → map. Wrap a
 * value with `uint16`, `uint32`, `uint64` or `double` to choose its type explicitly.
 */

class Typed {
  constructor(
    readonly type: "uint16" | "uint32" | "uint64" | "double",
    readonly value: number | bigint,
  ) {}
}
export const uint16 = (value: number) => new Typed("uint16", value);
export const uint32 = (value: number) => new Typed("uint32", value);
export const uint64 = (value: number | bigint) => new Typed("uint64", value);
export const double = (value: number) => new Typed("double", value);

// Data-section type numbers. Types above 7 are "extended": see `control`.
const T = { utf8: 2, double: 3, uint16: 5, uint32: 6, map: 7, uint64: 9, array: 11, bool: 14 };

const DATA_SECTION_SEPARATOR = Buffer.alloc(16);
const METADATA_MARKER = Buffer.concat([
  Buffer.from([0xab, 0xcd, 0xef]),
  Buffer.from("MaxMind.com"),
]);

/**
 * A field's control byte(s). The first byte is TTTSSSSS: 3 type bits and 5 size bits. Extended
 * types (8+) put 000 in the type bits and `type - 7` in the next byte. Sizes under 29 fit in the
 * 5 bits; otherwise the bits are 29, 30 or 31 and 1, 2 or 3 more bytes (big-endian) follow holding
 * `size - 29`, `size - 285` or `size - 65821`. For maps the size is the number of pairs, for
 * arrays the number of elements, for booleans the value itself (no payload).
 */
function control(type: number, size: number): Buffer {
  let sizeBits: number;
  let extra: number[];
  if (size < 29) [sizeBits, extra] = [size, []];
  else if (size < 285) [sizeBits, extra] = [29, [size - 29]];
  else if (size < 65_821) [sizeBits, extra] = [30, [(size - 285) >> 8, (size - 285) & 0xff]];
  else if (size < 16_843_037) {
    const n = size - 65_821;
    [sizeBits, extra] = [31, [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]];
  } else throw new RangeError(`mmdb field too large: ${size}`);
  const head = type <= 7 ? [(type << 5) | sizeBits] : [sizeBits, type - 7];
  return Buffer.from([...head, ...extra]);
}

/** Unsigned integers are big-endian in the fewest bytes needed (zero takes none). */
function unsigned(type: number, value: number | bigint, maxBytes: number): Buffer {
  let n = BigInt(value);
  if (n < 0n) throw new RangeError(`negative unsigned value: ${value}`);
  const bytes: number[] = [];
  for (; n > 0n; n >>= 8n) bytes.unshift(Number(n & 0xffn));
  if (bytes.length > maxBytes) throw new RangeError(`${value} does not fit in ${maxBytes} bytes`);
  return Buffer.concat([control(type, bytes.length), Buffer.from(bytes)]);
}

function encodeDouble(value: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeDoubleBE(value);
  return Buffer.concat([control(T.double, 8), payload]);
}

function encode(value: unknown): Buffer {
  if (value instanceof Typed) {
    if (value.type === "double") return encodeDouble(Number(value.value));
    const widths = { uint16: 2, uint32: 4, uint64: 8 };
    return unsigned(T[value.type], value.value, widths[value.type]);
  }
  if (typeof value === "string") {
    const bytes = Buffer.from(value, "utf8");
    return Buffer.concat([control(T.utf8, bytes.length), bytes]);
  }
  if (typeof value === "boolean") return control(T.bool, value ? 1 : 0);
  if (typeof value === "bigint") return unsigned(T.uint64, value, 8);
  if (typeof value === "number") {
    const isUint32 = Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff;
    return isUint32 ? unsigned(T.uint32, value, 4) : encodeDouble(value);
  }
  if (Array.isArray(value))
    return Buffer.concat([control(T.array, value.length), ...value.map(encode)]);
  if (value !== null && typeof value === "object") {
    const pairs = Object.entries(value);
    const parts = pairs.flatMap(([key, item]) => [encode(key), encode(item)]);
    return Buffer.concat([control(T.map, pairs.length), ...parts]);
  }
  throw new TypeError(`cannot encode ${String(value)} in an mmdb file`);
}

/** A network as the 16 bytes of an IPv6 address and a prefix length over 128 bits. */
function parseNetwork(network: string): { bytes: number[]; prefix: number } {
  const [address, bits] = ipaddr.parseCIDR(network);
  if (address.kind() === "ipv4") {
    return {
      bytes: [...new Array<number>(12).fill(0), ...address.toByteArray()],
      prefix: 96 + bits,
    };
  }
  return { bytes: address.toByteArray(), prefix: bits };
}

/** A tree record: empty (no data), another node (by number) or a record in the data section. */
type Child = null | { node: number } | { data: Record<string, unknown> };

export function writeMmdb(
  entries: Array<{ network: string; record: Record<string, unknown> }>,
  options: { databaseType?: string; recordSize?: 24 | 28 } = {},
): Buffer {
  // 1. The search tree, one bit of the address per level; node 0 is the root.
  const tree: Array<[Child, Child]> = [[null, null]];
  const networks = entries
    .map((entry) => ({ ...parseNetwork(entry.network), record: entry.record }))
    .sort((a, b) => a.prefix - b.prefix); // less specific first, so the more specific wins
  for (const { bytes, prefix, record } of networks) {
    if (prefix === 0) throw new RangeError("a /0 network is not supported");
    let node = 0;
    for (let depth = 0; depth < prefix; depth++) {
      const bit = (bytes[depth >> 3]! >> (7 - (depth & 7))) & 1;
      if (depth === prefix - 1) {
        tree[node]![bit] = { data: record };
        break;
      }
      let child = tree[node]![bit]!;
      if (child === null || "data" in child) {
        // Split: whatever covered this half (nothing, or a shorter network) now covers both of
        // the new node's halves, and the longer network overrides one path below it.
        tree.push([child, child]);
        child = { node: tree.length - 1 };
        tree[node]![bit] = child;
      }
      node = child.node;
    }
  }

  // 2. The data section: each distinct record object is written once, in the order given.
  const offsets = new Map<Record<string, unknown>, number>();
  const chunks: Buffer[] = [];
  let dataSize = 0;
  for (const { record } of entries) {
    if (offsets.has(record)) continue;
    const chunk = encode(record);
    offsets.set(record, dataSize);
    chunks.push(chunk);
    dataSize += chunk.length;
  }

  // 3. Record values: a node number; node_count for "no data"; for data, node_count + 16 + its
  // offset in the data section (the 16 skips the separator: readers subtract it back).
  const nodeCount = tree.length;
  const value = (child: Child) =>
    child === null
      ? nodeCount
      : "node" in child
        ? child.node
        : nodeCount + 16 + offsets.get(child.data)!;
  // 24-bit records unless a value needs more (or 28 is asked for, to test that encoding).
  const largest = nodeCount + 16 + dataSize;
  const recordSize = options.recordSize ?? (largest < 2 ** 24 ? 24 : 28);
  if (largest >= 2 ** recordSize)
    throw new RangeError(`database too large for ${recordSize}-bit records`);
  const nodeBytes = recordSize / 4; // two records per node: 6 bytes (24-bit) or 7 bytes (28-bit)
  const treeBuffer = Buffer.alloc(nodeCount * nodeBytes);
  tree.forEach(([left, right], index) => {
    const offset = index * nodeBytes;
    const [l, r] = [value(left), value(right)];
    if (recordSize === 24) {
      treeBuffer.writeUIntBE(l, offset, 3);
      treeBuffer.writeUIntBE(r, offset + 3, 3);
    } else {
      // 28-bit: the low 24 bits of each record, with the middle byte holding the left record's
      // top 4 bits (high nibble) and the right record's (low nibble).
      treeBuffer.writeUIntBE(l & 0xff_ffff, offset, 3);
      treeBuffer[offset + 3] = ((l >>> 24) << 4) | (r >>> 24);
      treeBuffer.writeUIntBE(r & 0xff_ffff, offset + 4, 3);
    }
  });

  // 4. Metadata: a map, after the marker, with the field types the spec prescribes.
  const metadata = encode({
    node_count: uint32(nodeCount),
    record_size: uint16(recordSize),
    ip_version: uint16(6),
    database_type: options.databaseType ?? "GeoIP2-City",
    languages: ["en"],
    binary_format_major_version: uint16(2),
    binary_format_minor_version: uint16(0),
    build_epoch: uint64(Math.floor(Date.now() / 1000)),
    description: { en: "Heimdall test database" },
  });

  return Buffer.concat([treeBuffer, DATA_SECTION_SEPARATOR, ...chunks, METADATA_MARKER, metadata]);
}
