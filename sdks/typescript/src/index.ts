/**
 * `@signet/sdk`: Signet's TypeScript SDK — the signing core, and the HTTP side (producer, worker, push endpoint).
 *
 * - `envelope`: the `signet.task.v1` envelope, its canonical bytes, sign and verify;
 * - `keys`: key ids, HMAC-SHA256 and Ed25519 keys, the key ring;
 * - `config` / `load`: the `SIGNET_SIGNING_*` variables and the key file;
 * - `errors`: {@link SignetError} and its reason codes.
 *
 * - `client`: a small HTTP client of `signet serve` ({@link ApiError});
 * - `producer`: signs tasks locally and enqueues them, singly and in batches;
 * - `publisher`: publishes messages (signed HTTP deliveries the server makes), singly and in batches;
 * - `worker`: pulls tasks, verifies each before running it, reports in batches;
 * - `push`: the endpoint side of a push queue (`handlePush`, `createPushListener`).
 */
export { SignetError, type Reason } from "./errors.js";
export {
  Ed25519PrivateKey,
  Ed25519PublicKey,
  HmacKey,
  KeyRing,
  MAX_KEY_ID_LEN,
  algorithmFromVersion,
  algorithmVersion,
  checkKeyId,
  fingerprint,
  parseAlgorithm,
  signatureLength,
  type Algorithm,
  type Key,
} from "./keys.js";
export {
  MASTER_KEY_PREVIOUS_VAR,
  MASTER_KEY_VAR,
  MATERIAL_VARIABLES,
  MIN_HMAC_SECRET_LEN,
  PROGRAM_VARIABLES,
  RECOMMENDED_HMAC_SECRET_LEN,
  SHARED_VARIABLES,
  VARIABLES,
  VAR_ACTIVE_KEY,
  VAR_ALGORITHM,
  VAR_DEV,
  VAR_KEYS,
  VAR_OVERLAP_KEYS,
  VAR_PRIVATE_KEYS,
  VAR_PUBLIC_KEYS,
  VAR_REQUIRED,
  signingConfigFromVars,
  summary,
  unknownVariables,
  type SigningConfig,
  type Vars,
} from "./config.js";
export { KeyFile } from "./keyfile.js";
export {
  DATABASE_URL_VAR,
  DEFAULT_DATABASE_URL,
  KEYS_FILE_VAR,
  KNOWN_VARIABLES,
  keyFileBeside,
  loadKeys,
  sqliteDatabaseFile,
  type KeySource,
  type LoadKeysOptions,
  type LoadedKeys,
} from "./load.js";
export {
  ENVELOPE_TAG,
  SIGNATURE_HEADER,
  SIGNATURE_HEADERS,
  SIGNATURE_KEY_HEADER,
  canonicalBytes,
  checkEnvelope,
  normaliseHeaders,
  parseSignatureHeaders,
  parseStoredSignature,
  signEnvelope,
  signatureHeaderValue,
  signatureHeaders,
  storedSignature,
  verifyEnvelope,
  verifyEnvelopeHeaders,
  type EnvelopeSignature,
  type HeaderInput,
  type Millis,
  type SignatureHeaders,
  type TaskEnvelope,
  type VerifyResult,
} from "./envelope.js";
export {
  DEFAULT_TOLERANCE_SECS,
  STANDARD_HEADERS,
  SVIX_HEADERS,
  checkFresh,
  parseWebhookSecret,
  signWebhook,
  verifyWebhook,
  webhookHeaders,
  type HeaderNames,
  type VerifyWebhookOptions,
  type WebhookVerified,
} from "./webhooks.js";
export { ApiError, SignetClient, retryAfterMs, type ClientOptions, type RequestOptions } from "./client.js";
export { defaultLogger, silentLogger, type Logger } from "./log.js";
export {
  DEFAULT_BATCH_BYTES,
  DEFAULT_MAX_ATTEMPTS,
  MAX_BATCH_TASKS,
  Producer,
  newTaskId,
  type BatchItem,
  type EnqueueOptions,
  type EnqueuedTask,
  type ProducerOptions,
} from "./producer.js";
export {
  API_KEY_VAR,
  MAX_BATCH_MESSAGES,
  MessagePublisher,
  PublishBatchError,
  URL_VAR,
  type Message,
  type MessagePublisherOptions,
  type PublishOptions,
  type PublishedMessage,
  type SignatureProfile,
} from "./publisher.js";
export {
  MAX_RETRY_AFTER_MS,
  TaskError,
  checkTask,
  type CheckTaskOptions,
  type DeadReason,
  type TaskInfo,
  type TaskVerdict,
  type WireEnvelope,
  type WireTask,
} from "./task.js";
export { MAX_CLAIM, TaskContext, Worker, type Handler, type WorkerOptions } from "./worker.js";
export {
  createPushListener,
  handlePush,
  type PushContext,
  type PushHandler,
  type PushListenerOptions,
  type PushOptions,
  type PushRequest,
  type PushResponse,
} from "./push.js";
