// The browser's half of aidoc/crypto (keys.py, envelope.py, result.py): the same formats, byte for
// byte, so a record sealed in the browser opens on a node and a result sealed by a node opens in the
// browser. tests/unit/test_web_crypto.py checks both directions and the vectors in
// tests/vectors/crypto.json.
//
// Async: everything that touches libsodium (sealed boxes, X25519) or WebCrypto (AES-256-GCM,
// HKDF-SHA256) returns a Promise and waits for libsodium itself, so callers need no set-up step.
// `await ready()` once at start-up only moves libsodium's WebAssembly start-up off the first click.
// encryptionKeyTypedData, recordBucket, resultCommitment and canonicalResult are synchronous.
//
// Bytes are Uint8Array everywhere; hex strings from this module are lowercase, commitments carry
// "0x" (as they go on-chain), key-envelope keys and result salts do not (as Python writes them).
//
// Numbers in results: Python writes 1.0 for a float and 1 for an int, 1e-05 where JavaScript writes
// 0.00001. canonicalResult writes a JavaScript number the way Python writes the value it reads back:
// an integral number as an int, any other in Python's float repr, so Python's open_result
// recomputes the same bytes for a result sealed here. JavaScript cannot tell 1.0 from 1, though, so
// openResult never re-serializes parsed numbers: it reads the sealed body with its own JSON reader
// that keeps each number's literal and writes the result back as Python's canonical_result does
// (for a body Python or this module sealed, that is exactly the body's own "result" span). The
// commitment it returns is therefore the one Python computes for the same ciphertext.

import sodium from "libsodium-wrappers";
import { bytesToHex, hexToBytes, keccak256 } from "viem";

export { bytesToHex, hexToBytes };

// --- errors (aidoc/errors.py) ---------------------------------------------------------------------

/** Decryption or key unwrapping failed. */
export class CryptoError extends Error {
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/** The key envelope holds no data key for this key, or a result was sealed to another key. */
export class WrongKey extends CryptoError {}

/** A ciphertext is truncated or was tampered with, or is not what it claims to be. */
export class CorruptCiphertext extends CryptoError {}

// --- constants (keep in step with the Python modules) ---------------------------------------------

export const ENCRYPTION_KEY_INFO = "aidoc-chain x25519 encryption key v2";
export const ENCRYPTION_KEY_STATEMENT =
  "Sign to unlock your AIDoc chain encryption key. Anyone holding this signature can read the health " +
  "records and results sealed to you: sign it only in the AIDoc chain app or CLI.";

const RECORD_MAGIC = Uint8Array.of(0x41, 0x49, 0x44, 0x52, 0x02); // "AIDR\x02": padded to a size bucket
const UNPADDED_MAGIC = Uint8Array.of(0x41, 0x49, 0x44, 0x52, 0x01); // "AIDR\x01": read, never written
const LENGTH_BYTES = 4;
export const MIN_BUCKET_BYTES = Object.freeze({ 1: 1024, 2: 64 * 1024 });
export const DEFAULT_MIN_BUCKET = 256 * 1024;
const BUCKET_STEP_ABOVE = 1024 * 1024;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = RECORD_MAGIC.length + 1 + NONCE_BYTES;
const DATA_KEY_BYTES = 32;
const KEY_BYTES = 32;
const ENVELOPE_VERSION = 1;
const SALT_BYTES = 32;
const RESULT_VERSION = 1;
const RESULT_PAD_BYTES = 1024;
const MAX_JSON_DEPTH = 500;

const encoder = new TextEncoder();

let sodiumReady = null;

/** Resolves once libsodium is initialised; every async function here awaits it itself. */
export function ready() {
  sodiumReady ??= sodium.ready.then(() => sodium);
  return sodiumReady;
}

function subtle() {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error("WebCrypto is not available here (the page must be served over https or from localhost)");
  return s;
}

function randomBytes(n) {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}

function requireBytes(value, what, length) {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  if (length !== undefined && value.length !== length) throw new TypeError(`${what} must be ${length} bytes, not ${value.length}`);
  return value;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function startsWith(bytes, prefix) {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function hex(bytes) {
  return bytesToHex(bytes).slice(2);
}

function base64Encode(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Strict base64 (Python's b64decode(validate=True)); throws on anything else. */
function base64Decode(text) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    throw new TypeError("not base64");
  }
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// --- keys (aidoc/crypto/keys.py) -----------------------------------------------------------------

/** The EIP-712 message whose signature by `account` derives its encryption key, as
 * eth_signTypedData_v4 takes it (the same object as Python's encryption_key_typed_data). */
export function encryptionKeyTypedData(account) {
  return {
    types: {
      EIP712Domain: [{ name: "name", type: "string" }, { name: "version", type: "string" }],
      EncryptionKey: [{ name: "account", type: "address" }, { name: "statement", type: "string" }],
    },
    primaryType: "EncryptionKey",
    domain: { name: "AIDoc chain", version: "1" },
    message: { account, statement: ENCRYPTION_KEY_STATEMENT },
  };
}

/** The same message in the shape viem's signTypedData takes (viem adds EIP712Domain itself). */
export function encryptionKeyTypedDataForViem(account) {
  const typedData = encryptionKeyTypedData(account);
  const { EIP712Domain: _, ...types } = typedData.types;
  return { ...typedData, types };
}

/** The account's X25519 key pair from its 65-byte signature (hex, or bytes) of
 * encryptionKeyTypedData: HKDF-SHA256 of r || s (v left out), 32 zero bytes of salt. */
export async function encryptionKeyFromSignature(signature) {
  const sig = typeof signature === "string" ? parseHex(signature, "the signature") : requireBytes(signature, "the signature");
  if (sig.length !== 65) throw new Error("an encryption-key signature is 65 bytes (r, s, v)");
  const ikm = await subtle().importKey("raw", sig.slice(0, 64), "HKDF", false, ["deriveBits"]);
  const seed = new Uint8Array(
    await subtle().deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: encoder.encode(ENCRYPTION_KEY_INFO) },
      ikm,
      256,
    ),
  );
  const na = await ready();
  return { privateKey: seed, publicKey: na.crypto_scalarmult_base(seed) };
}

/** The public key of an X25519 private key (32 bytes each). */
export async function publicKeyOf(privateKey) {
  requireBytes(privateKey, "the private key", KEY_BYTES);
  return (await ready()).crypto_scalarmult_base(privateKey);
}

function parseHex(text, what) {
  const body = text.startsWith("0x") || text.startsWith("0X") ? text.slice(2) : text;
  if (body.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(body)) throw new TypeError(`${what} is not hex`);
  return hexToBytes(`0x${body}`);
}

// --- records (aidoc/crypto/envelope.py) ----------------------------------------------------------

/** The padded plaintext size for a record of `size` bytes (length prefix included). */
export function recordBucket(dataType, size) {
  const needed = size + LENGTH_BYTES;
  let bucket = MIN_BUCKET_BYTES[dataType] ?? DEFAULT_MIN_BUCKET;
  while (bucket < needed && bucket < BUCKET_STEP_ABOVE) bucket *= 2;
  if (bucket < needed) bucket += Math.ceil((needed - bucket) / BUCKET_STEP_ABOVE) * BUCKET_STEP_ABOVE;
  return bucket;
}

async function aesKey(dataKey, usage) {
  requireBytes(dataKey, "the data key", DATA_KEY_BYTES);
  return subtle().importKey("raw", dataKey, { name: "AES-GCM" }, false, [usage]);
}

/** Encrypts `plaintext`, padded to its data type's size bucket, under a fresh data key and wraps that
 * key to every X25519 public key in `recipients` (32 bytes each); the data type is bound in as
 * associated data. → { ciphertext, keyEnvelope } */
export async function encryptRecord(plaintext, recipients, dataType) {
  requireBytes(plaintext, "the plaintext");
  if (!Array.isArray(recipients) || recipients.length === 0) {
    throw new Error("a record needs at least one recipient key, or nobody could ever read it");
  }
  recipients.forEach((key, i) => requireBytes(key, `recipient key ${i}`, KEY_BYTES));
  if (!Number.isInteger(dataType) || dataType < 0 || dataType > 255) {
    throw new RangeError(`the data type must be an integer from 0 to 255, not ${dataType}`);
  }
  if (plaintext.length >= 2 ** 32) throw new RangeError("a record is at most 4 GiB");
  const dataKey = randomBytes(DATA_KEY_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const header = concat(RECORD_MAGIC, Uint8Array.of(dataType), nonce);
  const padded = new Uint8Array(recordBucket(dataType, plaintext.length)); // zeros past the record
  new DataView(padded.buffer).setUint32(0, plaintext.length, false);
  padded.set(plaintext, LENGTH_BYTES);
  const key = await aesKey(dataKey, "encrypt");
  const sealed = await subtle().encrypt({ name: "AES-GCM", iv: nonce, additionalData: header, tagLength: 128 }, key, padded);
  return { ciphertext: concat(header, new Uint8Array(sealed)), keyEnvelope: await wrapDataKey(dataKey, recipients) };
}

/** A key envelope: the data key sealed to each recipient, keyed by the recipient's public key hex;
 * the bytes of Python's json.dumps({"version": 1, "recipients": ...}, sort_keys=True). */
export async function wrapDataKey(dataKey, recipients) {
  requireBytes(dataKey, "the data key", DATA_KEY_BYTES);
  const na = await ready();
  const boxes = new Map();
  recipients.forEach((key, i) => {
    requireBytes(key, `recipient key ${i}`, KEY_BYTES);
    let box;
    try {
      box = na.crypto_box_seal(dataKey, key);
    } catch {
      throw new Error(`recipient key ${i} (${hex(key).slice(0, 16)}…) is not a usable X25519 public key`);
    }
    boxes.set(hex(key), base64Encode(box));
  });
  const entries = [...boxes.keys()].sort().map((k) => `${JSON.stringify(k)}: ${JSON.stringify(boxes.get(k))}`);
  return encoder.encode(`{"recipients": {${entries.join(", ")}}, "version": ${ENVELOPE_VERSION}}`);
}

/** The data key in `keyEnvelope` (bytes) for `privateKey`; WrongKey when it holds none for it. */
export async function unwrapDataKey(keyEnvelope, privateKey) {
  requireBytes(keyEnvelope, "the key envelope");
  const publicKey = await publicKeyOf(privateKey);
  const own = hex(publicKey);
  let sealed;
  try {
    const envelope = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(keyEnvelope));
    if (!isPlainObject(envelope)) throw new TypeError("not an object");
    if (!Object.hasOwn(envelope, "recipients")) throw new RangeError("missing");
    const boxes = envelope.recipients;
    if (!isPlainObject(boxes)) throw new TypeError("not an object");
    if (!Object.hasOwn(boxes, own)) throw new RangeError("missing");
    sealed = base64Decode(boxes[own]);
  } catch (e) {
    if (e instanceof RangeError) throw new WrongKey(`the key envelope is not addressed to this node's key ${own.slice(0, 16)}…`);
    throw new WrongKey("the key envelope is malformed");
  }
  let dataKey;
  try {
    dataKey = (await ready()).crypto_box_seal_open(sealed, publicKey, privateKey);
  } catch {
    throw new WrongKey("the key envelope's entry for this node does not open with its key");
  }
  if (dataKey.length !== DATA_KEY_BYTES) throw new WrongKey("the key envelope holds a data key of the wrong length");
  return dataKey;
}

/** { dataType, plaintext } of a record ciphertext; CorruptCiphertext when it was altered. */
export async function decryptRecord(ciphertext, dataKey) {
  requireBytes(ciphertext, "the ciphertext");
  const padded = startsWith(ciphertext, RECORD_MAGIC);
  if (ciphertext.length < HEADER_BYTES + TAG_BYTES || !(padded || startsWith(ciphertext, UNPADDED_MAGIC))) {
    throw new CorruptCiphertext("the record ciphertext is truncated or not an AIDoc record");
  }
  const header = ciphertext.subarray(0, HEADER_BYTES);
  const nonce = header.subarray(RECORD_MAGIC.length + 1);
  const key = await aesKey(dataKey, "decrypt");
  let plaintext;
  try {
    plaintext = new Uint8Array(
      await subtle().decrypt(
        { name: "AES-GCM", iv: nonce, additionalData: header, tagLength: 128 },
        key,
        ciphertext.subarray(HEADER_BYTES),
      ),
    );
  } catch {
    throw new CorruptCiphertext("the record ciphertext fails authentication: it was altered or truncated");
  }
  if (padded) {
    const malformed = new CorruptCiphertext("the record's padding is malformed (its length prefix does not fit)");
    if (plaintext.length < LENGTH_BYTES) throw malformed;
    const length = new DataView(plaintext.buffer, plaintext.byteOffset).getUint32(0, false);
    if (LENGTH_BYTES + length > plaintext.length) throw malformed;
    if (plaintext.subarray(LENGTH_BYTES + length).some((b) => b !== 0)) throw malformed;
    plaintext = plaintext.slice(LENGTH_BYTES, LENGTH_BYTES + length);
  }
  return { dataType: header[RECORD_MAGIC.length], plaintext };
}

/** Unwraps the data key with `privateKey` and decrypts the record → { dataType, plaintext }. */
export async function openRecord(ciphertext, keyEnvelope, privateKey) {
  return decryptRecord(ciphertext, await unwrapDataKey(keyEnvelope, privateKey));
}

// --- results (aidoc/crypto/result.py) ------------------------------------------------------------

function uint256(value) {
  let n;
  if (typeof value === "bigint") n = value;
  else if (Number.isSafeInteger(value)) n = BigInt(value);
  else throw new TypeError(`a request id must be a bigint or a safe integer, not ${value}`);
  if (n < 0n || n >= 1n << 256n) throw new RangeError(`a request id must fit in a uint256, not ${n}`);
  return hexToBytes(`0x${n.toString(16).padStart(64, "0")}`);
}

/** keccak256(requestId (uint256, 32 bytes big-endian) || salt || resultBytes), "0x" hex. */
export function resultCommitment(requestId, salt, resultBytes) {
  requireBytes(salt, "the salt");
  requireBytes(resultBytes, "the result bytes");
  return keccak256(concat(uint256(requestId), salt, resultBytes));
}

/** The bytes Python's canonical_result gives for the value Python reads back from the JSON this
 * writes: json.dumps(sort_keys=True, separators=(",", ":")), ASCII with \u escapes. An integral
 * number (or a bigint) is written as an int, any other number as Python's float repr (0.1, 1e-05);
 * NaN and ±Infinity as Python writes them. Anything but strings, numbers, bigints, booleans, null,
 * arrays and plain objects throws. */
export function canonicalResult(result) {
  return encoder.encode(canonicalJson(result, 0));
}

function canonicalJson(value, depth) {
  if (depth > MAX_JSON_DEPTH) throw new RangeError("a result is nested too deep (or refers to itself)");
  switch (typeof value) {
    case "string":
      return pyString(value);
    case "bigint":
      return value.toString();
    case "number":
      return Number.isInteger(value) ? BigInt(value).toString() : pyFloat(value);
    case "boolean":
      return value ? "true" : "false";
    case "object":
      if (value === null) return "null";
      if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v, depth + 1)).join(",")}]`;
      if (isPlainObject(value)) {
        const keys = Object.keys(value).sort(compareCodePoints);
        return `{${keys.map((k) => `${pyString(k)}:${canonicalJson(value[k], depth + 1)}`).join(",")}}`;
      }
  }
  throw new TypeError(`a result holds only strings, numbers, booleans, null, arrays and plain objects, not ${describe(value)}`);
}

function describe(value) {
  return typeof value === "object" ? (value.constructor?.name ?? "an object") : typeof value;
}

function isPlainObject(value) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Python's str < str: by code point (JavaScript's default sort compares UTF-16 units). */
function compareCodePoints(a, b) {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i);
    const y = b.codePointAt(j);
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}

const SHORT_ESCAPES = { 0x22: '\\"', 0x5c: "\\\\", 0x08: "\\b", 0x0c: "\\f", 0x0a: "\\n", 0x0d: "\\r", 0x09: "\\t" };

/** A string as Python's json.dumps (ensure_ascii) writes it: printable ASCII as is, the rest \u
 * escaped by UTF-16 unit, lowercase. */
function pyString(s) {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(run, i) + (SHORT_ESCAPES[c] ?? `\\u${c.toString(16).padStart(4, "0")}`);
    run = i + 1;
  }
  return `${out}${s.slice(run)}"`;
}

