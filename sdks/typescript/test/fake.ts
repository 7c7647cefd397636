/**
 * A stand-in for `signet serve` that answers as a test tells it to: for
 * the worker's and producer's handling of answers a real server gives only
 * under load or never (`413` on a large batch, a malformed answer).
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** What the fake answers: a status and a JSON value (or raw text). */
export interface FakeAnswer {
  readonly status?: number;
  readonly json?: unknown;
  readonly text?: string;
}

/** One request the fake received. */
export interface FakeRequest {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

export interface FakeServer {
  readonly url: string;
  readonly requests: FakeRequest[];
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts a fake on a free port; `answer` decides each answer (it may wait). */
export async function fakeServer(answer: (req: FakeRequest) => FakeAnswer | Promise<FakeAnswer>): Promise<FakeServer> {
  const requests: FakeRequest[] = [];
  const server: Server = createServer((req, res) => {
    void readBody(req).then(async (body) => {
      const r: FakeRequest = { method: req.method ?? "", path: (req.url ?? "").replace(/^\/+/, "/"), body };
      requests.push(r);
      const out = await answer(r);
      const text = out.text ?? JSON.stringify(out.json ?? {});
      res.writeHead(out.status ?? 200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** An error answer in the server's form. */
export function apiError(status: number, code: string, message: string): FakeAnswer {
  return { status, json: { error: { code, message } } };
}
