/** Where the producer, worker and push helper write what an operator should see. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Everything to stderr (`console.warn` / `console.error`), so stdout stays the program's own. */
export const defaultLogger: Logger = {
  info: (m) => console.error(m),
  warn: (m) => console.warn(m),
  error: (m) => console.error(m),
};

/** A logger that drops everything. */
export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };
