// The TypeScript producer of the matrix: signs the tasks given as a JSON
// array in argv[2] ([{queue, name, args}]) with loadKeys() (the
// SIGNET_SIGNING_* variables or SIGNET_KEYS_FILE), enqueues them in one batch
// and prints the server's answers as a JSON array on stdout.
import { need, sdk } from "./sdk.mjs";

const items = JSON.parse(process.argv[2] ?? "[]");
const producer = new sdk.Producer({ url: need("CROSSLANG_URL"), apiKey: need("CROSSLANG_API_KEY") });
try {
  const tasks = await producer.enqueueBatch(items);
  console.log(JSON.stringify(tasks.map((t) => t.raw)));
} finally {
  producer.close();
}
