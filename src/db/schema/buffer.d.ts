// drizzle-zod's column types spot a bytea column by testing `extends Buffer`, Node's global. Where
// Node's types are absent (the runtime-neutral core) that name would be `any`, every column would
// match, and each schema would type its fields as buffers. The bytes of a Buffer, as a type only.
interface Buffer extends Uint8Array {}
