/** Microseconds from the Unix epoch to Postgres's, 2000-01-01. */
const POSTGRES_EPOCH_MICROS = 946_684_800_000_000;
const HEADER_BYTES = 20;

/**
 * A one-dimensional Postgres array of 8-byte elements (`float8`, `timestamptz`) in its binary
 * form, as `array_send` gives it in a bytea: dimensions, a has-NULLs flag, the element type, the
 * length and lower bound, then each element as its byte length (-1 for NULL) and its bytes, all
 * big-endian. Reading it costs no text conversion on either side, where every driver would
 * parse the elements of a text array, or of one row each, one by one.
 */
export class PgBinaryArray {
  readonly length: number;
  private readonly view: DataView;
  /** Each element's byte offset (-1 for NULL), only for an array holding NULLs. */
  private readonly offsets: Int32Array | undefined;

  constructor(bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const dimensions = this.view.getInt32(0);
    if (dimensions > 1) throw new Error("a multi-dimensional array");
    this.length = dimensions === 0 ? 0 : this.view.getInt32(12);
    if (dimensions === 0 || this.view.getInt32(4) === 0) return;
    this.offsets = new Int32Array(this.length);
    let offset = HEADER_BYTES;
    for (let i = 0; i < this.length; i++) {
      const size = this.view.getInt32(offset);
      offset += 4;
      this.offsets[i] = size < 0 ? -1 : offset;
      if (size > 0) offset += size;
    }
  }

  /** The `float8` at `index`. */
  float8(index: number): number | null {
    const offset = this.offsetOf(index);
    return offset < 0 ? null : this.view.getFloat64(offset);
  }

  /** The `timestamptz` at `index` as Unix epoch milliseconds, rounded down as a Date's are. */
  epochMilliseconds(index: number): number | null {
    const offset = this.offsetOf(index);
    if (offset < 0) return null;
    // Two 32-bit halves: exact as a Number for any time within 285 years of 2000.
    const micros =
      this.view.getInt32(offset) * 2 ** 32 +
      this.view.getUint32(offset + 4) +
      POSTGRES_EPOCH_MICROS;
    const belowMillisecond = ((micros % 1000) + 1000) % 1000;
    return (micros - belowMillisecond) / 1000;
  }

  /** Every element as a `float8`, NULL as NaN. */
  float8s(): Float64Array {
    const values = new Float64Array(this.length);
    for (let i = 0; i < this.length; i++) values[i] = this.float8(i) ?? Number.NaN;
    return values;
  }

  private offsetOf(index: number): number {
    if (index < 0 || index >= this.length) throw new RangeError(`no element ${index}`);
    // Without NULLs every element is its 4-byte length and 8 bytes.
    return this.offsets ? (this.offsets[index] as number) : HEADER_BYTES + index * 12 + 4;
  }
}
