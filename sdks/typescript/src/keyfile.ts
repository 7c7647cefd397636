/**
 * Reading Signet's key file (`signet-sign`'s `keyfile.rs`, parsing only):
 * the `KEY=value` lines `signet keys generate` prints, `#` comments and
 * blank lines, an optional `export ` and one pair of quotes around a value.
 * Only the `SIGNET_SIGNING_*` variables, `SIGNET_DEV`, `SIGNET_MASTER_KEY`
 * and `SIGNET_MASTER_KEY_PREVIOUS` may appear, each once. Errors name the line and the
 * variable, never a value. An SDK never writes a key file.
 */
import { SignetError, quote } from "./errors.js";
import { MASTER_KEY_PREVIOUS_VAR, MASTER_KEY_VAR, VARIABLES } from "./config.js";

const KNOWN: readonly string[] = [...VARIABLES, MASTER_KEY_VAR, MASTER_KEY_PREVIOUS_VAR];

/** The parsed lines of a key file, in order. Values are secrets: printing shows names only. */
export class KeyFile {
  readonly #vars: Array<[string, string]>;

  private constructor(vars: Array<[string, string]>) {
    this.#vars = vars;
  }

  /** Parses key file text; throws a `config` {@link SignetError} naming the line. */
  static parse(text: string): KeyFile {
    const vars: Array<[string, string]> = [];
    const lines = text.split(/\r?\n/);
    if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    lines.forEach((raw, n) => {
      const number = n + 1;
      let line = raw.trim();
      if (line.length === 0 || line.startsWith("#")) return;
      if (line.startsWith("export ")) line = line.slice("export ".length).trimStart();
      const eq = line.indexOf("=");
      if (eq < 0) {
        throw SignetError.config(
          `line ${number} is not NAME=value; a key file holds lines like the ones \`signet keys generate\` prints`,
        );
      }
      const name = line.slice(0, eq).trim();
      if (!KNOWN.includes(name)) {
        const shown = [...name].slice(0, 64).join("");
        throw SignetError.config(
          `line ${number}: ${quote(shown)} is not a variable a key file may hold; use the SIGNET_SIGNING_* variables and ${MASTER_KEY_VAR}`,
        );
      }
      if (vars.some(([other]) => other === name)) {
        throw SignetError.config(`line ${number}: ${name} is given twice; keep one line`);
      }
      let value = line.slice(eq + 1).trim();
      for (const q of ['"', "'"]) {
        if (value.length >= 2 && value.startsWith(q) && value.endsWith(q)) {
          value = value.slice(1, -1);
          break;
        }
      }
      if (/["'\s]/u.test(value)) {
        throw SignetError.config(
          `line ${number}: the value of ${name} holds a quote or a space; write it as ${name}=value with nothing around the value`,
        );
      }
      vars.push([name, value]);
    });
    return new KeyFile(vars);
  }

  /** The `(name, value)` pairs, in order. The values are secrets. */
  vars(): Array<[string, string]> {
    return this.#vars.map(([n, v]) => [n, v]);
  }

  /** The value of `name`, if the file has it. */
  get(name: string): string | undefined {
    return this.#vars.find(([n]) => n === name)?.[1];
  }

  /** The names the file holds (not secret). */
  names(): string[] {
    return this.#vars.map(([n]) => n);
  }

  toString(): string {
    return `KeyFile(${this.names().join(", ")})`;
  }
  toJSON(): object {
    return { vars: this.names() };
  }
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}