/** Python's repr of a float: the shortest digits that round-trip (JavaScript's too), fixed notation
 * for 1e-4 <= |x| < 1e16 with at least one digit after the point, else d.ddde±XX. */
function pyFloat(x) {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mantissa, exponent] = String(Math.abs(x)).split("e");
  const [whole, fraction = ""] = mantissa.split(".");
  let digits = whole + fraction;
  let point = whole.length + (exponent ? Number(exponent) : 0); // value = 0.digits × 10^point
  const leading = digits.length - digits.replace(/^0+/, "").length;
  digits = digits.slice(leading).replace(/0+$/, "");
  point -= leading;
  if (point <= -4 || point > 16) {
    const e = point - 1;
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  if (point <= 0) return `${sign}0.${"0".repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${"0".repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Whether results can be sealed to `key`: 32 bytes and not a small-order point (Python's
 * usable_result_key; the market refuses the same keys at request time). */
export async function usableResultKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) return false;
  try {
    (await ready()).crypto_box_seal(new Uint8Array(0), key);
    return true;
  } catch {
    return false;
  }
}

/** Encrypts `result` (a plain object) to the requester's X25519 public key and commits to it with a
 * fresh salt, as Python's seal_result does → { ciphertext, commitment ("0x" hex) }. */
export async function sealResult(requestId, result, requesterPublicKey) {
  if (!isPlainObject(result)) throw new TypeError("a result is a plain object");
  requireBytes(requesterPublicKey, "the requester's key", KEY_BYTES);
  const salt = randomBytes(SALT_BYTES);
  uint256(requestId); // refuses what is not a uint256
  const id = BigInt(requestId);
  const resultBytes = canonicalResult(result);
  const body = encoder.encode(
    `{"requestId":${id},"result":${new TextDecoder().decode(resultBytes)},"salt":"${hex(salt)}","version":${RESULT_VERSION}}`,
  );
  // trailing spaces up to the next multiple of RESULT_PAD_BYTES (Python's padded())
  const paddedBody = new Uint8Array(Math.ceil(body.length / RESULT_PAD_BYTES) * RESULT_PAD_BYTES);
  paddedBody.set(body);
  paddedBody.fill(0x20, body.length);
  let ciphertext;
  try {
    ciphertext = (await ready()).crypto_box_seal(paddedBody, requesterPublicKey);
  } catch {
    throw new Error("results cannot be sealed to this key: it is not a usable X25519 public key");
  }
  return { ciphertext, commitment: resultCommitment(id, salt, resultBytes) };
}

/** Decrypts a sealed result with the requester's key and recomputes its commitment →
 * { requestId (bigint), result, salt, commitment ("0x" hex), resultBytes }. resultBytes are
 * Python's canonical_result of the sealed result, which is what the commitment covers; `result` is
 * the parsed value (integers beyond 2^53 as bigint; 1.0 reads as 1, hence resultBytes). */
export async function openResult(ciphertext, privateKey) {
  requireBytes(ciphertext, "the ciphertext");
  const publicKey = await publicKeyOf(privateKey);
  let plain;
  try {
    plain = (await ready()).crypto_box_seal_open(ciphertext, publicKey, privateKey);
  } catch {
    throw new WrongKey("this result does not open with your key: it was sealed to another requester");
  }
  let body;
  try {
    body = new JsonReader(new TextDecoder("utf-8", { fatal: true }).decode(plain)).document();
  } catch {
    throw new CorruptCiphertext("the result decrypts to something that is not a result");
  }
  const missing = () => new CorruptCiphertext("the result is missing its request id, salt or content");
  if (body.kind !== "object") throw missing();
  const { requestId: id, salt, result } = Object.fromEntries(body.members);
  if (id?.kind !== "int" || id.canon.startsWith("-") || salt?.kind !== "string" || result?.kind !== "object") throw missing();
  const saltHex = salt.value.replace(/[ \t\n\r\f\v]/g, "");
  if (saltHex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(saltHex)) throw missing();
  const requestId = BigInt(id.canon);
  if (requestId >= 1n << 256n) throw missing();
  const saltBytes = hexToBytes(`0x${saltHex}`);
  const resultBytes = encoder.encode(result.canon);
  return {
    requestId,
    result: result.value,
    salt: saltBytes,
    commitment: resultCommitment(requestId, saltBytes, resultBytes),
    resultBytes,
  };
}

// --- a JSON reader that keeps Python's view of each value ----------------------------------------
// Reads what Python's json.loads reads (NaN and Infinity included) and gives, for each value, the
// JavaScript value and `canon`: what Python's canonical_result writes for the value it parsed. Ints
// and floats stay apart by their literal (1.0 is a float, 1 an int); a duplicate key keeps its
// last value, as a dict does.

const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;

class JsonReader {
  constructor(text) {
    this.s = text;
    this.i = 0;
  }

  fail() {
    throw new SyntaxError(`not JSON at ${this.i}`);
  }

  space() {
    while (this.i < this.s.length && " \t\n\r".includes(this.s[this.i])) this.i++;
  }

  document() {
    this.space();
    const value = this.value(0);
    this.space();
    if (this.i !== this.s.length) this.fail();
    return value;
  }

  literal(word) {
    if (!this.s.startsWith(word, this.i)) return false;
    this.i += word.length;
    return true;
  }

  value(depth) {
    if (depth > MAX_JSON_DEPTH) this.fail();
    const c = this.s[this.i];
    if (c === "{") return this.object(depth);
    if (c === "[") return this.array(depth);
    if (c === '"') {
      const value = this.string();
      return { kind: "string", value, canon: pyString(value) };
    }
    if (this.literal("true")) return { kind: "bool", value: true, canon: "true" };
    if (this.literal("false")) return { kind: "bool", value: false, canon: "false" };
    if (this.literal("null")) return { kind: "null", value: null, canon: "null" };
    if (this.literal("NaN")) return { kind: "float", value: NaN, canon: "NaN" };
    if (this.literal("Infinity")) return { kind: "float", value: Infinity, canon: "Infinity" };
    if (this.literal("-Infinity")) return { kind: "float", value: -Infinity, canon: "-Infinity" };
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) this.fail();
    this.i = NUMBER.lastIndex;
    if (m[1] === undefined && m[2] === undefined) {
      const n = BigInt(m[0]);
      return { kind: "int", value: Number.isSafeInteger(Number(n)) ? Number(n) : n, canon: n.toString() };
    }
    const x = Number(m[0]);
    return { kind: "float", value: x, canon: pyFloat(x) };
  }

  string() {
    this.i++; // the opening quote
    let out = "";
    let run = this.i;
    for (;;) {
      if (this.i >= this.s.length) this.fail();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x22) {
        out += this.s.slice(run, this.i++);
        return out;
      }
      if (c < 0x20) this.fail(); // Python's strict mode: no raw control characters
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += this.s.slice(run, this.i);
      const e = this.s[this.i + 1];
      const simple = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" }[e];
      if (simple !== undefined) {
        out += simple;
        this.i += 2;
      } else if (e === "u" && /^[0-9a-fA-F]{4}$/.test(this.s.slice(this.i + 2, this.i + 6))) {
        out += String.fromCharCode(parseInt(this.s.slice(this.i + 2, this.i + 6), 16));
        this.i += 6;
      } else {
        this.fail();
      }
      run = this.i;
    }
  }

  object(depth) {
    this.i++;
    const members = new Map();
    this.space();
    if (this.s[this.i] === "}") {
      this.i++;
    } else {
      for (;;) {
        if (this.s[this.i] !== '"') this.fail();
        const key = this.string();
        this.space();
        if (this.s[this.i++] !== ":") this.fail();
        this.space();
        members.delete(key); // a repeated key: the last value wins
        members.set(key, this.value(depth + 1));
        this.space();
        const c = this.s[this.i++];
        if (c === "}") break;
        if (c !== ",") this.fail();
        this.space();
      }
    }
    const value = {};
    for (const [k, v] of members) Object.defineProperty(value, k, { value: v.value, enumerable: true, writable: true, configurable: true });
    const keys = [...members.keys()].sort(compareCodePoints);
    const canon = `{${keys.map((k) => `${pyString(k)}:${members.get(k).canon}`).join(",")}}`;
    return { kind: "object", value, canon, members };
  }

  array(depth) {
    this.i++;
    const items = [];
    this.space();
    if (this.s[this.i] === "]") {
      this.i++;
    } else {
      for (;;) {
        items.push(this.value(depth + 1));
        this.space();
        const c = this.s[this.i++];
        if (c === "]") break;
        if (c !== ",") this.fail();
        this.space();
      }
    }
    return { kind: "array", value: items.map((v) => v.value), canon: `[${items.map((v) => v.canon).join(",")}]` };
  }
}
