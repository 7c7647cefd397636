/**
 * The one error type of the SDK, mirroring `signet_sign::Error`.
 *
 * Callers decide with {@link SignetError.reason} (a stable code, the same
 * strings the Rust side uses for dead-letter details and metric labels) and
 * show {@link SignetError.message} to a person. No message ever contains
 * secret material.
 */

/** Stable, lower-case, hyphenated reason codes. */
export type Reason =
  | "missing"
  | "malformed"
  | "unknown-key"
  | "mismatch"
  | "too-old"
  | "too-new"
  | "algorithm-mismatch"
  | "config"
  | "unsupported";

/** An error from encoding, signing, verifying or loading keys. */
export class SignetError extends Error {
  /** What went wrong, as a stable code. */
  readonly reason: Reason;

  constructor(reason: Reason, message: string) {
    super(message);
    this.name = "SignetError";
    this.reason = reason;
  }

  /** Whether this error says the signature is bad (not a configuration or usage error). */
  get isVerification(): boolean {
    return this.reason !== "config" && this.reason !== "unsupported";
  }

  static missing(message: string): SignetError {
    return new SignetError("missing", message);
  }
  static malformed(message: string): SignetError {
    return new SignetError("malformed", message);
  }
  static unknownKey(message: string): SignetError {
    return new SignetError("unknown-key", message);
  }
  static mismatch(message: string): SignetError {
    return new SignetError("mismatch", message);
  }
  static tooOld(message: string): SignetError {
    return new SignetError("too-old", message);
  }
  static tooNew(message: string): SignetError {
    return new SignetError("too-new", message);
  }
  static algorithmMismatch(message: string): SignetError {
    return new SignetError("algorithm-mismatch", message);
  }
  static config(message: string): SignetError {
    return new SignetError("config", message);
  }
  static unsupported(message: string): SignetError {
    return new SignetError("unsupported", message);
  }
}

/**
 * Quotes a string the way Rust's `{:?}` does, so messages read the same as
 * the Rust side's: `"k1"`, with `\"`, `\\`, `\n`, `\r`, `\t`, `\0` and
 * `\u{…}` for other control characters.
 */
export function quote(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0) ?? 0;
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case "\\":
        out += "\\\\";
        break;
      case "\n":
        out += "\\n";
        break;
      case "\r":
        out += "\\r";
        break;
      case "\t":
        out += "\\t";
        break;
      case "\0":
        out += "\\0";
        break;
      default:
        if (code < 0x20 || code === 0x7f) {
          out += `\\u{${code.toString(16)}}`;
        } else {
          out += ch;
        }
    }
  }
  return out + '"';
}
