/** Shared test helpers: the repository's vector files, read at test time. */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import type { TaskEnvelope } from "../src/index.js";

/** The SDK folder (tests run from dist/test). */
export const SDK_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The repository root, `../../` from the SDK folder. */
export const REPO_DIR = join(SDK_DIR, "..", "..");

export function repoFile(path: string): string {
  return readFileSync(join(REPO_DIR, path), "utf8");
}

export function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "hex"));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

export interface VectorEnvelope {
  id: string;
  queue: string;
  name: string;
  args_hex: string;
  headers: Record<string, string>;
  created_at_ms: string;
  not_before_ms: string | null;
  expires_at_ms: string | null;
  max_attempts: number;
  callback_url: string | null;
}

export interface SignatureVector {
  key_id: string;
  sig_hex: string;
  header: string;
}

export interface EnvelopeVector {
  name: string;
  description: string;
  envelope: VectorEnvelope;
  canonical_hex: string;
  hmac_sha256: SignatureVector;
  ed25519: SignatureVector;
}

export interface EnvelopeVectors {
  format: string;
  hmac_key: { id: string; secret_hex: string };
  ed25519_key: { id: string; seed_hex: string; public_hex: string };
  vectors: EnvelopeVector[];
}

/**
 * docs/vectors/task-envelope.json. The millisecond fields are read as
 * decimal text (they reach 2^63 - 1, past what a JSON number keeps in
 * JavaScript) by quoting them before parsing.
 */
export function envelopeVectors(): EnvelopeVectors {
  const text = repoFile("docs/vectors/task-envelope.json").replace(
    /"(created_at_ms|not_before_ms|expires_at_ms)": (-?\d+)/g,
    '"$1": "$2"',
  );
  return JSON.parse(text) as EnvelopeVectors;
}

export function toEnvelope(e: VectorEnvelope): TaskEnvelope {
  return {
    id: e.id,
    queue: e.queue,
    name: e.name,
    args: hex(e.args_hex),
    headers: e.headers,
    createdAtMs: BigInt(e.created_at_ms),
    notBeforeMs: e.not_before_ms === null ? null : BigInt(e.not_before_ms),
    expiresAtMs: e.expires_at_ms === null ? null : BigInt(e.expires_at_ms),
    maxAttempts: e.max_attempts,
    callbackUrl: e.callback_url,
  };
}

export function b64(bytes: Uint8Array | number[]): string {
  return Buffer.from(bytes).toString("base64");
}
