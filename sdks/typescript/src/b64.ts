/**
 * The base64 forms Signet reads and writes (mirrors `signet-sign`'s `b64.rs`).
 *
 * Keys are read leniently (padding optional, the URL-safe alphabet accepted
 * when the text holds `-` or `_`, stray low bits in the last character
 * ignored) because they come from many generators. Signatures are read
 * strictly except for padding: standard alphabet, padding optional but
 * exact when present, unused low bits zero, so a changed character never
 * decodes to the same bytes.
 */

const STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function table(alphabet: string): Int16Array {
  const t = new Int16Array(256).fill(-1);
  for (let i = 0; i < 64; i++) t[alphabet.charCodeAt(i)] = i;
  return t;
}
const STANDARD_TABLE = table(STANDARD);
const URL_SAFE_TABLE = table(URL_SAFE);

/** Padded standard base64 (what Signet writes). */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/** Why a text is not base64, by position only (never quoting the input). */
export class Base64Error extends Error {}

/**
 * Decodes `text` with the given rules, or throws {@link Base64Error} saying
 * what is wrong by position only (the wording of the Rust `base64` crate's
 * errors as Signet describes them).
 */
function decode(text: string, t: Int16Array, allowTrailingBits: boolean): Uint8Array {
  // Padding: indifferent (present or not), but only at the end and only as
  // much as the length needs.
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 0x3d /* = */) end--;
  const padding = text.length - end;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c > 255 || (t[c] ?? -1) < 0) {
      throw new Base64Error(`character ${i + 1} is not in the base64 alphabet`);
    }
  }
  const rem = end % 4;
  if (rem === 1) throw new Base64Error("its length is not a possible base64 length");
  if (padding > 0 && (text.length % 4 !== 0 || padding !== (4 - rem) % 4 || rem === 0)) {
    throw new Base64Error("its '=' padding is wrong");
  }
  const out = new Uint8Array(Math.floor(end / 4) * 3 + (rem === 0 ? 0 : rem - 1));
  let at = 0;
  let i = 0;
  const v = (k: number): number => t[text.charCodeAt(k)] ?? 0;
  for (; i + 4 <= end; i += 4) {
    const n = (v(i) << 18) | (v(i + 1) << 12) | (v(i + 2) << 6) | v(i + 3);
    out[at++] = (n >>> 16) & 0xff;
    out[at++] = (n >>> 8) & 0xff;
    out[at++] = n & 0xff;
  }
  if (rem === 2) {
    const n = (v(i) << 18) | (v(i + 1) << 12);
    if (!allowTrailingBits && (n & 0xffff) !== 0) {
      throw new Base64Error(`character ${i + 2} has bits set past the end of the data`);
    }
    out[at++] = (n >>> 16) & 0xff;
  } else if (rem === 3) {
    const n = (v(i) << 18) | (v(i + 1) << 12) | (v(i + 2) << 6);
    if (!allowTrailingBits && (n & 0xff) !== 0) {
      throw new Base64Error(`character ${i + 3} has bits set past the end of the data`);
    }
    out[at++] = (n >>> 16) & 0xff;
    out[at++] = (n >>> 8) & 0xff;
  }
  return out;
}

/** Decodes key material leniently (see the module comment). */
export function decodeKey(text: string): Uint8Array {
  const trimmed = text.trim();
  const t = /[-_]/.test(trimmed) ? URL_SAFE_TABLE : STANDARD_TABLE;
  return decode(trimmed, t, true);
}

/**
 * Decodes strictly: standard alphabet, padding optional but exact when
 * present, unused low bits zero (signatures, and a task's `args_b64`).
 */
export function decodeStrict(text: string): Uint8Array {
  return decode(text, STANDARD_TABLE, false);
}

/** Decodes a signature strictly (see the module comment). */
export function decodeSignature(text: string): Uint8Array {
  return decodeStrict(text);
}
